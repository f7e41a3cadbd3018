// Display formats: times in UTC (the windows' own clock), numbers with the precision they carry.

export function utc(ms, withDate = true) {
  if (ms === null || ms === undefined) return "–";
  const iso = new Date(ms).toISOString();
  return withDate ? `${iso.slice(0, 10)} ${iso.slice(11, 19)}` : iso.slice(11, 19);
}

export function num(value, digits = 3) {
  if (value === null || value === undefined) return "–";
  if (Number.isInteger(value)) return value.toLocaleString("en");
  return value.toLocaleString("en", { maximumFractionDigits: digits });
}

export function percent(value) {
  return value === null || value === undefined ? "–" : `${(value * 100).toFixed(1)}%`;
}

export function duration(ms) {
  if (ms === null || ms === undefined) return "–";
  const s = ms / 1000;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** A table cell whose text is formatted and whose data-value keeps the exact value for tests and copy. */
export function cell(tr, text, value, cls) {
  const td = tr.insertCell();
  td.textContent = text;
  if (value !== undefined) td.dataset.value = value === null ? "" : String(value);
  if (cls) td.className = cls;
  return td;
}

export function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}
