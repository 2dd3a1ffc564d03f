// Plots drawn as inline SVG, no library: a labelled scatter (volcano, ranked effects, A vs B) and
// diverging horizontal bars (regulator and pathway activities).

const NS = "http://www.w3.org/2000/svg";
const FONT = 12; // px, the size of tick and point labels
const CHAR = 0.6 * FONT; // a conservative width of one character, for placing labels
const MAX_CIRCLES = 3000; // beyond this many points, unlabelled ones are drawn as one path

export function el(name, attrs = {}, text) {
  const node = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

export function fmt(value, digits = 3) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  const a = Math.abs(value);
  if (a !== 0 && (a < 1e-3 || a >= 1e4)) return value.toExponential(digits - 1);
  return Number(value.toPrecision(digits)).toString();
}

// About `count` round tick values covering [lo, hi].
export function ticks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const error = raw / power; // in [1, 10): round to the nearest of 1, 2, 5, 10 (as d3 does)
  const step = power * (error >= Math.sqrt(50) ? 10 : error >= Math.sqrt(10) ? 5 : error >= Math.sqrt(2) ? 2 : 1);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  }
  return out;
}

function extent(values, { zero = false, pad = 0.05 } = {}) {
  const finite = values.filter(Number.isFinite);
  let lo = finite.length ? Math.min(...finite) : 0;
  let hi = finite.length ? Math.max(...finite) : 1;
  if (zero) {
    lo = Math.min(lo, 0);
    hi = Math.max(hi, 0);
  }
  if (hi === lo) {
    hi += 1;
    lo -= zero && lo === 0 ? 0 : 1;
  }
  const margin = (hi - lo) * pad;
  return [lo - (zero && lo === 0 ? 0 : margin), hi + margin];
}

function overlaps(a, b) {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

// Place each label beside its point where it overlaps no earlier label and stays in the plot.
// Every point of `obstacles` is avoided too.
function placeLabels(group, points, box, obstacles) {
  const taken = obstacles.map((p) => ({ x: p.px - 3, y: p.py - 3, w: 6, h: 6 }));
  for (const p of points) {
    const w = p.text.length * CHAR + 2;
    const h = FONT + 2;
    const spots = [
      [p.px + 6, p.py - h / 2, "start"],
      [p.px - 6 - w, p.py - h / 2, "end"],
      [p.px - w / 2, p.py - 6 - h, "middle"],
      [p.px - w / 2, p.py + 6, "middle"],
    ];
    for (const [x, y, anchor] of spots) {
      const r = { x, y, w, h };
      const inside = x >= box.left && x + w <= box.right && y >= box.top && y + h <= box.bottom;
      if (!inside || taken.some((t) => overlaps(r, t))) continue;
      taken.push(r);
      const tx = anchor === "start" ? x : anchor === "end" ? x + w : x + w / 2;
      group.append(el("text", { x: tx, y: y + h - 3, "text-anchor": anchor, class: "point-label" }, p.text));
      break;
    }
  }
}

function axes(svg, { sx, sy, xDomain, yDomain, box, xLabel, yLabel }) {
  const g = el("g", { class: "axes" });
  for (const t of ticks(...xDomain)) {
    const x = sx(t);
    g.append(el("line", { x1: x, x2: x, y1: box.top, y2: box.bottom, class: "grid" }));
    g.append(el("text", { x, y: box.bottom + FONT + 6, "text-anchor": "middle" }, fmt(t, 2)));
  }
  for (const t of ticks(...yDomain)) {
    const y = sy(t);
    g.append(el("line", { x1: box.left, x2: box.right, y1: y, y2: y, class: "grid" }));
    g.append(el("text", { x: box.left - 6, y: y + FONT / 3, "text-anchor": "end" }, fmt(t, 2)));
  }
  g.append(el("rect", { x: box.left, y: box.top, width: box.right - box.left, height: box.bottom - box.top, class: "frame" }));
  g.append(el("text", { x: (box.left + box.right) / 2, y: box.bottom + 2 * FONT + 14, "text-anchor": "middle", class: "axis-title" }, xLabel));
  const cy = (box.top + box.bottom) / 2;
  g.append(el("text", { x: 14, y: cy, transform: `rotate(-90 14 ${cy})`, "text-anchor": "middle", class: "axis-title" }, yLabel));
  svg.append(g);
}

// A scatter of `points` ({x, y, name, cls, tip}); the `label` largest by `rank` carry their name.
// The width to draw a chart at inside `node` (drawn 1:1, text keeps its size).
export function widthOf(node, fallback = 560) {
  const inner = node.clientWidth - 2; // the chart's border
  return Math.round(Math.min(900, Math.max(300, inner > 0 ? inner : fallback)));
}

export function scatter(points, { xLabel, yLabel, label = 10, rank, title, width = 560, height, lines = [] }) {
  height = height || Math.round(Math.min(460, Math.max(280, width * 0.66)));
  const box = { left: 62, right: width - 14, top: 12, bottom: height - 50 };
  const xDomain = extent(points.map((p) => p.x), { zero: true });
  const yDomain = extent(points.map((p) => p.y), { zero: true });
  const sx = (v) => box.left + ((v - xDomain[0]) / (xDomain[1] - xDomain[0])) * (box.right - box.left);
  const sy = (v) => box.bottom - ((v - yDomain[0]) / (yDomain[1] - yDomain[0])) * (box.bottom - box.top);
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart", "data-points": points.length });
  svg.append(el("title", {}, title));
  axes(svg, { sx, sy, xDomain, yDomain, box, xLabel, yLabel });
  const clipId = `clip-${Math.random().toString(36).slice(2)}`;
  const clip = el("clipPath", { id: clipId });
  clip.append(el("rect", { x: box.left, y: box.top, width: box.right - box.left, height: box.bottom - box.top }));
  svg.append(clip);
  const g = el("g", { "clip-path": `url(#${clipId})` });
  for (const line of lines) {
    g.append(el("line", { x1: sx(line[0][0]), y1: sy(line[0][1]), x2: sx(line[1][0]), y2: sy(line[1][1]), class: "ref" }));
  }
  const shown = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  for (const p of shown) {
    p.px = sx(p.x);
    p.py = sy(p.y);
  }
  const ranked = rank ? [...shown].sort((a, b) => rank(b) - rank(a)) : shown;
  const top = new Set(ranked.slice(0, label));
  const rest = shown.filter((q) => !top.has(q));
  if (rest.length > MAX_CIRCLES) {
    // Many genes: one path of round dots per colour, no tooltips (the labelled ones keep theirs).
    for (const cls of new Set(rest.map((p) => p.cls || ""))) {
      const d = rest.filter((p) => (p.cls || "") === cls).map((p) => `M${p.px.toFixed(1)} ${p.py.toFixed(1)}h0`).join("");
      g.append(el("path", { d, class: `dots ${cls}` }));
    }
  }
  // Labelled points last, so they are drawn on top.
  for (const p of [...(rest.length > MAX_CIRCLES ? [] : rest), ...ranked.slice(0, label)]) {
    const c = el("circle", { cx: p.px.toFixed(1), cy: p.py.toFixed(1), r: top.has(p) ? 4 : 3, class: `point ${p.cls || ""}` });
    c.append(el("title", {}, p.tip || p.name));
    g.append(c);
  }
  svg.append(g);
  const labels = el("g", { class: "labels" });
  const named = ranked.slice(0, label).map((p) => ({ ...p, text: p.name }));
  placeLabels(labels, named, box, shown.length > MAX_CIRCLES ? named : shown);
  svg.append(labels);
  return svg;
}

const TOP_ACTIVITIES = 8; // bars per kind (regulators, pathways)

// The strongest regulators and pathways of `activities` ({name, kind, score}) as bars.
export function activityBars(activities, title, width) {
  const pick = (kind) =>
    activities
      .filter((a) => a.kind === kind && Number.isFinite(a.score))
      .sort((a, b) => Math.abs(b.score) - Math.abs(a.score))
      .slice(0, TOP_ACTIVITIES);
  const items = [...pick("regulator"), ...pick("pathway")];
  if (!items.length) {
    const p = document.createElement("p");
    p.className = "hint";
    p.textContent = "No regulator or pathway activities (the server has no priors for them).";
    return p;
  }
  return bars(items, { title, width });
}

// Horizontal bars diverging from zero, one row per item ({name, score, kind}); a heading row
// starts each kind.
export function bars(items, { title, width = 480 }) {
  const row = 20;
  const rows = [];
  for (const d of items) {
    if (!rows.length || rows[rows.length - 1].kind !== d.kind) rows.push({ heading: `${d.kind}s`, kind: d.kind });
    rows.push(d);
  }
  const nameWidth = Math.min(170, Math.max(70, ...items.map((d) => d.name.length * CHAR + 8)));
  const hasNeg = items.some((d) => d.score < 0);
  // Room for the value printed beyond each bar's end, on the left too when bars go left.
  const box = { left: nameWidth + 8 + (hasNeg ? 44 : 0), right: width - 44, top: 4 };
  const height = box.top + rows.length * row + 26;
  const max = Math.max(1e-12, ...items.map((d) => Math.abs(d.score)));
  const zero = hasNeg ? (box.left + box.right) / 2 : box.left;
  const scale = (box.right - zero) / max;
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart bars", "data-bars": items.length });
  svg.append(el("title", {}, title));
  rows.forEach((d, i) => {
    const y = box.top + i * row;
    const middle = y + row / 2 + FONT / 3;
    if (d.heading) {
      svg.append(el("text", { x: 4, y: middle, class: "group" }, d.heading[0].toUpperCase() + d.heading.slice(1)));
      return;
    }
    const w = Math.abs(d.score) * scale;
    const x = d.score < 0 ? zero - w : zero;
    const name = d.name.length * CHAR > nameWidth ? `${d.name.slice(0, Math.floor(nameWidth / CHAR) - 1)}…` : d.name;
    const label = el("text", { x: nameWidth, y: middle, "text-anchor": "end" }, name);
    label.append(el("title", {}, `${d.name} (${d.kind}): ${fmt(d.score)}`));
    svg.append(label);
    svg.append(el("rect", { x, y: y + 3, width: Math.max(w, 1), height: row - 6, class: `bar ${d.score < 0 ? "down" : "up"} kind-${d.kind}` }));
    const vx = d.score < 0 ? x - 4 : x + w + 4;
    svg.append(el("text", { x: vx, y: middle, "text-anchor": d.score < 0 ? "end" : "start", class: "value" }, fmt(d.score, 2)));
  });
  const bottom = box.top + rows.length * row;
  svg.append(el("line", { x1: zero, x2: zero, y1: box.top, y2: bottom, class: "ref" }));
  svg.append(el("text", { x: (box.left + box.right) / 2, y: bottom + 18, "text-anchor": "middle", class: "axis-title" }, "activity score"));
  return svg;
}
