// Workflows and batches: the list (status, progress, times), a workflow's
// steps laid out by dependency level (one column per level), a batch's
// progress, callbacks and jobs, and Cancel (admin).

import { actionButton, api, enc, fmtNum, fmtTime, h, jobLink, note, statusBadge, timeEl } from './core.js';
import { pager } from './queue.js';

const PAGE_SIZE = 25;
const KINDS = [['', 'All'], ['workflow', 'Workflows'], ['batch', 'Batches']];

/** Keeps a page's content until its data changes. */
function changes() {
  let last = '';
  return (data) => {
    const j = JSON.stringify(data);
    if (j === last) return false;
    last = j;
    return true;
  };
}

/** `running (open)` for a batch that takes more jobs. */
function flowStatus(f, attrs = {}) {
  const badge = statusBadge(f.status, { ...attrs, 'data-status': f.status });
  if (f.kind === 'batch' && !f.closed && f.status === 'running') {
    return [badge, ' ', h('span', { class: 'muted', title: 'Open: jobs can still be added to it' }, 'open')];
  }
  return badge;
}

/** A bar and `ended / total`. */
function progressOf(f, attrs = {}) {
  return h('span', { ...attrs, class: 'flow-progress', 'data-ended': f.ended, 'data-total': f.total },
    h('progress', { max: String(Math.max(f.total, 1)), value: String(f.ended) }),
    ` ${fmtNum(f.ended)} / ${fmtNum(f.total)}`);
}

function flowLink(id) {
  return h('a', { href: `#/flows/${enc(id)}`, class: 'mono' }, id);
}

export function flowsPage(query) {
  const kind = KINDS.some(([k]) => k && k === query.get('kind')) ? query.get('kind') : '';
  const offset = Math.max(0, parseInt(query.get('offset') || '0', 10) || 0);
  const tabs = h('nav', { class: 'tabs', role: 'tablist' }, KINDS.map(([k, label]) => h('a', {
    href: k ? `#/flows?kind=${k}` : '#/flows',
    class: k === kind ? 'tab active' : 'tab',
    role: 'tab',
    'data-kind': k || 'all',
  }, label)));
  const box = h('div', { class: 'table-box' }, note('loading…'));
  const el = h('div', {},
    h('h1', {}, 'Workflows and batches'),
    h('p', { class: 'muted' },
      'Workflows run their steps in dependency order; batches fire their callbacks once every job ended. Newest first.'),
    tabs, box);
  const changed = changes();

  const render = (page) => {
    if (!page.flows.length && offset === 0) {
      const what = kind === 'workflow' ? 'workflow' : kind === 'batch' ? 'batch' : 'workflow or batch';
      box.replaceChildren(note(`No ${what} is stored.`));
      return;
    }
    const head = h('tr', {}, ['Id', 'Kind', 'Status', 'Progress', 'Succeeded', 'Created', 'Ended'].map((t) => h('th', {}, t)));
    const rows = page.flows.map((f) => h('tr', { 'data-flow': f.id },
      h('td', {}, flowLink(f.id)),
      h('td', {}, f.kind),
      h('td', { class: 'state' }, flowStatus(f)),
      h('td', {}, progressOf(f)),
      h('td', { class: 'num' }, fmtNum(f.succeeded)),
      h('td', {}, fmtTime(f.created_at), h('br'), timeEl(f.created_at)),
      h('td', {}, f.ended_at ? [fmtTime(f.ended_at), h('br'), timeEl(f.ended_at)] : h('span', { class: 'muted' }, '–'))));
    const kindParam = kind ? `kind=${kind}&` : '';
    box.replaceChildren(
      h('table', { class: 'grid', id: 'flows' }, h('thead', {}, head), h('tbody', {}, rows)),
      pager({ ...page, jobs: page.flows, total: null }, offset, (o) => { location.hash = `#/flows?${kindParam}offset=${o}`; }));
  };

  const refresh = async () => {
    const kindParam = kind ? `&kind=${kind}` : '';
    const page = await api(`/flows?offset=${offset}&limit=${PAGE_SIZE}${kindParam}`);
    if (changed(page)) render(page);
  };
  return { el, refresh, fail: (e) => box.replaceChildren(note(e.message, 'error')) };
}

/** `a, b (any end)`: what a step waits for. */
function afterText(m) {
  return m.after.map((a) => (a.on_failure === 'continue' ? `${a.step} (any end)` : a.step)).join(', ');
}

/** Released and ended times of a member. */
function timing(m) {
  const parts = [];
  if (m.released_at) parts.push(h('span', { title: fmtTime(m.released_at) }, 'released ', timeEl(m.released_at)));
  if (m.ended_at) {
    if (parts.length) parts.push(h('br'));
    parts.push(h('span', { title: fmtTime(m.ended_at) }, 'ended ', timeEl(m.ended_at)));
  }
  return parts.length ? parts : h('span', { class: 'muted' }, 'not enqueued yet');
}

/**
 * Whether a member's job was enqueued (its page exists): released, or
 * ended by its job. The status says so even where the store recorded the
 * end before the release (`released_at` is then empty).
 */
function enqueued(m) {
  return !!m.released_at || ['released', 'succeeded', 'dead', 'expired'].includes(m.status);
}

/** A workflow step: a card coloured by its status, linking to its job once enqueued. */
function stepCard(m) {
  const attrs = { class: 'step', 'data-step': m.name, 'data-status': m.status, title: m.job };
  return h(enqueued(m) ? 'a' : 'div', enqueued(m) ? { ...attrs, href: `#/jobs/${enc(m.job)}` } : attrs,
    h('div', { class: 'step-head' }, h('span', { class: 'step-name' }, m.name), statusBadge(m.status)),
    h('div', { class: 'step-job mono' }, m.job_name),
    m.after.length ? h('div', { class: 'step-after muted' }, 'after ', afterText(m)) : [],
    h('div', { class: 'step-time' }, timing(m)));
}

/** The steps, one column per dependency level. */
function levelsEl(f) {
  const columns = [];
  for (let l = 0; l < f.levels; l++) {
    const steps = f.members.filter((m) => m.level === l);
    if (!steps.length) continue;
    columns.push(h('section', { class: 'level', 'data-level': l },
      h('h3', {}, `Level ${l}`, h('span', { class: 'muted' }, ` · ${steps.length} step(s)`)),
      steps.map(stepCard)));
  }
  return h('div', { class: 'levels', id: 'levels' }, columns);
}

/** A callback's state: waiting, cancelled, or its job's once enqueued. */
function callbackState(c) {
  if (c.job_status) return ['job ', statusBadge(c.job_status, { 'data-job-status': c.job_status })];
  return statusBadge(c.status, { 'data-status': c.status });
}

function callbacksEl(f) {
  if (!f.callbacks.length) return note('No callback: nothing is enqueued when it ends.');
  const head = h('tr', {}, ['Callback', 'Job', 'State', 'Job id'].map((t) => h('th', {}, t)));
  const rows = f.callbacks.map((c) => h('tr', { 'data-callback': c.name },
    h('td', { class: 'strong' }, c.name),
    h('td', {}, c.job_name),
    h('td', {}, callbackState(c)),
    h('td', {}, enqueued(c) ? jobLink(c.job) : h('span', { class: 'mono muted' }, c.job))));
  return h('table', { class: 'grid', id: 'callbacks' }, h('thead', {}, head), h('tbody', {}, rows));
}

function membersEl(f) {
  if (!f.members.length) return note('No job yet.');
  const head = h('tr', {}, ['Job id', 'Job', 'Status', 'Enqueued', 'Ended'].map((t) => h('th', {}, t)));
  const rows = f.members.map((m) => h('tr', { 'data-member': m.name },
    h('td', {}, enqueued(m) ? jobLink(m.job) : h('span', { class: 'mono muted' }, m.job)),
    h('td', {}, m.job_name),
    h('td', {}, statusBadge(m.status)),
    h('td', {}, m.released_at ? timeEl(m.released_at) : h('span', { class: 'muted' }, '–')),
    h('td', {}, m.ended_at ? timeEl(m.ended_at) : h('span', { class: 'muted' }, '–'))));
  const more = f.members_total > f.members.length
    ? note(`Showing the first ${fmtNum(f.members.length)} of ${fmtNum(f.members_total)} jobs.`)
    : [];
  return [h('table', { class: 'grid', id: 'members' }, h('thead', {}, head), h('tbody', {}, rows)), more];
}

function batchEl(f) {
  const pct = f.total ? Math.floor((f.ended * 100) / f.total) : 0;
  return [
    h('section', { class: 'panel' }, h('h2', {}, 'Progress'),
      h('div', { class: 'progress', id: 'batch-progress', 'data-ended': f.ended, 'data-total': f.total },
        h('progress', { max: String(Math.max(f.total, 1)), value: String(f.ended) }),
        h('span', { class: 'pct' }, `${pct}%`),
        h('span', {}, `${fmtNum(f.ended)} of ${fmtNum(f.total)} jobs ended, ${fmtNum(f.succeeded)} succeeded`),
        !f.closed && f.status === 'running' ? h('span', { class: 'muted' }, '· open: jobs can still be added') : [])),
    h('section', { class: 'panel' }, h('h2', {}, 'Callbacks'), callbacksEl(f)),
    h('section', { class: 'panel' }, h('h2', {}, `Jobs (${fmtNum(f.members_total)})`), h('div', { class: 'table-box' }, membersEl(f))),
  ];
}

export function flowPage(id) {
  const body = h('div', {}, note('loading…'));
  const kindEl = h('span', { id: 'flow-kind' }, 'Workflow');
  const title = h('h1', {}, kindEl, ' ', h('code', { id: 'flow-id' }, id));
  const el = h('div', {},
    h('p', { class: 'crumbs' }, h('a', { href: '#/flows' }, 'Workflows'), ' / ', id),
    title, body);
  const changed = changes();
  let reload = null;

  const render = (f) => {
    kindEl.textContent = f.kind === 'batch' ? 'Batch' : 'Workflow';
    const unit = f.kind === 'batch' ? 'jobs' : 'steps';
    const actions = f.status === 'running'
      ? actionButton('Cancel', 'cancel-flow', {
          title: `Cancel ${f.kind} ${f.id}`,
          text: `What was not enqueued yet never runs; running jobs are told to stop, and it ends cancelled once they have.`
            + (f.kind === 'batch' ? ' A cancelled batch fires no callback.' : ''),
          confirm: `Cancel the ${f.kind}`,
          danger: true,
          path: `/flows/${enc(f.id)}/cancel`,
          done: (b) => (b.outcome === 'cancelled'
            ? `${b.kind === 'batch' ? 'Batch' : 'Workflow'} ${b.id} cancelled.`
            : `${b.id} had ended (${b.status}): nothing to cancel.`),
        }, () => reload())
      : [];
    body.replaceChildren(
      h('div', { class: 'job-head' },
        flowStatus(f, { id: 'flow-status' }),
        h('span', {}, `${fmtNum(f.ended)} of ${fmtNum(f.total)} ${unit} ended, ${fmtNum(f.succeeded)} succeeded`),
        h('span', { class: 'actions' }, actions)),
      h('section', { class: 'panel' },
        h('dl', { class: 'facts' },
          h('dt', {}, 'Created'), h('dd', {}, fmtTime(f.created_at), ' (', timeEl(f.created_at), ')'),
          h('dt', {}, 'Ended'), h('dd', {}, f.ended_at ? [fmtTime(f.ended_at), ' (', timeEl(f.ended_at), ')'] : h('span', { class: 'muted' }, 'not yet')))),
      // Built with h(), which flattens: replaceChildren would print an array.
      h('div', {}, f.kind === 'batch'
        ? batchEl(f)
        : h('section', { class: 'panel' }, h('h2', {}, 'Steps by dependency level'), levelsEl(f),
            f.members_total > f.members.length ? note(`Showing the first ${fmtNum(f.members.length)} of ${fmtNum(f.members_total)} steps.`) : [])));
  };

  const refresh = async () => {
    const f = await api(`/flows/${enc(id)}`);
    if (changed(f)) render(f);
  };
  reload = () => refresh().catch(fail);
  const fail = (e) => body.replaceChildren(note(e.message, e.status === 404 ? 'muted' : 'error'));
  return { el, refresh, fail };
}
