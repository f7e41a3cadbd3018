// The rows the page holds, one per window: a map per table keyed by the window's identity
// (PROTOCOL.md "Client dedup key"), so history overlapping live after a reconnect replaces a row
// instead of doubling it, and the newest time per table is what a reconnect resumes after.

const FEED_SIZE = 50;

export class Store {
  constructor() {
    this.tables = new Map(); // name -> {name, time, keys, primary_key, numeric}
    this.clear();
  }

  /** Forget every row (log out, a session that ended). */
  clear() {
    this.rows = new Map(); // table -> Map(key -> row)
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

  /** The greatest time column value held per table: the `after` of a resume. */
  newest() {
    const after = {};
    for (const [table, held] of this.rows) {
      const time = this.tables.get(table)?.time || "window_start";
      let max = null;
      for (const row of held.values()) if (max === null || row[time] > max) max = row[time];
      if (max !== null) after[table] = max;
    }
    return after;
  }

  /** Whether an alert was raised for this job, tenant, key and window. */
  alerted(job, tenant, key, windowStart) {
    return this.alerts.has([job, tenant, key, windowStart].join("|"));
  }
}
