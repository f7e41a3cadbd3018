package tenantstream.flink;

import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.connector.source.LookupTableSource;
import org.apache.flink.table.connector.source.lookup.LookupFunctionProvider;
import org.apache.flink.table.factories.DynamicTableSourceFactory;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.types.logical.RowType;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The `tenantstream-mongodb` lookup table: documents of one MongoDB collection, joined to a stream
 * with FOR SYSTEM_TIME AS OF its processing time, and re-read whole every refresh interval so a
 * running job follows metadata changes (limits, units) without a restart. Not a change stream:
 * those need a replica set, and FerretDB (the local stack's MongoDB-protocol server) has none.
 *
 * <pre>
 *   CREATE TABLE limits (tenant STRING, id STRING, low DOUBLE, high DOUBLE) WITH (
 *     'connector' = 'tenantstream-mongodb', 'uri' = 'mongodb://127.0.0.1:27017',
 *     'database' = 'tenantstream', 'collection' = 'elements', 'tenants' = 'acme;globex',
 *     'refresh-interval' = '10 s', 'fields.low' = 'limits.min', 'fields.high' = 'limits.max')
 * </pre>
 *
 * A column reads the document field of its name, or the dotted path 'fields.COLUMN' names.
 */
public class MongoLookupTableFactory implements DynamicTableSourceFactory {

    public static final String IDENTIFIER = "tenantstream-mongodb";
    static final String FIELDS_PREFIX = "fields.";

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
    public DynamicTableSource createDynamicTableSource(Context context) {
        FactoryUtil.TableFactoryHelper helper = FactoryUtil.createTableFactoryHelper(this, context);
        helper.validateExcept(FIELDS_PREFIX);
        ReadableConfig options = helper.getOptions();
        RowType rowType = (RowType) context.getPhysicalRowDataType().getLogicalType();
        Map<String, String> tableOptions = context.getCatalogTable().getOptions();
        List<String> paths = new ArrayList<>();
        for (String column : rowType.getFieldNames()) {
            paths.add(tableOptions.getOrDefault(FIELDS_PREFIX + column, column));
        }
        for (String key : tableOptions.keySet()) {
            if (key.startsWith(FIELDS_PREFIX) && !rowType.getFieldNames().contains(key.substring(FIELDS_PREFIX.length()))) {
                throw new ValidationException("option '" + key + "' names no column of table "
                        + context.getObjectIdentifier().asSummaryString());
            }
        }
        DocumentRows rows = new DocumentRows(rowType, paths);  // fails here on a column type it cannot read
        MongoCollectionSpec collection = new MongoCollectionSpec(options.get(URI), options.get(DATABASE),
                options.get(COLLECTION), Arrays.asList(options.get(TENANTS).split(";")));
        return new Source(collection, rows, options.get(REFRESH_INTERVAL));
    }

    private static final class Source implements LookupTableSource {
        private final MongoCollectionSpec collection;
        private final DocumentRows rows;
        private final Duration refreshInterval;

        Source(MongoCollectionSpec collection, DocumentRows rows, Duration refreshInterval) {
            this.collection = collection;
            this.rows = rows;
            this.refreshInterval = refreshInterval;
        }

        @Override
        public LookupRuntimeProvider getLookupRuntimeProvider(LookupContext context) {
            int[] keys = new int[context.getKeys().length];
            for (int i = 0; i < keys.length; i++) {
                if (context.getKeys()[i].length != 1) {
                    throw new ValidationException(IDENTIFIER + " joins on top-level columns only");
                }
                keys[i] = context.getKeys()[i][0];
            }
            return LookupFunctionProvider.of(new MongoLookupFunction(collection, rows, keys, refreshInterval));
        }

        @Override
        public DynamicTableSource copy() {
            return new Source(collection, rows, refreshInterval);
        }

        @Override
        public String asSummaryString() {
            return IDENTIFIER + " " + collection;
        }
    }
}
