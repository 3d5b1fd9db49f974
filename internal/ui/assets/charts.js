// charts.js draws small line charts of an instance's usage over time, as SVG: a line over
// a shaded area, the y axis from 0 to a round maximum, the time span on the x axis, and the
// latest value in the title.

const NS = 'http://www.w3.org/2000/svg';
const W = 176; const H = 92; // the whole chart
const L = 38; const R = 6; const T = 20; const B = 16; // margins: left (y labels), right, top (title), bottom (x labels)

function el(tag, attrs = {}, ...children) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) n.setAttribute(k, String(v));
  for (const c of children) n.append(c);
  return n;
}

// niceMax rounds v up to 1, 2 or 5 times a power of ten, so the axis reads well.
export function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p * (1 + 1e-9)) return m * p;
  return 10 * p;
}

// series turns history points into [{t (ms), v}] of one field, oldest first, leaving out
// points without a time or a value.
export function series(points, field) {
  const out = [];
  for (const p of points || []) {
    const t = Date.parse(p.time);
    const v = p[field];
    if (!Number.isNaN(t) && typeof v === 'number' && Number.isFinite(v)) out.push({ t, v });
  }
  return out.sort((a, b) => a.t - b.t);
}

// scale maps a point into box: time t0..t1 to left..right (a single time to the right
// edge), value 0..max to bottom..top.
export function scale(t0, t1, max, box) {
  return {
    x: (t) => box.x + (t1 > t0 ? ((t - t0) / (t1 - t0)) * box.w : box.w),
    y: (v) => box.y + box.h - (Math.min(Math.max(v, 0), max) / max) * box.h,
  };
}

// linePath writes the SVG path through pts, scaled by s.
export function linePath(pts, s) {
  return pts.map((p, i) => `${i ? 'L' : 'M'}${s.x(p.t).toFixed(1)} ${s.y(p.v).toFixed(1)}`).join(' ');
}

function spanText(ms) {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  return `${Math.round(s / 60)} min`;
}

// lineChart builds the chart of pts ([{t, v}]) for one metric of one instance. kind is "cpu"
// or "memory"; format writes a value with its unit, tick (format when not given) a value on
// the y axis.
export function lineChart({ kind, instance, title, pts, format, tick }) {
  const tickText = tick || format;
  const latest = pts.length ? pts[pts.length - 1].v : NaN;
  const max = niceMax(Math.max(0, ...pts.map((p) => p.v)));
  const box = { x: L, y: T, w: W - L - R, h: H - T - B };
  const label = pts.length
    ? `${title} of ${instance}: ${format(latest)} now, ${pts.length} points`
    : `${title} of ${instance}: no data yet`;
  const svg = el('svg', {
    class: `chart chart-${kind}`, viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img',
    'aria-label': label, 'data-chart': kind, 'data-instance': instance, 'data-points': pts.length,
  }, el('title', {}, label));
  svg.append(el('text', { x: 2, y: 12, class: 'chart-title' }, title));
  svg.append(el('text', { x: W - 2, y: 12, class: 'chart-latest', 'text-anchor': 'end' }, pts.length ? format(latest) : '\u2013'));
  // Axes and grid: y at 0, max/2 and max.
  for (const f of [0, 0.5, 1]) {
    const y = box.y + box.h - f * box.h;
    svg.append(el('line', { x1: box.x, y1: y, x2: box.x + box.w, y2: y, class: f ? 'chart-grid' : 'chart-axis' }));
    if (f !== 0.5) svg.append(el('text', { x: box.x - 4, y: y + 3, class: 'chart-tick', 'text-anchor': 'end' }, tickText(max * f)));
  }
  svg.append(el('line', { x1: box.x, y1: box.y, x2: box.x, y2: box.y + box.h, class: 'chart-axis' }));
  if (pts.length === 0) {
    svg.append(el('text', { x: box.x + box.w / 2, y: box.y + box.h / 2 + 4, class: 'chart-tick', 'text-anchor': 'middle' }, 'no data yet'));
    return svg;
  }
  const t0 = pts[0].t; const t1 = pts[pts.length - 1].t;
  svg.append(el('text', { x: box.x, y: H - 3, class: 'chart-tick' }, t1 > t0 ? `-${spanText(t1 - t0)}` : ''));
  svg.append(el('text', { x: box.x + box.w, y: H - 3, class: 'chart-tick', 'text-anchor': 'end' }, 'now'));
  const s = scale(t0, t1, max, box);
  const line = linePath(pts, s);
  if (pts.length > 1) {
    const base = box.y + box.h;
    const area = `${line} L${(box.x + box.w).toFixed(1)} ${base} L${box.x} ${base} Z`;
    svg.append(el('path', { d: area, class: 'chart-area' }));
    svg.append(el('path', { d: line, class: 'chart-line' }));
  }
  const last = pts[pts.length - 1];
  svg.append(el('circle', { cx: s.x(last.t).toFixed(1), cy: s.y(last.v).toFixed(1), r: 2.5, class: 'chart-dot' }));
  return svg;
}
