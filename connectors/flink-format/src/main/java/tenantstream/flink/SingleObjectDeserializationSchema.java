package tenantstream.flink;

import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;

import org.apache.avro.Schema;
import org.apache.avro.SchemaCompatibility;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;

import java.io.EOFException;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Kafka value bytes (Avro single-object encoding) -> RowData in the reader schema's shape.
 *
 * <p>Never throws on bad input: a record that cannot be decoded becomes a row whose Avro columns
 * are NULL, with the reason in `decode_error` and the original bytes in `payload` (when the table
 * declares them), so a poison record is routed by SQL (e.g. to a dead-letter topic) instead of
 * failing and restarting the job forever.
 *
 * <p>The payload column is never NULL, since the dead-letter record's payload is not nullable: a
 * Kafka tombstone (null value) gets empty bytes, and a record over {@link #MAX_RECORD_BYTES} (never
 * a valid reading, and too big to fit in a dead letter next to its reason under Kafka's 1 MiB
 * request limit) gets its first {@link #MAX_RECORD_BYTES} bytes and is not decoded at all.
 */
final class SingleObjectDeserializationSchema implements DeserializationSchema<RowData> {
    private static final long serialVersionUID = 1L;

    /** Header: 0xC3 0x01, then the writer schema's CRC-64-AVRO fingerprint, little-endian. */
    static final byte MAGIC_0 = (byte) 0xC3;
    static final byte MAGIC_1 = (byte) 0x01;
    static final int HEADER_LENGTH = 10;
    private static final int MAX_REASON = 300;
    /** The largest record decoded and kept whole in a dead letter; valid readings are far smaller. */
    static final int MAX_RECORD_BYTES = 64 * 1024;
    private static final byte[] NO_BYTES = new byte[0];

    private final FieldMapping mapping;
    private final TypeInformation<RowData> producedType;

    // Built in open() on the task manager; Avro objects are not shipped with the job graph.
    private transient Schema readerSchema;
    private transient BundledSchemaStore store;
    /** Writer fingerprint -> reader resolving that writer to our reader schema. */
    private transient Map<Long, GenericDatumReader<GenericRecord>> readers;
    /** Writer fingerprint -> why it cannot be read as the reader schema. */
    private transient Map<Long, String> incompatible;
    private transient BinaryDecoder decoder;

    SingleObjectDeserializationSchema(FieldMapping mapping, TypeInformation<RowData> producedType) {
        this.mapping = mapping;
        this.producedType = producedType;
    }

    @Override
    public void open(InitializationContext context) {
        ensureOpen();
    }

    private void ensureOpen() {
        if (readers == null) {
            store = BundledSchemaStore.get();
            readerSchema = store.byName(mapping.schemaName);
            readers = new HashMap<>();
            incompatible = new HashMap<>();
        }
    }

    @Override
    public RowData deserialize(byte[] message) {
        ensureOpen();
        GenericRowData row = new GenericRowData(mapping.arity);
        if (mapping.payloadColumn >= 0) {
            row.setField(mapping.payloadColumn, message == null ? NO_BYTES
                    : message.length > MAX_RECORD_BYTES ? Arrays.copyOf(message, MAX_RECORD_BYTES) : message);
        }
        String error;
        try {
            error = decodeInto(message, row);
        } catch (Exception | StackOverflowError | OutOfMemoryError e) {
            // Errors caught on purpose: garbage must never kill the job (Avro limits above
            // keep allocations small, this is the last line of defence).
            error = "corrupt Avro body: " + describe(e);
        }
        if (error != null) {
            for (int col : mapping.columnOf) {
                row.setField(col, null); // no half-decoded values next to an error
            }
            if (mapping.decodeErrorColumn >= 0) {
                row.setField(mapping.decodeErrorColumn, StringData.fromString(truncate(error)));
            }
        }
        return row;
    }

    /** Fills the Avro columns of row; returns null on success or the reason of the failure. */
    private String decodeInto(byte[] message, GenericRowData row) throws Exception {
        if (message == null) {
            return "null value (a Kafka tombstone)";
        }
        if (message.length == 0) {
            return "empty record";
        }
        if (message.length > MAX_RECORD_BYTES) {
            return "oversized record: " + message.length + " bytes, more than " + MAX_RECORD_BYTES
                    + " (the dead letter keeps the first " + MAX_RECORD_BYTES + ")";
        }
        if (message.length < 2 || message[0] != MAGIC_0 || message[1] != MAGIC_1) {
            return "not Avro single-object encoding (first bytes 0x" + hex(message, 0, 8) + ")";
        }
        if (message.length < HEADER_LENGTH) {
            return "truncated single-object header (" + message.length + " bytes)";
        }
        long fingerprint = 0;
        for (int i = HEADER_LENGTH - 1; i >= 2; i--) {
            fingerprint = (fingerprint << 8) | (message[i] & 0xFF);
        }
        GenericDatumReader<GenericRecord> reader = readerFor(fingerprint);
        if (reader == null) {
            String why = incompatible.get(fingerprint);
            return why != null
                    ? why
                    : "unknown schema fingerprint 0x" + hex(message, 2, 8)
                            + " (not one of the bundled schemas " + store.names() + ")";
        }
        decoder = DecoderFactory.get()
                .binaryDecoder(message, HEADER_LENGTH, message.length - HEADER_LENGTH, decoder);
        GenericRecord record = reader.read(null, decoder);
        if (!decoder.isEnd()) {
            // A well-formed body is consumed exactly; leftovers mean the bytes are not what the
            // fingerprint claims, even though they happened to parse.
            return "corrupt Avro body: trailing bytes after the record";
        }
        for (int i = 0; i < mapping.columnOf.length; i++) {
            row.setField(mapping.columnOf[i], mapping.toFlink(i, record.get(i)));
        }
        return null;
    }

    /** Reader for that writer, resolved against our reader schema; null if unknown/incompatible. */
    private GenericDatumReader<GenericRecord> readerFor(long fingerprint) {
        GenericDatumReader<GenericRecord> reader = readers.get(fingerprint);
        if (reader != null || incompatible.containsKey(fingerprint)) {
            return reader;
        }
        String writerName = store.nameOf(fingerprint);
        if (writerName == null) {
            return null; // not cached: the set of unknown fingerprints is unbounded garbage
        }
        Schema writer = store.byName(writerName);
        SchemaCompatibility.SchemaPairCompatibility compat =
                SchemaCompatibility.checkReaderWriterCompatibility(readerSchema, writer);
        if (compat.getType() != SchemaCompatibility.SchemaCompatibilityType.COMPATIBLE) {
            // Only the first incompatibility, without the schema dumps of getDescription().
            SchemaCompatibility.Incompatibility first =
                    compat.getResult().getIncompatibilities().get(0);
            incompatible.put(fingerprint, "writer schema " + writerName + " cannot be read as "
                    + mapping.schemaName + ": " + first.getType() + " " + first.getMessage()
                    + " at " + first.getLocation());
            return null;
        }
        reader = new GenericDatumReader<>(writer, readerSchema);
        readers.put(fingerprint, reader);
        return reader;
    }

    private static String describe(Throwable e) {
        if (e instanceof EOFException) {
            return "unexpected end of data (truncated record?)";
        }
        String msg = e.getMessage();
        return msg == null || msg.isEmpty() ? e.getClass().getSimpleName() : msg;
    }

    private static String truncate(String s) {
        return s.length() <= MAX_REASON ? s : s.substring(0, MAX_REASON) + "...";
    }

    private static String hex(byte[] bytes, int from, int max) {
        StringBuilder sb = new StringBuilder();
        for (int i = from; i < Math.min(bytes.length, from + max); i++) {
            sb.append(String.format("%02x", bytes[i] & 0xFF));
        }
        return sb.toString();
    }

    @Override
    public boolean isEndOfStream(RowData nextElement) {
        return false;
    }

    @Override
    public TypeInformation<RowData> getProducedType() {
        return producedType;
    }
}
