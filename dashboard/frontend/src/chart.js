// Time-series charts on uPlot: one chart object per panel, whose data is replaced as windows arrive.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777",
  "#4b5563", "#65a30d"];

export class TimeChart {
  /** @param {HTMLElement} host  @param {string} unit  the y axis' label */
  constructor(host, unit) {
    this.host = host;
    this.unit = unit;
    this.plot = null;
    this.names = "";
  }

  /**
   * @param {number[]} times  epoch ms, ascending
   * @param {{name: string, values: (number|null)[]}[]} series  one value per time (null: no window)
   */
  draw(times, series) {
    const names = series.map((s) => s.name).join("\u0000");
    const data = [times.map((t) => t / 1000), ...series.map((s) => s.values)];
    if (this.plot && names === this.names && this.host.isConnected) {
      this.plot.setData(data);
      return;
    }
    if (this.plot) this.plot.destroy();
    this.names = names;
    const width = Math.max(this.host.clientWidth, 320);
    this.plot = new uPlot({
      width,
      height: 220,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      scales: { x: { time: true } },
      legend: { live: false },
      axes: [{ values: (u, splits) => splits.map((s) => clock(s, u.scales.x.max - u.scales.x.min)) },
        { label: this.unit, size: 60 }],
      series: [{ label: "window (UTC)" },
        ...series.map((s, i) => ({ label: s.name, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: false,
          points: { show: times.length < 60 } }))],
    }, data, this.host);
  }
}

/** An axis label in UTC, 24-hour, as fine as the span shown needs. */
function clock(seconds, span) {
  const iso = new Date(seconds * 1000).toISOString();
  if (span > 2 * 86400) return `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
  return span > 600 ? iso.slice(11, 16) : iso.slice(11, 19);
}

/** Rows (already filtered to one chart) as uPlot's aligned columns: times, and one series per name. */
export function aligned(rows, timeOf, nameOf, valueOf) {
  const times = [...new Set(rows.map(timeOf))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const byName = new Map();
  for (const row of rows) {
    const name = nameOf(row);
    if (!byName.has(name)) byName.set(name, new Array(times.length).fill(null));
    byName.get(name)[index.get(timeOf(row))] = valueOf(row);
  }
  const series = [...byName.keys()].sort().map((name) => ({ name, values: byName.get(name) }));
  return { times, series };
}
