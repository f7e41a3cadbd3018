package tenantstream.flink;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code TRUSTED_EVENT_TIME(event_time, appended, earliest_ms, max_ahead_ms)}: the record's event
 * time if it may move the watermark, else epoch 0 (1970, before any earliest bound, so "the result
 * is epoch 0" means "not trusted"). Untrusted: missing, before {@code earliest_ms}, or more than
 * {@code max_ahead_ms} after the Kafka append time (a missing append time checks only the first two).
 *
 * <p>Why a function and not the same test in SQL: the source's watermark generator computes the
 * rowtime, and Flink compiles that generator once per Kafka partition unless its code is short
 * (GeneratedWatermarkGeneratorSupplier re-splits code over table.generated-code.max-length with
 * fresh method names, so its compile cache misses). Written as a SQL CASE the generator was 20 KB:
 * 20 partitions meant 20 Janino compiles on the source thread and 20 classes for the JIT to warm.
 * One call keeps it short enough to compile once.
 */
public final class TrustedEventTime extends ScalarFunction {
    private static final long serialVersionUID = 1L;
    private static final TimestampData UNTRUSTED = TimestampData.fromEpochMillis(0);

    public @DataTypeHint(value = "TIMESTAMP_LTZ(3) NOT NULL", bridgedTo = TimestampData.class) TimestampData eval(
            @DataTypeHint(value = "TIMESTAMP_LTZ(3)", bridgedTo = TimestampData.class) TimestampData eventTime,
            @DataTypeHint(value = "TIMESTAMP_LTZ(3)", bridgedTo = TimestampData.class) TimestampData appended,
            long earliestMs, long maxAheadMs) {
        if (eventTime == null) {
            return UNTRUSTED;
        }
        long millis = eventTime.getMillisecond();
        boolean tooEarly = millis < earliestMs;
        // As a difference, so that no event or append time near the ends of a long overflows the test.
        long ahead = appended == null ? 0 : millis - appended.getMillisecond();
        boolean tooFarAhead = appended != null && millis > appended.getMillisecond() && (ahead < 0 || ahead > maxAheadMs);
        return tooEarly || tooFarAhead ? UNTRUSTED : eventTime;
    }
}
