// The overview: totals, throughput over the last hour, pools alive, and the
// queues × priorities × states table.

import { actionButton, api, enc, fmtNum, h, note } from './core.js';
import { throughputChart } from './chart.js';

export const STATES = ['pending', 'scheduled', 'running', 'retrying', 'dead', 'processed', 'failed', 'expired'];
const PRIORITIES = ['critical', 'high', 'normal', 'low'];
/** The chart changes by the minute: refresh it every this many polls. */
const CHART_EVERY = 5;

/** How many partitions (hash slots) a partitioned queue is spread over. */
export function partitionsBadge(q) {
  return h('span', {
    class: 'badge st-active',
    'data-partitions': String(q.partitions),
    title: `Spread over ${q.partitions} partitions (hash slots): priorities are strict within each, and its counts are their sums.`,
  }, `${q.partitions} partitions`);
}

/** Pause or resume a queue, with confirmation. */
export function pauseButton(q, after) {
  const verb = q.paused ? 'resume' : 'pause';
  return actionButton(q.paused ? 'Resume' : 'Pause', verb, {
    title: q.paused ? `Resume queue ${q.name}` : `Pause queue ${q.name}`,
    text: q.paused
      ? `Workers take jobs from “${q.name}” again.`
      : `Workers stop taking jobs from “${q.name}”; producers can still enqueue.`,
    path: `/queues/${enc(q.name)}/${verb}`,
    done: (b) => `Queue ${b.name} ${b.paused ? 'paused' : 'resumed'}.`,
  }, after);
}

function card(label, value, cls = '', sub = null) {
  return h('div', { class: `card ${cls}` }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, value), sub && h('div', { class: 'sub' }, sub));
}

function countCell(queue, priority, state, value) {
  const attrs = { 'data-queue': queue, 'data-priority': priority, 'data-state': state, class: value ? 'num' : 'num zero' };
  let content = fmtNum(value);
  if (value && ['pending', 'scheduled', 'running', 'retrying', 'dead', 'expired'].includes(state) && priority === 'all') {
    const href = state === 'dead' ? `#/dead?queue=${enc(queue)}` : `#/queues/${enc(queue)}?status=${state}`;
    content = h('a', { href }, content);
  }
  return h('td', attrs, content);
}

export function overviewPage() {
  const cards = h('section', { class: 'cards' });
  const chart = h('div', { class: 'chart-box' }, note('loading…'));
  const table = h('div', { class: 'table-box' }, note('loading…'));
  const el = h(
    'div',
    {},
    h('h1', {}, 'Overview'),
    cards,
    h('section', { class: 'panel' },
      h('h2', {}, 'Attempts per minute — last hour, all queues'),
      h('div', { class: 'legend' }, h('span', { class: 'key processed' }, 'processed'), h('span', { class: 'key failed' }, 'failed')),
      chart),
    h('section', { class: 'panel' }, h('h2', {}, 'Queues'), table),
  );
  let polls = 0;
  let lastStats = '';
  let lastWorkers = '';
  let stats = null;
  let workers = null;

  // Cards change with every heartbeat (pools); the table only with the stats.
  const renderCards = () => {
    const t = stats.totals;
    const busy = workers ? `${workers.busy} of ${workers.workers} workers busy` : '';
    cards.replaceChildren(
      card('Pending', fmtNum(t.pending)),
      card('Scheduled', fmtNum(t.scheduled)),
      card('Running', fmtNum(t.running)),
      card('Retrying', fmtNum(t.retrying), t.retrying ? 'warn' : ''),
      card('Dead', fmtNum(t.dead), t.dead ? 'bad' : ''),
      card('Processed', fmtNum(t.processed)),
      card('Failed attempts', fmtNum(t.failed)),
      card('Expired', fmtNum(t.expired || 0), t.expired ? 'warn' : '', 'never started in time'),
      h('a', { href: '#/workers', class: 'card-link' },
        card('Pools alive', workers ? fmtNum(workers.pools.length) : '–', workers && workers.pools.length === 0 ? 'bad' : '', busy)),
    );
  };

  const renderTable = () => {
    if (stats.queues.length === 0) {
      table.replaceChildren(note('No queue yet: enqueue a job and it shows here.'));
      return;
    }
    const head = h('tr', {}, h('th', {}, 'Queue'), h('th', {}, 'Priority'), STATES.map((s) => h('th', { class: 'num' }, s)), h('th', {}, 'State'));
    const rows = [];
    for (const q of stats.queues) {
      rows.push(h('tr', { class: 'queue-row', 'data-queue': q.name },
        h('td', {}, h('a', { href: `#/queues/${enc(q.name)}`, class: 'qname' }, q.name)),
        h('td', { class: 'muted' }, 'all'),
        STATES.map((s) => countCell(q.name, 'all', s, q[s])),
        h('td', { class: 'state' },
          h('span', { class: q.paused ? 'badge st-paused' : 'badge st-active', 'data-paused': String(q.paused) }, q.paused ? 'paused' : 'active'),
          q.partitions ? [' ', partitionsBadge(q)] : null,
          ' ', pauseButton(q, () => { lastStats = ''; el.refresh && el.refresh(); }))));
      for (const p of PRIORITIES) {
        const c = q.by_priority[p];
        // A priority with nothing in it and nothing done adds only noise.
        if (!c || STATES.every((st) => !c[st])) continue;
        rows.push(h('tr', { class: 'prio-row' }, h('td', {}), h('td', { class: `prio prio-${p}` }, p), STATES.map((s) => countCell(q.name, p, s, c[s])), h('td', {})));
      }
    }
    table.replaceChildren(h('table', { class: 'grid', id: 'queues' }, h('thead', {}, head), h('tbody', {}, rows)));
  };

  const refresh = async () => {
    const [s, w] = await Promise.all([api('/stats'), api('/workers').catch(() => null)]);
    const sj = JSON.stringify(s.queues) + JSON.stringify(s.totals);
    const wj = JSON.stringify(w);
    stats = s;
    workers = w;
    if (sj !== lastStats || wj !== lastWorkers) renderCards();
    if (sj !== lastStats) renderTable();
    lastStats = sj;
    lastWorkers = wj;
    if (polls++ % CHART_EVERY === 0) {
      try {
        const tp = await api('/throughput?minutes=60');
        chart.replaceChildren(throughputChart(tp.minutes));
      } catch (e) {
        chart.replaceChildren(note(`No chart: ${e.message}`, 'error'));
      }
    }
  };
  const fail = (e) => {
    if (!stats) table.replaceChildren(note(e.message, 'error'));
  };
  el.refresh = refresh;
  return { el, refresh, fail };
}
