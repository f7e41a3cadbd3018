package tenantstream.flink;

import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.LogicalTypeRoot;
import org.apache.flink.table.types.logical.RowType;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Rows of a table from (nested) document fields: column i reads the dotted path i. */
final class DocumentRows implements Serializable {
    private static final long serialVersionUID = 1L;

    private final List<String[]> paths = new ArrayList<>();
    private final List<LogicalTypeRoot> types = new ArrayList<>();
    private final List<String> columns;

    DocumentRows(RowType rowType, List<String> paths) {
        this.columns = new ArrayList<>(rowType.getFieldNames());
        for (int i = 0; i < columns.size(); i++) {
            LogicalType type = rowType.getTypeAt(i);
            switch (type.getTypeRoot()) {
                case CHAR: case VARCHAR: case DOUBLE: case BIGINT: case INTEGER: case BOOLEAN:
                    break;
                default:
                    throw new ValidationException("column " + columns.get(i) + " is " + type
                            + "; a MongoDB lookup table reads STRING, DOUBLE, BIGINT, INT and BOOLEAN");
            }
            this.paths.add(paths.get(i).split("\\."));
            this.types.add(type.getTypeRoot());
        }
    }

    /** The row of a document (Map), its missing or null fields NULL. */
    RowData row(Map<String, Object> document) {
        GenericRowData row = new GenericRowData(paths.size());
        for (int i = 0; i < paths.size(); i++) {
            row.setField(i, internal(i, field(document, paths.get(i))));
        }
        return row;
    }

    /** The Java value a key column's internal value stands for, as `field` would read it. */
    static Object external(Object internal) {
        return internal instanceof StringData ? internal.toString() : internal;
    }

    private Object internal(int column, Object value) {
        if (value == null) {
            return null;
        }
        try {
            switch (types.get(column)) {
                case CHAR: case VARCHAR: return StringData.fromString(value.toString());
                case DOUBLE: return ((Number) value).doubleValue();
                case BIGINT: return ((Number) value).longValue();
                case INTEGER: return ((Number) value).intValue();
                default: return (Boolean) value;
            }
        } catch (ClassCastException e) {
            throw new IllegalArgumentException("field " + String.join(".", paths.get(column)) + " is "
                    + value + ", not a " + types.get(column) + " for column " + columns.get(column), e);
        }
    }

    private static Object field(Map<String, Object> document, String[] path) {
        Object value = document;
        for (String name : path) {
            if (!(value instanceof Map)) {
                return null;
            }
            value = ((Map<?, ?>) value).get(name);
        }
        return value;
    }
}
