package tenantstream.flink;

import com.mongodb.client.MongoClient;
import com.mongodb.client.MongoClients;
import com.mongodb.client.model.Filters;
import org.bson.Document;

import java.util.ArrayList;
import java.util.List;

/** A MongoDB collection's documents of some tenants. */
final class MongoCollectionSpec implements DocumentSource {
    private static final long serialVersionUID = 1L;

    final String uri;
    final String database;
    final String collection;
    final List<String> tenants;

    private transient MongoClient client;

    MongoCollectionSpec(String uri, String database, String collection, List<String> tenants) {
        this.uri = uri;
        this.database = database;
        this.collection = collection;
        this.tenants = new ArrayList<>(tenants);
    }

    @Override
    public void open() {
        client = MongoClients.create(uri);
    }

    @Override
    public Iterable<Document> documents() {
        return client.getDatabase(database).getCollection(collection).find(Filters.in("tenant", tenants));
    }

    @Override
    public void close() {
        if (client != null) {
            client.close();
        }
    }

    @Override
    public String toString() {
        return database + "." + collection + " of " + String.join(", ", tenants) + " at " + uri;
    }
}
