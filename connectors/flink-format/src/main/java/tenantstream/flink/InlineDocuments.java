package tenantstream.flink;

import org.bson.Document;

import java.util.List;

/** Documents given with the table's definition (a JSON array of objects): metadata fixed when the job is planned. */
final class InlineDocuments implements DocumentSource {
    private static final long serialVersionUID = 1L;

    private final String name;
    private final String json;

    private transient List<Document> documents;

    InlineDocuments(String name, String json) {
        this.name = name;
        this.json = json;
    }

    /** The documents of a JSON array; IllegalArgumentException says what is wrong with it. */
    static List<Document> parse(String json) {
        try {
            return Document.parse("{\"documents\": " + json + "}").getList("documents", Document.class);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("not a JSON array of objects: " + e.getMessage(), e);
        }
    }

    @Override
    public void open() {
        documents = parse(json);
    }

    @Override
    public Iterable<Document> documents() {
        return documents;
    }

    @Override
    public void close() {
        documents = null;
    }

    @Override
    public String toString() {
        return "documents of table " + name;
    }
}
