// The throughput chart: processed and failed attempts per minute, an inline
// SVG drawn from `/api/throughput` (no chart library).

import { svg } from './core.js';

const W = 1200;
const H = 170;
const PAD = { l: 44, r: 12, t: 12, b: 26 };

const TICKS = 4;

/** A whole tick step of 1, 2 or 5 × 10^k such that TICKS steps reach `v`. */
function tickStep(v) {
  const raw = Math.max(1, v / TICKS);
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

function hhmm(epochSecs) {
  const d = new Date(epochSecs * 1000);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/**
 * Draws `minutes` (`[{minute, processed, failed}]`, oldest first) as two
 * lines; each point has a hover title with its minute and counts.
 */
export function throughputChart(minutes) {
  const n = Math.max(minutes.length, 2);
  const step = tickStep(Math.max(0, ...minutes.map((m) => Math.max(m.processed, m.failed))));
  const max = step * TICKS;
  const x = (i) => PAD.l + (i * (W - PAD.l - PAD.r)) / (n - 1);
  const y = (v) => H - PAD.b - (v * (H - PAD.t - PAD.b)) / max;
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': 'attempts per minute' });

  for (let k = 0; k <= TICKS; k++) {
    const v = step * k;
    root.append(
      svg('line', { x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v), class: 'grid' }),
      svg('text', { x: PAD.l - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, v),
    );
  }
  const every = Math.max(1, Math.round((n - 1) / 4));
  for (let i = n - 1; i >= 0; i -= every) {
    if (!minutes[i]) continue;
    root.append(svg('text', { x: x(i), y: H - 6, class: 'axis', 'text-anchor': 'middle' }, i === n - 1 ? 'now' : hhmm(minutes[i].minute)));
  }

  for (const [key, cls] of [['processed', 'processed'], ['failed', 'failed']]) {
    const pts = minutes.map((m, i) => `${x(i).toFixed(1)},${y(m[key]).toFixed(1)}`);
    if (key === 'processed' && pts.length) {
      root.append(svg('polygon', { class: 'area', points: `${x(0)},${y(0)} ${pts.join(' ')} ${x(minutes.length - 1)},${y(0)}` }));
    }
    root.append(svg('polyline', { class: `line ${cls}`, points: pts.join(' ') }));
  }
  // Hover targets: one transparent column per minute with the counts.
  const colW = (W - PAD.l - PAD.r) / (n - 1);
  minutes.forEach((m, i) => {
    root.append(
      svg(
        'rect',
        { x: x(i) - colW / 2, y: PAD.t, width: colW, height: H - PAD.t - PAD.b, class: 'hover' },
        svg('title', {}, `${hhmm(m.minute)} — processed ${m.processed}, failed ${m.failed}`),
      ),
    );
    if (m.failed > 0) root.append(svg('circle', { cx: x(i), cy: y(m.failed), r: 2.5, class: 'dot failed' }));
  });
  return root;
}
