package tenantstream.flink;

import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.ReadableConfig;

import java.time.Duration;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

/**
 * The `tenantstream-mongodb` lookup table: documents of one MongoDB collection, re-read whole every
 * refresh interval so a running job follows metadata changes (limits, sensors) without a restart. Not a
 * change stream: those need a replica set, and FerretDB (the local stack's MongoDB-protocol server) has none.
 *
 * <pre>
 *   CREATE TABLE limits (tenant STRING, id STRING, low DOUBLE, high DOUBLE) WITH (
 *     'connector' = 'tenantstream-mongodb', 'uri' = 'mongodb://127.0.0.1:27017',
 *     'database' = 'tenantstream', 'collection' = 'elements', 'tenants' = 'acme;globex',
 *     'refresh-interval' = '10 s', 'fields.low' = 'limits.min', 'fields.high' = 'limits.max')
 * </pre>
 */
public class MongoLookupTableFactory extends DocumentTableFactory {

    public static final String IDENTIFIER = "tenantstream-mongodb";

    public static final ConfigOption<String> URI = ConfigOptions.key("uri").stringType().noDefaultValue()
            .withDescription("MongoDB connection string, e.g. mongodb://127.0.0.1:27017");
    public static final ConfigOption<String> DATABASE = ConfigOptions.key("database").stringType().noDefaultValue()
            .withDescription("Database of the collection.");
    public static final ConfigOption<String> COLLECTION = ConfigOptions.key("collection").stringType()
            .noDefaultValue().withDescription("Collection whose documents are the table's rows.");
    public static final ConfigOption<String> TENANTS = ConfigOptions.key("tenants").stringType().noDefaultValue()
            .withDescription("Semicolon-separated tenants: only documents whose 'tenant' is one of them are read.");
    public static final ConfigOption<Duration> REFRESH_INTERVAL = ConfigOptions.key("refresh-interval")
            .durationType().defaultValue(Duration.ofSeconds(30))
            .withDescription("How often the whole table is read again; a change shows within this interval.");

    @Override
    public String factoryIdentifier() {
        return IDENTIFIER;
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return new HashSet<>(Arrays.asList(URI, DATABASE, COLLECTION, TENANTS));
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return new HashSet<>(Arrays.asList(REFRESH_INTERVAL));
    }

    @Override
    DocumentSource source(ReadableConfig options, String table) {
        return new MongoCollectionSpec(options.get(URI), options.get(DATABASE), options.get(COLLECTION),
                Arrays.asList(options.get(TENANTS).split(";")));
    }

    @Override
    Duration refreshInterval(ReadableConfig options) {
        return options.get(REFRESH_INTERVAL);
    }
}
