package tenantstream.flink;

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
import java.util.List;
import java.util.Map;

/**
 * A lookup table of documents, joined to a stream with FOR SYSTEM_TIME AS OF its processing time. A column
 * reads the document field of its name, or the dotted path that the option 'fields.COLUMN' names. Lookups
 * are answered from a copy in memory (DocumentLookupFunction); subclasses say where the documents come from.
 */
abstract class DocumentTableFactory implements DynamicTableSourceFactory {

    static final String FIELDS_PREFIX = "fields.";

    /** Where the table's documents come from. */
    abstract DocumentSource source(ReadableConfig options, String table);

    /** How often the documents are read again; null: never. */
    abstract Duration refreshInterval(ReadableConfig options);

    @Override
    public DynamicTableSource createDynamicTableSource(Context context) {
        FactoryUtil.TableFactoryHelper helper = FactoryUtil.createTableFactoryHelper(this, context);
        helper.validateExcept(FIELDS_PREFIX);
        String table = context.getObjectIdentifier().asSummaryString();
        RowType rowType = (RowType) context.getPhysicalRowDataType().getLogicalType();
        Map<String, String> tableOptions = context.getCatalogTable().getOptions();
        List<String> paths = new ArrayList<>();
        for (String column : rowType.getFieldNames()) {
            paths.add(tableOptions.getOrDefault(FIELDS_PREFIX + column, column));
        }
        for (String key : tableOptions.keySet()) {
            if (key.startsWith(FIELDS_PREFIX) && !rowType.getFieldNames().contains(key.substring(FIELDS_PREFIX.length()))) {
                throw new ValidationException("option '" + key + "' names no column of table " + table);
            }
        }
        DocumentRows rows = new DocumentRows(rowType, paths);  // fails here on a column type it cannot read
        ReadableConfig options = helper.getOptions();
        return new Source(source(options, table), rows, refreshInterval(options), factoryIdentifier());
    }

    private static final class Source implements LookupTableSource {
        private final DocumentSource documents;
        private final DocumentRows rows;
        private final Duration refreshInterval;
        private final String connector;

        Source(DocumentSource documents, DocumentRows rows, Duration refreshInterval, String connector) {
            this.documents = documents;
            this.rows = rows;
            this.refreshInterval = refreshInterval;
            this.connector = connector;
        }

        @Override
        public LookupRuntimeProvider getLookupRuntimeProvider(LookupContext context) {
            int[] keys = new int[context.getKeys().length];
            for (int i = 0; i < keys.length; i++) {
                if (context.getKeys()[i].length != 1) {
                    throw new ValidationException(connector + " joins on top-level columns only");
                }
                keys[i] = context.getKeys()[i][0];
            }
            return LookupFunctionProvider.of(new DocumentLookupFunction(documents, rows, keys, refreshInterval));
        }

        @Override
        public DynamicTableSource copy() {
            return new Source(documents, rows, refreshInterval, connector);
        }

        @Override
        public String asSummaryString() {
            return connector + " " + documents;
        }
    }
}
