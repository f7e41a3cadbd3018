package tenantstream.flink;

import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.table.data.RowData;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.message.BinaryMessageEncoder;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * RowData -> Avro single-object encoding of the configured schema, written by Avro's own
 * BinaryMessageEncoder so the header (C3 01 + little-endian CRC-64-AVRO fingerprint) is exactly
 * the spec's and what fastavro/Java consumers expect.
 */
final class SingleObjectSerializationSchema implements SerializationSchema<RowData> {
    private static final long serialVersionUID = 1L;

    private final FieldMapping mapping;

    // Built in open(); Avro objects are not shipped with the job graph.
    private transient Schema schema;
    private transient BinaryMessageEncoder<GenericData.Record> encoder;
    private transient ByteArrayOutputStream buffer;

    SingleObjectSerializationSchema(FieldMapping mapping) {
        this.mapping = mapping;
    }

    @Override
    public void open(InitializationContext context) {
        ensureOpen();
    }

    private void ensureOpen() {
        if (encoder == null) {
            schema = BundledSchemaStore.get().byName(mapping.schemaName);
            encoder = new BinaryMessageEncoder<>(GenericData.get(), schema);
            buffer = new ByteArrayOutputStream(256);
        }
    }

    @Override
    public byte[] serialize(RowData row) {
        ensureOpen();
        GenericData.Record record = new GenericData.Record(schema);
        for (int i = 0; i < mapping.columnOf.length; i++) {
            record.put(i, mapping.toAvro(i, row));
        }
        buffer.reset();
        try {
            encoder.encode(record, buffer);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return buffer.toByteArray();
    }
}
