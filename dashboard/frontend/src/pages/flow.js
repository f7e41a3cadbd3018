// Flow: a chart per sensor kind over the windows' right-edge labels (additive: sum, non-additive:
// mean, energy counter: increase, power: kWh), and the newest window of every sensor.
import { TimeChart, aligned } from "../chart.js";
import { cell, el, num, utc } from "../format.js";

const TABLE = "flow_aggregates";
const KINDS = [
  { kind: "additive", field: "sum", title: "Additive: sum" },
  { kind: "non_additive", field: "mean", title: "Non-additive: mean" },
  { kind: "energy_counter", field: "increase", title: "Energy counter: increase" },
  { kind: "power", field: "energy_kwh", title: "Power: energy (kWh)" },
];

export class FlowPage {
  constructor(store) {
    this.store = store;
    this.charts = new Map();
    const host = document.getElementById("flow-charts");
    for (const k of KINDS) {
      const panel = el("div", { class: "panel", id: `flow-${k.kind}` });
      panel.append(el("h2", {}, k.title));
      const box = el("div", { class: "chart" });
      panel.append(box, el("p", { class: "empty" }, "no windows of this kind yet"));
      host.append(panel);
      this.charts.set(k.kind, { chart: new TimeChart(box, k.field), panel, ...k });
    }
  }

  render() {
    const rows = this.store.list(TABLE);
    const several = new Set(rows.map((r) => r.tenant)).size > 1; // an operator's page: name the tenant too
    for (const { kind, field, chart, panel } of this.charts.values()) {
      const mine = rows.filter((r) => r.kind === kind);
      panel.querySelector(".empty").hidden = mine.length > 0;
      if (!mine.length) continue;
      const { times, series } = aligned(mine, (r) => r.window_end, (r) => several ? `${r.tenant} ${r.sensor_id}` : r.sensor_id,
        (r) => r[field]);
      chart.draw(times, series);
    }
    const newest = new Map();
    for (const row of rows) {
      const id = `${row.tenant}|${row.sensor_id}`;
      if (!newest.has(id) || row.window_start > newest.get(id).window_start) newest.set(id, row);
    }
    const fresh = document.createElement("tbody");
    for (const row of [...newest.values()].sort((a, b) =>
      a.tenant.localeCompare(b.tenant) || a.sensor_id.localeCompare(b.sensor_id, "en", { numeric: true }))) {
      const tr = fresh.insertRow();
      tr.dataset.key = this.store.keyOf(TABLE, row);
      if (row.breaches > 0) tr.classList.add("alert");
      cell(tr, row.tenant);
      cell(tr, row.sensor_id);
      cell(tr, row.element_id);
      cell(tr, row.kind);
      cell(tr, utc(row.window_end), row.window_end);
      for (const f of ["readings", "breaches", "sum", "mean", "increase", "energy_kwh"]) {
        cell(tr, num(row[f]), row[f], "num");
      }
    }
    document.querySelector("#flow-table tbody").replaceWith(fresh);
    document.getElementById("flow-empty").hidden = newest.size > 0;
  }
}
