// Alarm rate: the newest window of every station and datapoint, alerted windows highlighted, and the
// rate over time of one chosen key.
import { TimeChart, aligned } from "../chart.js";
import { cell, el, num, utc } from "../format.js";

const TABLE = "alarm_rate";

function keyName(row) {
  return `${row.station_id}/${row.datapoint_id}`;
}

export class AlarmPage {
  constructor(store) {
    this.store = store;
    this.chart = new TimeChart(document.getElementById("alarm-chart"), "rate");
    this.picker = document.getElementById("alarm-key");
    this.picker.addEventListener("change", () => this.render());
  }

  render() {
    const rows = this.store.list(TABLE);
    const newest = new Map();
    for (const row of rows) {
      const id = `${row.tenant}|${keyName(row)}`;
      const held = newest.get(id);
      if (!held || row.window_start > held.window_start) newest.set(id, row);
    }
    const body = document.querySelector("#alarm-table tbody");
    const fresh = document.createElement("tbody");
    for (const row of [...newest.values()].sort((a, b) =>
      a.tenant.localeCompare(b.tenant) || keyName(a).localeCompare(keyName(b), "en", { numeric: true }))) {
      const tr = fresh.insertRow();
      tr.dataset.key = this.store.keyOf(TABLE, row);
      const alerted = this.store.alerted(TABLE, row.tenant, keyName(row), row.window_start);
      if (alerted) tr.classList.add("alert");
      cell(tr, row.tenant);
      cell(tr, row.station_id);
      cell(tr, row.datapoint_id);
      cell(tr, `${utc(row.window_start)} – ${utc(row.window_end, false)}`, row.window_start);
      cell(tr, num(row.fires), row.fires, "num");
      cell(tr, num(row.events), row.events, "num");
      cell(tr, num(row.rate), row.rate, alerted ? "num hot" : "num");
    }
    body.replaceWith(fresh);
    document.getElementById("alarm-empty").hidden = newest.size > 0;
    this.renderAlerts();
    this.renderChart(rows, [...newest.values()]);
  }

  renderAlerts() {
    const list = document.getElementById("alert-list");
    const alerts = [...this.store.alerts.values()].sort((a, b) => b.window_start - a.window_start).slice(0, 30);
    list.replaceChildren(...alerts.map((a) => el("li", { class: "alert" },
      `${utc(a.window_start)} ${a.tenant} ${a.job} ${a.key}: ${a.metric} ${num(a.value)} > ${num(a.threshold)}`)));
    document.getElementById("alert-empty").hidden = alerts.length > 0;
  }

  renderChart(rows, newest) {
    const choices = [...new Set(newest.map((r) => `${r.tenant}|${keyName(r)}`))].sort();
    const chosen = choices.includes(this.picker.value) ? this.picker.value : choices[0];
    if (this.picker.options.length !== choices.length) {
      this.picker.replaceChildren(...choices.map((c) => el("option", { value: c }, c.replace("|", " "))));
    }
    if (!chosen) return;
    this.picker.value = chosen;
    const [tenant, key] = chosen.split("|");
    const mine = rows.filter((r) => r.tenant === tenant && keyName(r) === key);
    const { times, series } = aligned(mine, (r) => r.window_start, () => "rate", (r) => r.rate);
    this.chart.draw(times, series);
  }
}
