package tenantstream.flink;

import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.format.DecodingFormat;
import org.apache.flink.table.connector.format.EncodingFormat;
import org.apache.flink.table.connector.sink.DynamicTableSink;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.factories.DeserializationFormatFactory;
import org.apache.flink.table.factories.DynamicTableFactory;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.factories.SerializationFormatFactory;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.RowType;

import org.apache.avro.Schema;

import java.util.Collections;
import java.util.Set;

/**
 * The `tenantstream-avro` format: Avro single-object encoding with the schemas bundled in this
 * jar. Found by Flink through META-INF/services/org.apache.flink.table.factories.Factory.
 *
 * <pre>
 *   'format' = 'tenantstream-avro',
 *   'tenantstream-avro.schema' = 'alarm_event.v2'   -- reader schema (source) / writer schema (sink)
 * </pre>
 */
public class TenantstreamAvroFormatFactory implements DeserializationFormatFactory, SerializationFormatFactory {

    public static final String IDENTIFIER = "tenantstream-avro";

    /** Prefixed by Flink with the identifier: 'tenantstream-avro.schema'. */
    public static final ConfigOption<String> SCHEMA = ConfigOptions.key("schema")
            .stringType()
            .noDefaultValue()
            .withDescription("Name of a bundled Avro schema, the .avsc file name without extension, "
                    + "e.g. 'alarm_event.v2'. Reader schema when decoding (the writer schema comes "
                    + "from each record's fingerprint), writer schema when encoding.");

    @Override
    public String factoryIdentifier() {
        return IDENTIFIER;
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return Collections.singleton(SCHEMA);
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return Collections.emptySet();
    }

    @Override
    public DecodingFormat<DeserializationSchema<RowData>> createDecodingFormat(
            DynamicTableFactory.Context context, ReadableConfig formatOptions) {
        FactoryUtil.validateFactoryOptions(this, formatOptions);
        final String schemaName = formatOptions.get(SCHEMA);
        final Schema schema = lookUp(schemaName);

        return new DecodingFormat<DeserializationSchema<RowData>>() {
            // Called while the planner translates the query, so a column/field mismatch fails
            // the statement before any job is submitted.
            @Override
            public DeserializationSchema<RowData> createRuntimeDecoder(
                    DynamicTableSource.Context ctx, DataType physicalDataType) {
                FieldMapping mapping = new FieldMapping(
                        schemaName, schema, (RowType) physicalDataType.getLogicalType(), true);
                TypeInformation<RowData> producedType = ctx.createTypeInformation(physicalDataType);
                return new SingleObjectDeserializationSchema(mapping, producedType);
            }

            @Override
            public ChangelogMode getChangelogMode() {
                return ChangelogMode.insertOnly();
            }
        };
    }

    @Override
    public EncodingFormat<SerializationSchema<RowData>> createEncodingFormat(
            DynamicTableFactory.Context context, ReadableConfig formatOptions) {
        FactoryUtil.validateFactoryOptions(this, formatOptions);
        final String schemaName = formatOptions.get(SCHEMA);
        final Schema schema = lookUp(schemaName);

        return new EncodingFormat<SerializationSchema<RowData>>() {
            @Override
            public SerializationSchema<RowData> createRuntimeEncoder(
                    DynamicTableSink.Context ctx, DataType physicalDataType) {
                FieldMapping mapping = new FieldMapping(
                        schemaName, schema, (RowType) physicalDataType.getLogicalType(), false);
                return new SingleObjectSerializationSchema(mapping);
            }

            @Override
            public ChangelogMode getChangelogMode() {
                return ChangelogMode.insertOnly();
            }
        };
    }

    private static Schema lookUp(String name) {
        BundledSchemaStore store = BundledSchemaStore.get();
        Schema schema = store.byName(name);
        if (schema == null) {
            throw new ValidationException(String.format(
                    "tenantstream-avro: unknown schema '%s' in option '%s.%s'; bundled schemas: %s",
                    name, IDENTIFIER, SCHEMA.key(), store.names()));
        }
        if (schema.getType() != Schema.Type.RECORD) {
            throw new ValidationException(String.format(
                    "tenantstream-avro: schema '%s' is a %s, not a record.", name, schema.getType()));
        }
        return schema;
    }
}
