package tenantstream.flink;

import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.table.functions.LookupFunction;

import org.bson.Document;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Answers lookups from an in-memory copy of the source's documents, which a background thread
 * replaces whole every refresh interval (if it has one). A lookup never waits for MongoDB;
 * if a refresh fails, the last copy stays in use and the failure is logged. The first copy is read in
 * open(), so the job's first records already see the metadata, and a job whose metadata server is
 * unreachable fails to start.
 */
public class DocumentLookupFunction extends LookupFunction {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(DocumentLookupFunction.class);

    private final DocumentSource source;
    private final DocumentRows rows;
    private final int[] keys;
    private final Duration refreshInterval;

    private transient ScheduledExecutorService refresher;
    private transient volatile Map<List<Object>, List<RowData>> byKey;

    DocumentLookupFunction(DocumentSource source, DocumentRows rows, int[] keys, Duration refreshInterval) {
        this.source = source;
        this.rows = rows;
        this.keys = keys;
        this.refreshInterval = refreshInterval;
    }

    @Override
    public void open(FunctionContext context) throws Exception {
        source.open();
        try {
            byKey = read();
        } catch (RuntimeException e) {
            throw new IOException("cannot read the lookup table " + source + ": " + e.getMessage(), e);
        }
        if (refreshInterval == null) {
            return;
        }
        refresher = Executors.newSingleThreadScheduledExecutor(runnable -> {
            Thread thread = new Thread(runnable, "tenantstream lookup refresh " + source);
            thread.setDaemon(true);
            return thread;
        });
        long every = refreshInterval.toMillis();
        refresher.scheduleWithFixedDelay(this::refresh, every, every, TimeUnit.MILLISECONDS);
    }

    private void refresh() {
        try {
            byKey = read();
        } catch (RuntimeException e) {
            LOG.warn("refresh of {} failed; the previous copy stays in use: {}", source, e.toString());
        }
    }

    private Map<List<Object>, List<RowData>> read() {
        Map<List<Object>, List<RowData>> copy = new HashMap<>();
        int skipped = 0;
        for (Document document : source.documents()) {
            RowData row;
            try {
                row = rows.row(document);
            } catch (IllegalArgumentException e) {
                skipped++;
                LOG.warn("{}: document {} skipped: {}", source, document.get("_id"), e.getMessage());
                continue;
            }
            List<Object> key = new ArrayList<>(keys.length);
            for (int column : keys) {
                key.add(DocumentRows.external(field(row, column)));
            }
            copy.computeIfAbsent(key, k -> new ArrayList<>(1)).add(row);
        }
        LOG.info("read {} keys of {} ({} documents skipped)", copy.size(), source, skipped);
        return copy;
    }

    /** A field of a row built here or of a key row, which LookupFunction.eval builds as GenericRowData. */
    private static Object field(RowData row, int column) {
        return ((GenericRowData) row).getField(column);
    }

    @Override
    public Collection<RowData> lookup(RowData keyRow) {
        List<Object> key = new ArrayList<>(keys.length);
        for (int i = 0; i < keys.length; i++) {
            key.add(DocumentRows.external(field(keyRow, i)));
        }
        return byKey.getOrDefault(key, Collections.emptyList());
    }

    @Override
    public void close() {
        if (refresher != null) {
            refresher.shutdownNow();
        }
        source.close();
    }
}
