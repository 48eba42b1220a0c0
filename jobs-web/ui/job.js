// One job: status, progress, payload (pretty-printed, as text), attempts
// with their errors, result and timeline. Reloads on each of the job's
// events (and polls while it is not finished, should events not get
// through); a progress event moves the bar in place.

import { api, enc, fmtTime, followEvents, h, note, statusBadge, timeEl } from './core.js';
import { cancelButton, retryButton } from './queue.js';

const FINISHED = ['succeeded', 'dead', 'cancelled', 'expired'];

function pretty(value) {
  return h('pre', { class: 'json' }, JSON.stringify(value, null, 2));
}

function field(label, ...value) {
  return [h('dt', {}, label), h('dd', {}, ...value)];
}

// A job's last progress: a bar, its percent and note (text), and which
// attempt reported it when.
function progressEl(p) {
  return h('div', { class: 'progress', id: 'job-progress', 'data-fraction': String(p.fraction) },
    h('progress', { max: '1', value: String(p.fraction) }),
    h('span', { class: 'pct' }, `${Math.round(p.fraction * 100)}%`),
    p.note ? h('span', { class: 'progress-note' }, p.note) : [],
    h('span', { class: 'muted' }, `attempt ${p.attempt}, `, timeEl(p.at)));
}

export function jobPage(id) {
  const body = h('div', {}, note('loading…'));
  const el = h('div', {},
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, 'Overview'), ' / job'),
    h('h1', {}, 'Job ', h('code', { id: 'job-id' }, id)),
    body);
  let last = '';
  let afterAction = null;

  const render = (j) => {
    const tries = j.max_retries === null ? `${j.attempts}` : `${j.attempts} of ${j.max_retries + 1}`;
    const actions = [];
    if (j.status === 'dead') actions.push(retryButton(j, () => afterAction()));
    if (!FINISHED.includes(j.status)) actions.push(cancelButton(j, () => afterAction()));
    const attempts = j.attempt_log.length
      ? h('table', { class: 'grid', id: 'attempts' },
          h('thead', {}, h('tr', {}, ['#', 'Started', 'Finished', 'Duration', 'Error'].map((t) => h('th', {}, t)))),
          h('tbody', {}, j.attempt_log.map((a) => h('tr', {},
            h('td', { class: 'num' }, String(a.attempt)),
            h('td', {}, fmtTime(a.started_at)),
            h('td', {}, a.finished_at ? fmtTime(a.finished_at) : h('span', { class: 'muted' }, 'running')),
            h('td', { class: 'num' }, a.duration_ms === null ? '–' : `${a.duration_ms} ms`),
            a.snoozed_ms != null
              ? h('td', { class: 'muted' }, `snoozed ${a.snoozed_ms} ms: ${a.error || ''}`)
              : h('td', { class: a.error ? 'err' : 'ok' }, a.error === null ? (a.finished_at ? 'succeeded' : '') : h('pre', { class: 'error-text' }, a.error))))))
      : note('No attempt yet.');
    body.replaceChildren(
      h('div', { class: 'job-head' },
        statusBadge(j.status, { id: 'job-status', 'data-status': j.status }),
        h('span', { class: 'job-name' }, j.name),
        h('span', { class: 'actions' }, actions)),
      h('div', { class: 'cols' },
        h('section', { class: 'panel' }, h('h2', {}, 'Details'),
          h('dl', { class: 'facts' },
            field('Queue', h('a', { href: `#/queues/${enc(j.queue)}?status=${j.status === 'succeeded' ? 'succeeded' : j.status}` }, j.queue)),
            field('Priority', h('span', { class: `prio prio-${j.priority}` }, j.priority)),
            field('Attempts', tries),
            j.handler_started === true ? field('Handler', h('span', { id: 'job-handler' }, 'started')) : [],
            j.handler_started === false
              ? field('Handler', h('span', { id: 'job-handler', class: 'muted' },
                'not reported started (waiting for a worker, or just started)'))
              : [],
            j.progress ? field('Progress', progressEl(j.progress)) : [],
            j.caller_id ? field('Caller id', j.caller_id) : [],
            j.key ? field('Key', j.key) : [],
            j.snoozes ? field('Snoozes', String(j.snoozes)) : [],
            j.expires_at ? field('Expires', fmtTime(j.expires_at), ' (', timeEl(j.expires_at), ')') : [],
            field('Enqueued', fmtTime(j.enqueued_at), ' (', timeEl(j.enqueued_at), ')'),
            j.run_at ? field('Due', fmtTime(j.run_at), ' (', timeEl(j.run_at), ')') : [],
            j.finished_at ? field('Finished', fmtTime(j.finished_at), ' (', timeEl(j.finished_at), ')') : [],
            j.last_error && j.status !== 'succeeded' ? field('Last error', h('span', { class: 'err' }, j.last_error)) : [])),
        h('section', { class: 'panel' }, h('h2', {}, 'Timeline'),
          h('ol', { class: 'timeline', id: 'timeline' }, j.timeline.map((e) => h('li', { class: `ev ev-${e.kind}` },
            h('time', { datetime: e.at }, fmtTime(e.at)), ' ', h('span', {}, e.text)))))),
      h('section', { class: 'panel' }, h('h2', {}, 'Payload'), h('div', { id: 'job-payload' }, pretty(j.payload))),
      h('section', { class: 'panel' }, h('h2', {}, 'Result'),
        h('div', { id: 'job-result' }, j.result === null ? note(j.status === 'succeeded' ? 'The job returned no value.' : 'No result yet.') : pretty(j.result))),
      h('section', { class: 'panel' }, h('h2', {}, 'Attempts'), attempts));
  };

  let settled = false;
  const load = async () => {
    const j = await api(`/jobs/${enc(id)}`);
    settled = FINISHED.includes(j.status);
    const json = JSON.stringify(j);
    if (json !== last) {
      last = json;
      render(j);
    }
  };
  // A finished job changes only through an action, which reloads it and
  // polls again until it settles.
  const poll = async () => {
    if (!settled) await load();
  };
  afterAction = async () => {
    settled = false;
    await load();
  };
  const fail = (e) => body.replaceChildren(note(e.message, e.status === 404 ? 'muted' : 'error'));
  // Every change of the job is an event of its queue (the id names it).
  const queue = id.slice(0, id.indexOf(':'));
  const onEvent = (e) => {
    const shown = document.getElementById('job-progress');
    if (e && e.kind === 'progress' && shown && e.progress != null) {
      shown.replaceWith(progressEl({ fraction: e.progress, note: e.detail || '', at: e.at, attempt: e.attempt }));
      return;
    }
    settled = false;
    load().catch(fail);
  };
  const stop = queue ? followEvents(queue, { job: id }, onEvent) : null;
  return { el, refresh: poll, fail, stop };
}
