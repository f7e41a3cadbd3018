package tenantstream.flink;

import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.LogicalTypeRoot;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.table.types.logical.utils.LogicalTypeChecks;

import org.apache.avro.LogicalTypes;
import org.apache.avro.Schema;
import org.apache.avro.util.Utf8;

import java.io.Serializable;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * Maps the Avro fields of one schema to table columns BY NAME, checked once at planning time,
 * and converts single values between Avro's generic representation and Flink's internal one.
 *
 * <p>Serializable and free of Avro objects, so it ships to the task managers inside the
 * (de)serialization schemas; the Avro schema itself is looked up again there by name.
 */
final class FieldMapping implements Serializable {
    private static final long serialVersionUID = 1L;

    /** Columns that are not Avro fields: filled by the decoder, never by a record's body. */
    static final String DECODE_ERROR = "decode_error";
    static final String PAYLOAD = "payload";

    /** The Avro types we map; anything else in a schema is rejected at planning time. */
    enum Kind {
        STRING(LogicalTypeRoot.CHAR, LogicalTypeRoot.VARCHAR),
        INT(LogicalTypeRoot.INTEGER),
        LONG(LogicalTypeRoot.BIGINT),
        FLOAT(LogicalTypeRoot.FLOAT),
        DOUBLE(LogicalTypeRoot.DOUBLE),
        BOOLEAN(LogicalTypeRoot.BOOLEAN),
        BYTES(LogicalTypeRoot.BINARY, LogicalTypeRoot.VARBINARY),
        TIMESTAMP_MILLIS(
                LogicalTypeRoot.TIMESTAMP_WITH_LOCAL_TIME_ZONE,
                LogicalTypeRoot.TIMESTAMP_WITHOUT_TIME_ZONE);

        final Set<LogicalTypeRoot> columnRoots;

        Kind(LogicalTypeRoot first, LogicalTypeRoot... rest) {
            this.columnRoots = EnumSet.of(first, rest);
        }
    }

    final String schemaName;
    final int arity; // number of physical columns the format sees
    final String[] fieldNames; // Avro fields, in schema order
    final int[] columnOf; // Avro field i -> column index
    final Kind[] kinds; // Avro field i -> value kind
    final boolean[] nullable; // Avro field i is a ["null", T] union
    final int[] timestampPrecision; // column precision for TIMESTAMP_MILLIS fields
    final int decodeErrorColumn; // -1 if not declared
    final int payloadColumn; // -1 if not declared

    /**
     * @param allowSpecialColumns true for decoding: decode_error/payload columns that are not
     *     Avro fields are allowed and filled by the decoder; for encoding every column must be a
     *     field, so nothing the user writes is silently dropped.
     */
    FieldMapping(String schemaName, Schema schema, RowType rowType, boolean allowSpecialColumns) {
        this.schemaName = schemaName;
        this.arity = rowType.getFieldCount();
        List<Schema.Field> fields = schema.getFields();
        int n = fields.size();
        fieldNames = new String[n];
        columnOf = new int[n];
        kinds = new Kind[n];
        nullable = new boolean[n];
        timestampPrecision = new int[n];
        List<String> columns = rowType.getFieldNames();
        boolean[] used = new boolean[arity];

        for (int i = 0; i < n; i++) {
            Schema.Field field = fields.get(i);
            String name = field.name();
            fieldNames[i] = name;
            Schema fieldSchema = field.schema();
            if (fieldSchema.isNullable() && fieldSchema.getType() == Schema.Type.UNION) {
                fieldSchema = nonNullBranch(fieldSchema, name);
                nullable[i] = true;
            }
            kinds[i] = kindOf(fieldSchema, name);
            int col = columns.indexOf(name);
            if (col < 0) {
                throw new ValidationException(String.format(
                        "tenantstream-avro: Avro field '%s' of schema '%s' has no column of that name; "
                                + "declare a column `%s` %s (columns: %s).",
                        name, schemaName, name, suggestedType(kinds[i]), columns));
            }
            LogicalType colType = rowType.getTypeAt(col);
            if (!kinds[i].columnRoots.contains(colType.getTypeRoot())) {
                throw new ValidationException(String.format(
                        "tenantstream-avro: column `%s` has type %s but Avro field '%s' of schema '%s' is %s; "
                                + "use %s.",
                        name, colType.asSummaryString(), name, schemaName, fieldSchema, suggestedType(kinds[i])));
            }
            if (kinds[i] == Kind.TIMESTAMP_MILLIS) {
                timestampPrecision[i] = LogicalTypeChecks.getPrecision(colType);
            }
            columnOf[i] = col;
            used[col] = true;
        }

        int errorCol = -1;
        int payloadCol = -1;
        List<String> unknown = new ArrayList<>();
        for (int c = 0; c < arity; c++) {
            if (used[c]) {
                continue;
            }
            String name = columns.get(c);
            LogicalTypeRoot root = rowType.getTypeAt(c).getTypeRoot();
            if (allowSpecialColumns && name.equals(DECODE_ERROR)) {
                requireRoot(name, rowType.getTypeAt(c), Kind.STRING);
                errorCol = c;
            } else if (allowSpecialColumns && name.equals(PAYLOAD)) {
                requireRoot(name, rowType.getTypeAt(c), Kind.BYTES);
                payloadCol = c;
            } else {
                unknown.add(name + " " + root);
            }
        }
        if (!unknown.isEmpty()) {
            throw new ValidationException(String.format(
                    "tenantstream-avro: column(s) %s are not fields of Avro schema '%s' (fields: %s)%s.",
                    unknown, schemaName, List.of(fieldNames),
                    allowSpecialColumns ? "; the only extra columns allowed are `decode_error` STRING and `payload` BYTES" : ""));
        }
        this.decodeErrorColumn = errorCol;
        this.payloadColumn = payloadCol;
    }

    // ---- value conversion ----------------------------------------------------------------

    /** Avro generic value (as GenericDatumReader returns it) -> Flink internal value. */
    Object toFlink(int field, Object avro) {
        if (avro == null) {
            return null;
        }
        switch (kinds[field]) {
            case STRING:
                Utf8 utf8 = avro instanceof Utf8 ? (Utf8) avro : new Utf8(avro.toString());
                int invalid = firstInvalidUtf8(utf8.getBytes(), utf8.getByteLength());
                if (invalid >= 0) {
                    throw new IllegalArgumentException(String.format(
                            "invalid UTF-8 in field %s at byte %d", fieldNames[field], invalid));
                }
                return StringData.fromBytes(Arrays.copyOf(utf8.getBytes(), utf8.getByteLength()));
            case BYTES:
                ByteBuffer buf = ((ByteBuffer) avro).duplicate();
                byte[] bytes = new byte[buf.remaining()];
                buf.get(bytes);
                return bytes;
            case TIMESTAMP_MILLIS:
                return TimestampData.fromEpochMillis((Long) avro);
            default: // INT, LONG, FLOAT, DOUBLE, BOOLEAN: same boxed Java type on both sides
                return avro;
        }
    }

    /** Flink internal value in column columnOf[field] of row -> Avro generic value. */
    Object toAvro(int field, RowData row) {
        int col = columnOf[field];
        if (row.isNullAt(col)) {
            if (!nullable[field]) {
                throw new IllegalArgumentException(String.format(
                        "tenantstream-avro: column `%s` is NULL but Avro field '%s' of schema '%s' is not nullable",
                        fieldNames[field], fieldNames[field], schemaName));
            }
            return null;
        }
        switch (kinds[field]) {
            case STRING:
                return new Utf8(row.getString(col).toBytes());
            case INT:
                return row.getInt(col);
            case LONG:
                return row.getLong(col);
            case FLOAT:
                return row.getFloat(col);
            case DOUBLE:
                return row.getDouble(col);
            case BOOLEAN:
                return row.getBoolean(col);
            case BYTES:
                return ByteBuffer.wrap(row.getBinary(col));
            case TIMESTAMP_MILLIS:
                return row.getTimestamp(col, timestampPrecision[field]).getMillisecond();
            default:
                throw new IllegalStateException("unreachable: " + kinds[field]);
        }
    }

    // ---- helpers ---------------------------------------------------------------------------

    /**
     * The offset of the first byte that is not well-formed UTF-8 (RFC 3629: no overlong forms, no
     * surrogates, nothing above U+10FFFF), or -1. Avro strings are UTF-8 by the spec, but Avro reads
     * them as bytes without checking; unchecked, bad bytes would reach every reader of the results.
     */
    static int firstInvalidUtf8(byte[] bytes, int length) {
        int i = 0;
        while (i < length) {
            int b = bytes[i] & 0xFF;
            if (b < 0x80) {
                i++;
                continue;
            }
            int extra;
            int min;
            if (b >= 0xC2 && b <= 0xDF) {
                extra = 1;
                min = 0x80;
            } else if (b >= 0xE0 && b <= 0xEF) {
                extra = 2;
                min = 0x800;
            } else if (b >= 0xF0 && b <= 0xF4) {
                extra = 3;
                min = 0x10000;
            } else {
                return i;
            }
            if (i + extra >= length) {
                return i;
            }
            int code = b & (0x3F >> extra);
            for (int k = 1; k <= extra; k++) {
                int c = bytes[i + k] & 0xFF;
                if ((c & 0xC0) != 0x80) {
                    return i;
                }
                code = (code << 6) | (c & 0x3F);
            }
            if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
                return i;
            }
            i += extra + 1;
        }
        return -1;
    }

    private static Schema nonNullBranch(Schema union, String field) {
        List<Schema> types = union.getTypes();
        if (types.size() != 2) {
            throw new ValidationException(String.format(
                    "tenantstream-avro: Avro field '%s' is a union %s; only [\"null\", T] unions are supported.",
                    field, union));
        }
        return types.get(0).getType() == Schema.Type.NULL ? types.get(1) : types.get(0);
    }

    private static Kind kindOf(Schema s, String field) {
        org.apache.avro.LogicalType logical = s.getLogicalType();
        if (logical != null) {
            if (logical instanceof LogicalTypes.TimestampMillis) {
                return Kind.TIMESTAMP_MILLIS;
            }
            throw new ValidationException(String.format(
                    "tenantstream-avro: Avro field '%s' has logical type %s, which is not supported "
                            + "(supported: timestamp-millis).", field, logical.getName()));
        }
        switch (s.getType()) {
            case STRING: return Kind.STRING;
            case INT: return Kind.INT;
            case LONG: return Kind.LONG;
            case FLOAT: return Kind.FLOAT;
            case DOUBLE: return Kind.DOUBLE;
            case BOOLEAN: return Kind.BOOLEAN;
            case BYTES: return Kind.BYTES;
            default:
                throw new ValidationException(String.format(
                        "tenantstream-avro: Avro field '%s' has type %s, which is not supported "
                                + "(supported: string, int, long, float, double, boolean, bytes, "
                                + "timestamp-millis long, and [\"null\", T] of those).", field, s));
        }
    }

    private static void requireRoot(String column, LogicalType type, Kind kind) {
        if (!kind.columnRoots.contains(type.getTypeRoot())) {
            throw new ValidationException(String.format(
                    "tenantstream-avro: column `%s` must be %s, not %s.",
                    column, suggestedType(kind), type.asSummaryString()));
        }
    }

    private static String suggestedType(Kind kind) {
        switch (kind) {
            case STRING: return "STRING";
            case INT: return "INT";
            case LONG: return "BIGINT";
            case FLOAT: return "FLOAT";
            case DOUBLE: return "DOUBLE";
            case BOOLEAN: return "BOOLEAN";
            case BYTES: return "BYTES";
            case TIMESTAMP_MILLIS: return "TIMESTAMP_LTZ(3) (or TIMESTAMP(3))";
            default: return kind.name();
        }
    }
}
