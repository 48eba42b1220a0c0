// Schedules (cron or interval, rules, next fire, last run, pause, resume;
// ended and orphaned ones flagged, orphaned ones removable) and worker pools (host, pid, queues, current jobs, last
// heartbeat).

import { actionButton, api, enc, fmtNum, fmtTime, h, jobLink, note, timeEl } from './core.js';

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

const ORPHANED_TITLE = 'Orphaned: live worker pools exist and none of them runs this job (its code was removed or renamed). '
  + 'Its ticks are skipped until a pool that runs the job is back; remove the schedule if the job is gone.';

/** The State cell: ended, paused or active, and orphaned when no live pool runs the job. */
function scheduleState(s) {
  const badges = [];
  if (s.ended) {
    badges.push(h('span', { class: 'badge st-paused', 'data-ended': '', title: `No tick after ${fmtTime(s.ends_at)}` }, 'ended'));
  } else if (s.paused || !s.orphaned) {
    badges.push(h('span', { class: s.paused ? 'badge st-paused' : 'badge st-active' }, s.paused ? 'paused' : 'active'));
  }
  if (s.orphaned) {
    if (badges.length) badges.push(' ');
    badges.push(h('span', { class: 'badge st-orphaned', 'data-orphaned': '', title: ORPHANED_TITLE }, 'orphaned'));
  }
  return badges;
}

/**
 * Pause or Resume, Run now (one job enqueued at once), and Remove for an
 * orphaned schedule only: a schedule
 * whose job a pool still runs is paused rather than removed (one declared
 * with #[job(cron)] would be stored again by the next pool that starts).
 */
function scheduleActions(s, after) {
  const verb = s.paused ? 'resume' : 'pause';
  const buttons = [actionButton(s.paused ? 'Resume' : 'Pause', verb, {
    title: `${s.paused ? 'Resume' : 'Pause'} schedule ${s.name}`,
    text: s.paused
      ? `“${s.name}” ticks again from now on; ticks missed while paused are skipped.`
      : `“${s.name}” stops enqueueing jobs until resumed.`,
    path: `/schedules/${enc(s.name)}/${verb}`,
    done: (b) => `Schedule ${b.name} ${b.paused ? 'paused' : 'resumed'}.`,
  }, after), ' ', actionButton('Run now', 'run', {
    title: `Run schedule ${s.name} now`,
    text: `One ${s.job_name} job is enqueued now, as a tick would enqueue it; the schedule's ticks stay as they are.`,
    path: `/schedules/${enc(s.name)}/run`,
    done: (b) => `Schedule ${b.name} run now: job ${b.job}.`,
  }, after)];
  if (s.orphaned) {
    buttons.push(' ', actionButton('Remove', 'remove', {
      title: `Remove schedule ${s.name}`,
      text: `No live worker pool runs ${s.job_name}, so “${s.name}” skips its ticks. Removing it cannot be undone.`,
      confirm: 'Remove',
      danger: true,
      path: `/schedules/${enc(s.name)}/remove`,
      done: (b) => `Schedule ${b.name} removed.`,
    }, after));
  }
  return buttons;
}

/** The Rules cell: bounds, jitter, overlap policy, exclusion dates, held and skipped ticks. */
function scheduleRules(s) {
  const parts = [];
  if (s.starts_at) parts.push(`from ${fmtTime(s.starts_at)}`);
  if (s.ends_at) parts.push(`until ${fmtTime(s.ends_at)}`);
  if (s.jitter) parts.push(`jitter ${s.jitter}`);
  if (s.overlap !== 'allow') parts.push(`overlap ${s.overlap}`);
  if (s.exclude.length) parts.push(`except ${s.exclude.join(', ')}`);
  if (s.held_tick) parts.push(`tick of ${fmtTime(s.held_tick)} waits for the last job`);
  if (s.skipped) parts.push(`${fmtNum(s.skipped)} skipped (last ${fmtTime(s.last_skipped)})`);
  if (!parts.length) return h('span', { class: 'muted' }, '–');
  return parts.flatMap((p, i) => (i ? [h('br'), p] : [p]));
}

export function schedulesPage() {
  const box = h('div', { class: 'table-box' }, note('loading…'));
  const el = h('div', {}, h('h1', {}, 'Schedules'), box);
  const changed = changes();

  const render = (list) => {
    if (!list.length) {
      box.replaceChildren(note('No schedule is stored. Add one with Scheduler::add or #[job(cron = "...")].'));
      return;
    }
    const head = h('tr', {}, ['Name', 'Cron / interval', 'Time zone', 'Job', 'Queue', 'Rules', 'Next fire', 'Last run', 'Last job', 'State', ''].map((t) => h('th', {}, t)));
    const idle = (s) => (s.paused ? 'paused' : s.ended ? 'ended' : 'never');
    const rows = list.map((s) => h('tr', { 'data-schedule': s.name },
      h('td', { class: 'strong' }, s.name),
      h('td', {}, h('code', {}, s.every ? `every ${s.every}` : s.cron)),
      h('td', {}, s.timezone),
      h('td', {}, s.job_name),
      h('td', {}, h('a', { href: `#/queues/${enc(s.queue)}` }, s.queue)),
      h('td', { class: 'rules' }, scheduleRules(s)),
      h('td', {}, s.next_fire ? [fmtTime(s.next_fire), h('br'), timeEl(s.next_fire)] : h('span', { class: 'muted' }, idle(s))),
      h('td', {}, s.last_run ? [fmtTime(s.last_run), h('br'), timeEl(s.last_run)] : h('span', { class: 'muted' }, 'never')),
      h('td', {}, s.last_job ? jobLink(s.last_job) : '–'),
      h('td', {}, scheduleState(s)),
      h('td', { class: 'actions' }, scheduleActions(s, () => refresh(true)))));
    box.replaceChildren(h('table', { class: 'grid', id: 'schedules' }, h('thead', {}, head), h('tbody', {}, rows)));
  };

  async function refresh(force = false) {
    const { schedules } = await api('/schedules');
    if (changed(schedules) || force === true) render(schedules);
  }
  return { el, refresh: () => refresh(), fail: (e) => box.replaceChildren(note(e.message, 'error')) };
}

export function workersPage() {
  const summary = h('p', { class: 'muted' });
  const box = h('div', { class: 'pools' }, note('loading…'));
  const el = h('div', {}, h('h1', {}, 'Workers'), summary, box);
  const changed = changes();

  const render = (w) => {
    summary.textContent = `${fmtNum(w.pools.length)} pool(s) alive, ${fmtNum(w.busy)} of ${fmtNum(w.workers)} workers busy. A pool that misses its heartbeat for a lease drops off this list.`;
    if (!w.pools.length) {
      box.replaceChildren(note('No worker pool is alive.', 'error'));
      return;
    }
    box.replaceChildren(...w.pools.map((p) => h('section', { class: 'panel pool', 'data-pool': p.id },
      h('h2', {}, p.host, h('span', { class: 'muted' }, ` · pid ${p.pid}`)),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Pool'), h('dd', { class: 'mono' }, p.id),
        h('dt', {}, 'Queues'), h('dd', {}, p.queues.map((q) => h('a', { href: `#/queues/${enc(q)}`, class: 'chip' }, q))),
        h('dt', {}, 'Busy'), h('dd', {}, h('meter', { min: 0, max: p.workers, value: p.running }), ` ${p.running} of ${p.workers}`),
        h('dt', {}, 'Taken ahead'), h('dd', { 'data-ahead': '', title: 'Jobs leased by this pool and waiting in it for a free worker' }, fmtNum(p.ahead ?? 0)),
        h('dt', {}, 'Current jobs'), h('dd', {}, p.running_jobs.length ? h('ul', { class: 'plain' }, p.running_jobs.map((j) => h('li', {}, jobLink(j)))) : h('span', { class: 'muted' }, 'idle')),
        h('dt', {}, 'Started'), h('dd', {}, fmtTime(p.started_at), ' (', timeEl(p.started_at), ')'),
        h('dt', {}, 'Last heartbeat'), h('dd', { 'data-heartbeat': '' }, fmtTime(p.last_seen), ' (', timeEl(p.last_seen), ')')))));
  };

  const refresh = async () => {
    const w = await api('/workers');
    if (changed(w)) render(w);
  };
  return { el, refresh, fail: (e) => box.replaceChildren(note(e.message, 'error')) };
}
