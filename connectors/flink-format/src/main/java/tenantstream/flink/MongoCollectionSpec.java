package tenantstream.flink;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;

/** Which documents a lookup table reads: a collection's documents of some tenants. */
final class MongoCollectionSpec implements Serializable {
    private static final long serialVersionUID = 1L;

    final String uri;
    final String database;
    final String collection;
    final List<String> tenants;

    MongoCollectionSpec(String uri, String database, String collection, List<String> tenants) {
        this.uri = uri;
        this.database = database;
        this.collection = collection;
        this.tenants = new ArrayList<>(tenants);
    }

    @Override
    public String toString() {
        return database + "." + collection + " of " + String.join(", ", tenants) + " at " + uri;
    }
}
