// Operations: per job and tenant the server's figures (GET /api/v1/operations, polled while the page
// is open), and the rejected and late records as they arrive.
import { api } from "../api.js";
import { cell, el, num, utc } from "../format.js";

const POLL_MS = 5000;

export class OperationsPage {
  constructor(store) {
    this.store = store;
    this.timer = null;
  }

  /** Poll while shown; `visible` false stops it. */
  poll(visible) {
    clearInterval(this.timer);
    if (!visible) return;
    this.refresh();
    this.timer = setInterval(() => this.refresh(), POLL_MS);
  }

  async refresh() {
    try {
      this.show(await api("/api/v1/operations"));
      document.getElementById("ops-updated").textContent = `as of ${utc(Date.now())} UTC`;
    } catch (err) {
      document.getElementById("ops-updated").textContent = `could not load: ${err.message}`;
    }
  }

  show(ops) {
    const fresh = document.createElement("tbody");
    for (const j of ops.jobs) {
      const tr = fresh.insertRow();
      tr.dataset.job = j.job;
      tr.dataset.tenant = j.tenant;
      cell(tr, j.job);
      cell(tr, j.tenant);
      cell(tr, j.state || "–", j.state);
      cell(tr, num(j.consumer_lag), j.consumer_lag, "num");
      cell(tr, num(j.results), j.results, "num");
      cell(tr, num(j.results_per_second, 2), j.results_per_second, "num");
      const reasons = Object.entries(j.dead_letters || {}).sort((a, b) => b[1] - a[1]);
      cell(tr, reasons.length ? reasons.map(([r, n]) => `${r}: ${n}`).join("\n") : "none",
        JSON.stringify(j.dead_letters || {}), "reasons");
      cell(tr, num(j.late), j.late, "num");
      const c = j.last_checkpoint;
      cell(tr, c ? `#${c.id} at ${utc(c.completed_ms, false)} (${c.duration_ms} ms)` : "–", c ? c.id : null);
    }
    document.querySelector("#ops-table tbody").replaceWith(fresh);
    document.getElementById("ops-empty").hidden = ops.jobs.length > 0;
  }

  render() {
    const list = document.getElementById("reject-list");
    list.replaceChildren(...this.store.rejected.slice(0, 20).map(({ type, tenant, row }) =>
      el("li", { class: type }, `${utc(row.kafka_timestamp)} ${tenant} ${type} ${row.source_topic}` +
        `[${row.partition}]@${row.offset}: ${row.reason}`)));
    document.getElementById("reject-empty").hidden = this.store.rejected.length > 0;
  }
}
