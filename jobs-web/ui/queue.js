// A queue: its jobs by state in tabs, a page at a time.

import { act, actionButton, api, enc, fmtNum, followEvents, h, jobLink, note, statusBadge, throttle, timeEl } from './core.js';
import { partitionsBadge, pauseButton } from './overview.js';

const TABS = ['pending', 'scheduled', 'running', 'retrying', 'dead', 'succeeded', 'expired'];
export const PAGE_SIZE = 25;
/** The deepest offset the API serves (`MAX_OFFSET` in src/api/read.rs). */
const MAX_OFFSET = 10000;
/** A list reloads on its own when its count changed, at most this often. */
const LIST_RELOAD_MS = 10000;

/** The pager under a list: previous and next pages, and where we are. */
export function pager(page, offset, go) {
  const first = page.jobs.length ? offset + 1 : 0;
  const last = offset + page.jobs.length;
  const of = page.total === null || page.total === undefined ? '' : ` of ${fmtNum(page.total)}`;
  return h('div', { class: 'pager' },
    h('button', { type: 'button', class: 'small', 'data-page': 'prev', disabled: offset === 0, onclick: () => go(Math.max(0, offset - PAGE_SIZE)) }, '‹ Previous'),
    h('span', { class: 'muted' }, `${first}–${last}${of}`),
    h('button', { type: 'button', class: 'small', 'data-page': 'next', disabled: !page.has_more || offset + PAGE_SIZE > MAX_OFFSET, onclick: () => go(offset + PAGE_SIZE) }, 'Next ›'));
}

/** Cancel a job that has not finished. */
export function cancelButton(job, after) {
  return actionButton('Cancel', 'cancel', {
    title: 'Cancel job',
    text: job.status === 'running'
      ? `Job ${job.id} is running: it is told to stop and ends cancelled, without retry.`
      : `Job ${job.id} is taken out of its queue and marked cancelled.`,
    path: `/jobs/${enc(job.id)}/cancel`,
    danger: true,
    done: (b) => (b.outcome === 'already_finished' ? `Job had already finished (${b.status}).` : `Job ${b.id}: ${b.outcome.replace('_', ' ')}.`),
  }, after);
}

/** Retry one dead job. */
export function retryButton(job, after) {
  return actionButton('Retry', 'retry', {
    title: 'Retry dead job',
    text: `Job ${job.id} (${job.name}) goes back to pending with its attempts reset.`,
    path: `/jobs/${enc(job.id)}/retry`,
    done: (b) => `Job ${b.id} is pending again.`,
  }, after);
}

export function jobRow(j, status, after) {
  const when = { pending: j.enqueued_at, scheduled: j.run_at, retrying: j.run_at, running: j.enqueued_at }[status] || j.finished_at;
  const act = status === 'dead' ? retryButton(j, after) : ['succeeded', 'cancelled', 'expired'].includes(status) ? null : cancelButton(j, after);
  return h('tr', { 'data-job': j.id },
    h('td', {}, jobLink(j.id)),
    h('td', {}, j.name),
    h('td', { class: `prio prio-${j.priority}` }, j.priority),
    h('td', { class: 'num' }, String(j.attempts)),
    h('td', {}, timeEl(when)),
    h('td', { class: 'err' }, j.last_error ? h('span', { class: 'clip', title: j.last_error }, j.last_error) : ''),
    h('td', { class: 'actions' }, act));
}

export function whenHeader(status) {
  return { pending: 'Enqueued', scheduled: 'Due', retrying: 'Next attempt', running: 'Enqueued', dead: 'Died', succeeded: 'Finished', expired: 'Expired' }[status] || 'When';
}

/**
 * A queue's limits as the backend holds them, and a form to change them
 * (with the admin token): an empty field means no bound.
 */
function limitsPanel(name, limits, after) {
  const shown = (v) => (v === null || v === undefined ? 'none' : fmtNum(v));
  const field = (id, v) => h('input', { type: 'number', min: '1', step: '1', id, class: 'limit', placeholder: 'none', value: v ?? '' });
  const running = field('limit-max-running', limits.max_running);
  const waiting = field('limit-max-jobs', limits.max_jobs);
  const rate = h('input', { type: 'text', id: 'limit-rate', class: 'limit', placeholder: 'none', value: limits.rate ?? '' });
  const groupRunning = field('limit-group-concurrency', limits.group_concurrency);
  const groupRate = h('input', { type: 'text', id: 'limit-group-rate', class: 'limit', placeholder: "job's own", value: limits.group_rate ?? '' });
  const own = (v) => (v === null || v === undefined ? "each job's own" : String(v));
  const breaker = h('input', { type: 'text', id: 'limit-breaker', class: 'limit', placeholder: 'none', value: limits.breaker ?? '' });
  const groupBreaker = h('input', { type: 'text', id: 'limit-group-breaker', class: 'limit', placeholder: 'none', value: limits.group_breaker ?? '' });
  const bs = limits.breaker_state || { state: 'closed', opened: 0, recent_failures: 0 };
  const bText = { closed: 'closed', open: `open until ${bs.until ? new Date(bs.until).toLocaleTimeString() : '?'}`, probing: 'probing (one job runs)' }[bs.state] || bs.state;
  const ret = limits.retention || {};
  const keepField = (id, v) => h('input', { type: 'text', id, class: 'limit', placeholder: "backend's", value: v ?? '' });
  const countField = (id, v) => h('input', { type: 'number', min: '0', step: '1', id, class: 'limit', placeholder: "backend's", value: v ?? '' });
  const keepSucceeded = keepField('limit-keep-succeeded', ret.succeeded);
  const maxSucceeded = countField('limit-max-succeeded', ret.succeeded_max);
  const keepDead = keepField('limit-keep-dead', ret.dead_age);
  const maxDead = countField('limit-max-dead', ret.dead_max);
  const archive = h('input', { type: 'checkbox', id: 'limit-archive' });
  archive.checked = !!limits.archive;
  const backend = (v) => (v === null || v === undefined ? "backend's" : String(v));
  const arg = (input) => (input.value.trim() === '' ? 'none' : input.value.trim());
  const set = async () => {
    const body = await act({
      title: `Limits of queue ${name}`,
      text: `At most ${arg(running)} of its jobs running at once across every pool, at most ${arg(waiting)} waiting, and starts at most ${arg(rate)}; per group, at most ${arg(groupRunning)} running and starts at most ${arg(groupRate)} ('none': each job's own); from the next fetch and enqueue on.`,
      path: `/queues/${enc(name)}/limits?max_running=${enc(arg(running))}&max_jobs=${enc(arg(waiting))}&rate=${enc(arg(rate))}`
        + `&group_concurrency=${enc(arg(groupRunning))}&group_rate=${enc(arg(groupRate))}&breaker=${enc(arg(breaker))}`
        + `&group_breaker=${enc(arg(groupBreaker))}`
        + `&keep_succeeded=${enc(arg(keepSucceeded))}&max_succeeded=${enc(arg(maxSucceeded))}`
        + `&keep_dead=${enc(arg(keepDead))}&max_dead=${enc(arg(maxDead))}&archive=${archive.checked}`,
      done: (b) => `Limits of ${b.queue} set: max running ${shown(b.max_running)}, max jobs ${shown(b.max_jobs)}.`,
    });
    if (body) after(body);
  };
  return [
    h('span', {}, 'Max running ', h('strong', { 'data-limit': 'max_running' }, shown(limits.max_running))),
    h('span', {}, 'Max waiting ', h('strong', { 'data-limit': 'max_jobs' }, shown(limits.max_jobs))),
    h('span', {}, 'Rate ', h('strong', { 'data-limit': 'rate' }, limits.rate ?? 'none')),
    h('span', {}, 'Per group: running ', h('strong', { 'data-limit': 'group_concurrency' }, own(limits.group_concurrency))),
    h('span', {}, 'rate ', h('strong', { 'data-limit': 'group_rate' }, own(limits.group_rate))),
    h('span', { title: 'Times jobs that could start waited for a concurrency bound, and for a rate' }, 'Held back ',
      h('strong', { 'data-limit': 'limited' }, fmtNum(limits.limited ?? 0)), ' by a bound, ',
      h('strong', { 'data-limit': 'throttled' }, fmtNum(limits.throttled ?? 0)), ' by a rate'),
    h('span', { title: 'Jobs an enqueue handed to an idle pool in its own step (one hop, Redis)' }, 'Handed over ',
      h('strong', { 'data-limit': 'handed' }, fmtNum(limits.handed ?? 0))),
    h('span', { title: "How long and how many finished jobs it keeps (backend's: the backend's retention)" }, 'Keeps succeeded ',
      h('strong', { 'data-limit': 'keep_succeeded' }, backend(ret.succeeded)), ', at most ',
      h('strong', { 'data-limit': 'max_succeeded' }, backend(ret.succeeded_max)), '; dead ',
      h('strong', { 'data-limit': 'keep_dead' }, backend(ret.dead_age)), ', at most ',
      h('strong', { 'data-limit': 'max_dead' }, backend(ret.dead_max))),
    h('span', { title: 'Jobs its retention deletes are first written to the archive' }, 'Archive ',
      h('strong', { 'data-limit': 'archive' }, limits.archive ? 'on' : 'off')),
    h('span', { title: 'After N failed attempts within the window, no job starts for the cool-down, then one probe' }, 'Breaker ',
      h('strong', { 'data-limit': 'breaker' }, limits.breaker ?? 'none'), ' ',
      h('strong', { 'data-limit': 'breaker-state' }, bText), ` (opened ${fmtNum(bs.opened)} times) `,
      bs.state === 'closed'
        ? actionButton('Open 10 min', 'breaker-open', {
          title: `Open the breaker of ${name}`, danger: true,
          text: `No job of ${name} starts, on any pool, for ten minutes; then one probe job runs.`,
          path: `/queues/${enc(name)}/breaker?open=10m`, done: (b) => `Breaker of ${b.queue} open.`,
        }, after)
        : actionButton('Close', 'breaker-close', {
          title: `Close the breaker of ${name}`,
          text: `Jobs of ${name} start again at once.`,
          path: `/queues/${enc(name)}/breaker?close=true`, done: (b) => `Breaker of ${b.queue} closed.`,
        }, after)),
    h('span', { title: 'Each group has a breaker of its own: a failing group stops while the others run on' }, 'Group breaker ',
      h('strong', { 'data-limit': 'group_breaker' }, limits.group_breaker ?? 'none'), ' ',
      h('strong', { 'data-limit': 'groups-open' }, fmtNum(bs.groups_open ?? 0)), ' open ',
      `(opened ${fmtNum(bs.groups_opened ?? 0)} times)`),
    h('details', {}, h('summary', {}, 'Change'),
      h('label', {}, 'max running ', running), ' ', h('label', {}, 'max waiting ', waiting), ' ',
      h('label', {}, 'rate ', rate), ' ', h('label', {}, 'per group: running ', groupRunning), ' ',
      h('label', {}, 'rate ', groupRate), ' ', h('label', {}, 'breaker ', breaker), ' ',
      h('label', {}, 'group breaker ', groupBreaker), ' ',
      h('label', {}, 'keep succeeded ', keepSucceeded), ' ', h('label', {}, 'at most ', maxSucceeded), ' ',
      h('label', {}, 'keep dead ', keepDead), ' ', h('label', {}, 'at most ', maxDead), ' ',
      h('label', {}, archive, ' archive'), ' ',
      h('button', { type: 'button', class: 'small', 'data-action': 'set-limits', onclick: set }, 'Set limits')),
  ];
}

/**
 * The groups whose own breaker is open or probing (none: nothing shown),
 * each with a button that closes it (with the admin token).
 */
function groupBreakersPanel(name, limits, after) {
  const bs = limits.breaker_state || {};
  const groups = bs.groups || [];
  if (!groups.length) return [];
  const state = (g) => ({
    open: new Date(g.until) > new Date() ? `open until ${new Date(g.until).toLocaleTimeString()}` : 'open: the next job is a probe',
    probing: `probing (job ${g.job})`,
  }[g.state] || g.state);
  const head = h('tr', {}, ['Group', 'Breaker', ''].map((t) => h('th', {}, t)));
  const rows = groups.map((g) => h('tr', { 'data-group-breaker': g.group },
    h('td', { class: 'mono' }, g.group), h('td', {}, state(g)),
    h('td', {}, actionButton('Close', 'group-breaker-close', {
      title: `Close the breaker of group ${g.group}`,
      text: `Jobs of group ${g.group} of ${name} start again at once.`,
      path: `/queues/${enc(name)}/breaker?close=true&group=${enc(g.group)}`,
      done: () => `Breaker of group ${g.group} closed.`,
    }, after))));
  const more = (bs.groups_open ?? 0) > groups.length ? [h('p', {}, `${fmtNum(bs.groups_open - groups.length)} more not listed.`)] : [];
  return [h('h2', {}, 'Open group breakers'),
    h('table', { class: 'grid', id: 'group-breakers' }, h('thead', {}, head), h('tbody', {}, rows)), ...more];
}

/** The busiest groups of a grouped queue (none: nothing shown). */
function groupsPanel(groups) {
  if (!groups.length) return [];
  const head = h('tr', {}, ['Group', 'Pending', 'Running', 'Concurrency'].map((t) => h('th', {}, t)));
  const rows = groups.map((g) => h('tr', { 'data-group': g.key },
    h('td', { class: 'mono' }, g.key), h('td', { class: 'num' }, fmtNum(g.pending)),
    h('td', { class: 'num' }, fmtNum(g.running)), h('td', { class: 'num' }, g.concurrency ?? 'none')));
  return [h('h2', {}, 'Busiest groups'), h('table', { class: 'grid', id: 'groups' }, h('thead', {}, head), h('tbody', {}, rows))];
}

export function queuePage(name, query) {
  let status = TABS.includes(query.get('status')) ? query.get('status') : 'pending';
  let offset = Math.max(0, parseInt(query.get('offset') || '0', 10) || 0);
  const title = h('h1', {}, 'Queue ', h('code', {}, name), ' ');
  const stateBox = h('span', { class: 'title-extra' });
  title.append(stateBox);
  const tabs = h('nav', { class: 'tabs', role: 'tablist' });
  const list = h('div', { class: 'table-box' }, note('loading…'));
  const limitsBox = h('div', { class: 'limits', id: 'limits' });
  const groupsBox = h('div', { class: 'groups-box' });
  const breakersBox = h('div', { class: 'groups-box' });
  const el = h('div', {}, h('p', { class: 'crumbs' }, h('a', { href: '#/' }, 'Overview'), ' / queue'), title, limitsBox, breakersBox, tabs, list, groupsBox);
  let lastGroups = '';
  const showGroups = (g) => {
    const gj = JSON.stringify(g.groups);
    if (gj === lastGroups) return;
    lastGroups = gj;
    groupsBox.replaceChildren(...groupsPanel(g.groups));
  };
  let lastLimits = '';
  const showLimits = (l) => {
    const lj = JSON.stringify(l);
    if (lj === lastLimits) return;
    lastLimits = lj;
    limitsBox.replaceChildren(...limitsPanel(name, l, showLimits));
    breakersBox.replaceChildren(...groupBreakersPanel(name, l, showLimits));
  };
  let counts = null;
  let listedCount = null;
  let listedAt = 0;
  let lastTabs = '';

  const loadList = async () => {
    const page = await api(`/queues/${enc(name)}/jobs?status=${status}&offset=${offset}&limit=${PAGE_SIZE}`);
    listedCount = counts ? counts[status] : null;
    listedAt = Date.now();
    if (!page.jobs.length && offset === 0) {
      list.replaceChildren(note(`No ${status} job in this queue.`));
      return;
    }
    const head = h('tr', {}, ['Job id', 'Name', 'Priority', 'Attempts', whenHeader(status), 'Last error', ''].map((t) => h('th', {}, t)));
    list.replaceChildren(
      h('table', { class: 'grid', id: 'jobs' }, h('thead', {}, head), h('tbody', {}, page.jobs.map((j) => jobRow(j, status, loadList)))),
      pager(page, offset, (o) => { offset = o; location.hash = `#/queues/${enc(name)}?status=${status}&offset=${o}`; }));
  };

  const renderTabs = (q) => {
    tabs.replaceChildren(...TABS.map((t) => h('a', {
      href: `#/queues/${enc(name)}?status=${t}`,
      class: t === status ? 'tab active' : 'tab',
      role: 'tab',
      'data-tab': t,
    }, t, t in q ? h('span', { class: 'count' }, fmtNum(q[t])) : null)));
    stateBox.replaceChildren(
      h('span', { class: q.paused ? 'badge st-paused' : 'badge st-active' }, q.paused ? 'paused' : 'active'), ' ',
      q.partitions ? [partitionsBadge(q), ' '] : null,
      pauseButton({ name, paused: q.paused }, () => { lastTabs = ''; refresh(); }));
  };

  const refresh = async () => {
    const [stats, limits, groups] = await Promise.all([
      api('/stats'), api(`/queues/${enc(name)}/limits`), api(`/queues/${enc(name)}/groups?limit=10`),
    ]);
    showLimits(limits);
    showGroups(groups);
    const q = stats.queues.find((x) => x.name === name) || { name, paused: false };
    counts = q;
    const tj = JSON.stringify(q);
    if (tj !== lastTabs) {
      lastTabs = tj;
      renderTabs(q);
    }
    const changed = listedCount !== null && q[status] !== listedCount;
    if (listedAt === 0 || (changed && Date.now() - listedAt > LIST_RELOAD_MS)) await loadList();
  };
  const fail = (e) => list.replaceChildren(note(e.message, 'error'));
  // The queue's events: counts and the list follow each change at once (at
  // most once a second), beside the regular poll.
  const live = throttle(() => {
    listedAt = 0;
    refresh().catch(fail);
  }, 1000);
  const stop = followEvents(name, {}, live);
  return { el, refresh, fail, stop };
}
