// Sensor health: the three Sensors 360 figures as the server computes them (GET .../health, one
// implementation), fetched again whenever a health window or a silence arrives, and the sensors silent now.
import { api } from "../api.js";
import { TimeChart, aligned } from "../chart.js";
import { cell, duration, el, percent, utc } from "../format.js";

const REFETCH_MS = 300;

export class HealthPage {
  constructor(store, session) {
    this.store = store;
    this.session = session;
    this.chart = new TimeChart(document.getElementById("health-chart"), "silent share");
    this.picker = document.getElementById("health-tenant");
    this.picker.replaceChildren(...session.tenants.map((t) => el("option", { value: t }, t)));
    this.picker.hidden = !session.operator;
    this.picker.addEventListener("change", () => {
      this.picked = true;
      this.refresh();
      this.render();
    });
    this.seen = -1;
    this.timer = null;
    this.picked = false;
  }

  tenant() {
    return this.session.operator ? this.picker.value : this.session.tenant;
  }

  /** An operator first sees a tenant that has health windows, if any has. */
  pickTenant() {
    if (!this.session.operator || this.picked) return;
    const first = this.store.list("sensor_health").map((r) => r.tenant).sort()[0];
    if (first && first !== this.picker.value) {
      this.picker.value = first;
      this.picked = true;
      this.refresh();
    }
  }

  /** Called on every change of the held rows: fetch the figures again once the burst has passed. */
  render() {
    const count = this.store.list("sensor_health").length + this.store.list("sensor_silence").length;
    if (count !== this.seen) {
      this.seen = count;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.refresh(), REFETCH_MS);
    }
    this.pickTenant();
    const mine = this.store.list("sensor_health").filter((r) => r.tenant === this.tenant());
    const { times, series } = aligned(mine, (r) => r.window_start, () => "silent share", (r) => r.silent_share);
    if (times.length) this.chart.draw(times, series);
  }

  async refresh() {
    const tenant = this.tenant();
    if (!tenant) return;
    try {
      this.show(await api(`/api/v1/tenants/${encodeURIComponent(tenant)}/health`));
    } catch (err) {
      document.getElementById("health-window").textContent = `could not load the figures: ${err.message}`;
    }
  }

  show(h) {
    const put = (id, text, value) => {
      const node = document.querySelector(`#${id} b`);
      node.textContent = text;
      node.parentElement.dataset.value = value === null || value === undefined ? "" : String(value);
    };
    put("fig-silent-share", percent(h.silent_share), h.silent_share);
    put("fig-mean-interval", duration(h.mean_interval_ms), h.mean_interval_ms);
    put("fig-mean-lifespan", duration(h.mean_lifespan_ms), h.mean_lifespan_ms);
    document.getElementById("fig-minutes").textContent = h.silence_minutes ?? "N";
    document.getElementById("health-window").textContent = h.window_start === null || h.window_start === undefined
      ? "no health windows yet"
      : `window ${utc(h.window_start)} – ${utc(h.window_end, false)} UTC, ${h.silent_sensors} of ${h.known_sensors} sensors silent`;
    const fresh = document.createElement("tbody");
    for (const s of h.silent_now || []) {
      const tr = fresh.insertRow();
      tr.dataset.sensor = s.sensor_id;
      cell(tr, s.sensor_id);
      cell(tr, utc(s.since), s.since);
      cell(tr, utc(s.last_heartbeat), s.last_heartbeat);
    }
    document.querySelector("#silent-table tbody").replaceWith(fresh);
    document.getElementById("silent-empty").hidden = (h.silent_now || []).length > 0;
  }
}
