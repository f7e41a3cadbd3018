// Prints the node id of the KRaft controller quorum's leader: Admin.describeMetadataQuorum (KIP-595/836).
// Run in source-file mode by faults/nodes.py: java -cp <kafka jars> QuorumLeader.java <client properties file>
import java.io.FileReader;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;

public class QuorumLeader {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (FileReader in = new FileReader(args[0])) {
            props.load(in);
        }
        try (Admin admin = Admin.create(props)) {
            System.out.println(admin.describeMetadataQuorum().quorumInfo().get().leaderId());
        }
    }
}
