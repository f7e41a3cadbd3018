// The rows the page holds, one per window: a map per table keyed by the window's identity
// (PROTOCOL.md "Client dedup key"), so history overlapping live after a reconnect replaces a row
// instead of doubling it, and the newest time per table and tenant is what a reconnect resumes after,
// with the newest commit time received (committedAfter).

const FEED_SIZE = 50;

export class Store {
  constructor() {
    this.tables = new Map(); // name -> {name, time, keys, primary_key, numeric}
    this.clear();
  }

  /** Forget every row (log out, a session that ended). */
  clear() {
    this.rows = new Map(); // table -> Map(key -> row)
    this.committed = null; // the greatest committed_ms of the live windows received
    this.alerts = new Map(); // "job|tenant|key|window_start" -> alert row
    this.rejected = []; // newest first: {type, tenant, row}
    this.listeners = new Set();
    this.version = 0;
  }

  setTables(tables) {
    this.tables = new Map(tables.map((t) => [t.name, t]));
  }

  keyOf(table, row) {
    const meta = this.tables.get(table);
    const columns = meta ? meta.primary_key : Object.keys(row).sort();
    return JSON.stringify([table, ...columns.map((c) => row[c])]);
  }

  /** Take one server frame; return true when it changed what the page holds. */
  apply(frame) {
    if (frame.type === "window") {
      let held = this.rows.get(frame.table);
      if (!held) this.rows.set(frame.table, (held = new Map()));
      held.set(this.keyOf(frame.table, frame.row), { ...frame.row, tenant: frame.tenant });
      if (frame.source === "live" && Number.isInteger(frame.committed_ms) && !(this.committed >= frame.committed_ms)) {
        this.committed = frame.committed_ms;
      }
    } else if (frame.type === "alert") {
      const a = frame.row;
      this.alerts.set([a.job, frame.tenant, a.key, a.window_start].join("|"), { ...a, tenant: frame.tenant });
    } else if (frame.type === "deadletter" || frame.type === "late") {
      this.rejected.unshift({ type: frame.type, tenant: frame.tenant, row: frame.row });
      this.rejected.length = Math.min(this.rejected.length, FEED_SIZE);
    } else {
      return false;
    }
    this.version += 1;
    return true;
  }

  list(table) {
    return [...(this.rows.get(table) || new Map()).values()];
  }

  /**
   * The `after` of a resume: per table, the oldest of the newest times each tenant holds, so that no
   * tenant misses what was committed while the page was away (an operator's page holds several tenants,
   * whose newest windows differ: the greatest of all skipped the others' windows between theirs and it).
   * A table that a tenant the page knows holds nothing of is left out: its whole history comes again and
   * the dedup by key keeps each window once.
   */
  newest() {
    const tenants = new Set();
    for (const held of this.rows.values()) for (const row of held.values()) tenants.add(row.tenant);
    const after = {};
    for (const [table, held] of this.rows) {
      const time = this.tables.get(table)?.time || "window_start";
      const newest = new Map(); // tenant -> its greatest time in this table
      for (const row of held.values()) {
        if (!(newest.get(row.tenant) >= row[time])) newest.set(row.tenant, row[time]);
      }
      if (newest.size > 0 && newest.size === tenants.size) after[table] = Math.min(...newest.values());
    }
    return after;
  }

  /**
   * The `committed_after` of a resume (null before any live window): the server's consumer reads partitions
   * independently, so a window older than the newest held can come after it; the server sends again what
   * was committed shortly before this, whatever its window time (PROTOCOL.md "Client dedup key").
   */
  committedAfter() {
    return this.committed;
  }

  /** Whether an alert was raised for this job, tenant, key and window. */
  alerted(job, tenant, key, windowStart) {
    return this.alerts.has([job, tenant, key, windowStart].join("|"));
  }
}
