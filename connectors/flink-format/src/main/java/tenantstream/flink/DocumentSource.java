package tenantstream.flink;

import org.bson.Document;

import java.io.Serializable;

/** Where a lookup table's documents come from. They are read whole: when the job opens, and on every refresh. */
interface DocumentSource extends Serializable {

    void open();

    /** The documents of the job's tenants, as they are now. */
    Iterable<Document> documents();

    void close();
}
