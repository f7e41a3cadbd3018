package tenantstream.flink;

import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.SystemLimitException;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.stream.Stream;

/**
 * Every Avro schema bundled in this jar (the repo's schemas/*.avsc, copied to
 * tenantstream/schemas/ by the pom), by name ("alarm_event.v2") and by CRC-64-AVRO fingerprint.
 *
 * <p>Single-object encoded records carry only the writer schema's fingerprint, so decoding any
 * version ever written needs every version at hand; bundling them keeps the jar self-sufficient
 * (no registry service to reach). Loaded once per class loader and then read-only.
 */
public final class BundledSchemaStore {

    static final String RESOURCE_DIR = "tenantstream/schemas/";
    private static final String SUFFIX = ".avsc";

    /**
     * Cap on one Avro string/bytes length read from a record. Avro allocates the buffer from the
     * length prefix before reading the bytes, so a garbage length could ask for ~2 GiB. No record
     * that is decoded is bigger than SingleObjectDeserializationSchema.MAX_RECORD_BYTES, so no
     * value in it can be either; with the cap such garbage fails fast as a decode error instead.
     * The property names are relocated with Avro by the shade plugin, so this touches only our
     * private copy of Avro; an operator may still set them as JVM properties.
     */
    private static final String MAX_LENGTH = String.valueOf(SingleObjectDeserializationSchema.MAX_RECORD_BYTES);

    static {
        System.getProperties().putIfAbsent(SystemLimitException.MAX_STRING_LENGTH_PROPERTY, MAX_LENGTH);
        System.getProperties().putIfAbsent(SystemLimitException.MAX_BYTES_LENGTH_PROPERTY, MAX_LENGTH);
        System.getProperties().putIfAbsent(SystemLimitException.MAX_COLLECTION_LENGTH_PROPERTY, MAX_LENGTH);
    }

    private static volatile BundledSchemaStore instance;

    private final Map<String, Schema> byName;
    private final Map<Long, String> nameByFingerprint;

    private BundledSchemaStore(Map<String, Schema> byName) {
        this.byName = Collections.unmodifiableMap(byName);
        Map<Long, String> fps = new HashMap<>();
        // Sorted names: if two files share a parsing canonical form (they differ only in docs or
        // defaults, which do not affect the writer's bytes), the first name wins deterministically.
        for (Map.Entry<String, Schema> e : byName.entrySet()) {
            fps.putIfAbsent(SchemaNormalization.parsingFingerprint64(e.getValue()), e.getKey());
        }
        this.nameByFingerprint = Collections.unmodifiableMap(fps);
    }

    public static BundledSchemaStore get() {
        BundledSchemaStore s = instance;
        if (s == null) {
            synchronized (BundledSchemaStore.class) {
                s = instance;
                if (s == null) {
                    s = new BundledSchemaStore(load());
                    instance = s;
                }
            }
        }
        return s;
    }

    /** Schema of that name, or null. */
    public Schema byName(String name) {
        return byName.get(name);
    }

    /** Name of the schema with that CRC-64-AVRO fingerprint, or null. */
    public String nameOf(long fingerprint) {
        return nameByFingerprint.get(fingerprint);
    }

    public List<String> names() {
        return new ArrayList<>(byName.keySet());
    }

    // ---------------------------------------------------------------------------------------

    private static Map<String, Schema> load() {
        Map<String, Schema> schemas = new TreeMap<>();
        ClassLoader cl = BundledSchemaStore.class.getClassLoader();
        for (String name : listResourceNames()) {
            try (InputStream in = cl.getResourceAsStream(RESOURCE_DIR + name + SUFFIX)) {
                if (in == null) {
                    continue;
                }
                String json = new String(in.readAllBytes(), StandardCharsets.UTF_8);
                // A fresh parser per file: v1 and v2 of one record share a full name, which a
                // single parser would reject as a redefinition.
                schemas.put(name, new Schema.Parser().parse(json));
            } catch (IOException | RuntimeException e) {
                throw new IllegalStateException(
                        "tenantstream-avro: cannot parse bundled schema " + name + SUFFIX + ": " + e.getMessage(), e);
            }
        }
        if (schemas.isEmpty()) {
            throw new IllegalStateException(
                    "tenantstream-avro: no schemas found under " + RESOURCE_DIR + " in the format jar");
        }
        return schemas;
    }

    /**
     * Class loaders cannot list a resource folder, so list the entries of the jar (or, in a
     * build tree, the classes directory) that this class itself was loaded from.
     */
    private static List<String> listResourceNames() {
        List<String> names = new ArrayList<>();
        try {
            URL location = BundledSchemaStore.class.getProtectionDomain().getCodeSource().getLocation();
            Path path = Paths.get(location.toURI());
            if (Files.isDirectory(path)) {
                Path dir = path.resolve(RESOURCE_DIR);
                if (Files.isDirectory(dir)) {
                    try (Stream<Path> files = Files.list(dir)) {
                        files.forEach(p -> addIfSchema(names, RESOURCE_DIR + p.getFileName()));
                    }
                }
            } else {
                try (JarFile jar = new JarFile(new File(location.toURI()))) {
                    for (JarEntry entry : Collections.list(jar.entries())) {
                        addIfSchema(names, entry.getName());
                    }
                }
            }
        } catch (Exception e) {
            throw new IllegalStateException(
                    "tenantstream-avro: cannot list bundled schemas: " + e.getMessage(), e);
        }
        return names;
    }

    private static void addIfSchema(List<String> names, String entry) {
        if (entry.startsWith(RESOURCE_DIR) && entry.endsWith(SUFFIX)) {
            String rest = entry.substring(RESOURCE_DIR.length(), entry.length() - SUFFIX.length());
            if (!rest.isEmpty() && !rest.contains("/")) {
                names.add(rest);
            }
        }
    }
}
