package tenantstream.flink;

import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.api.ValidationException;

import java.time.Duration;
import java.util.Collections;
import java.util.Set;

/**
 * The `tenantstream-documents` lookup table: documents given with its definition, for metadata fixed when
 * the job is planned (from an asset file rather than the metadata store). Read once, when the job opens.
 *
 * <pre>
 *   CREATE TABLE sensors (tenant STRING, id STRING, kind STRING) WITH (
 *     'connector' = 'tenantstream-documents',
 *     'documents' = '[{"tenant": "acme", "id": "flow-1", "kind": "additive"}]')
 * </pre>
 */
public class InlineDocumentsTableFactory extends DocumentTableFactory {

    public static final String IDENTIFIER = "tenantstream-documents";

    public static final ConfigOption<String> DOCUMENTS = ConfigOptions.key("documents").stringType()
            .noDefaultValue().withDescription("The table's documents: a JSON array of objects.");

    @Override
    public String factoryIdentifier() {
        return IDENTIFIER;
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return Collections.singleton(DOCUMENTS);
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return Collections.emptySet();
    }

    @Override
    DocumentSource source(ReadableConfig options, String table) {
        String json = options.get(DOCUMENTS);
        try {
            InlineDocuments.parse(json);
        } catch (IllegalArgumentException e) {
            throw new ValidationException("option 'documents' of table " + table + ": " + e.getMessage(), e);
        }
        return new InlineDocuments(table, json);
    }

    @Override
    Duration refreshInterval(ReadableConfig options) {
        return null;
    }
}
