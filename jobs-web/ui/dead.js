// Dead jobs of one queue: retry one, retry all, purge all (each confirmed).

import { actionButton, api, enc, fmtNum, h, note } from './core.js';
import { PAGE_SIZE, jobRow, pager } from './queue.js';

const LIST_RELOAD_MS = 10000;

export function deadPage(query) {
  let selected = query.get('queue') || '';
  const offset = Math.max(0, parseInt(query.get('offset') || '0', 10) || 0);
  const chips = h('nav', { class: 'tabs' });
  const toolbar = h('div', { class: 'toolbar' });
  const list = h('div', { class: 'table-box' }, note('loading…'));
  const el = h('div', {},
    h('h1', {}, 'Dead jobs'),
    h('p', { class: 'muted' },
      'Jobs out of attempts or failed permanently, kept with their payload and errors until retried or purged. ',
      'A single dead job cannot be deleted on its own (the storage has no call for it): retry it, or purge the queue’s dead jobs.'),
    chips, toolbar, list);
  let lastChips = '';
  let listedCount = null;
  let listedAt = 0;

  const loadList = async () => {
    listedAt = Date.now();
    if (!selected) {
      list.replaceChildren(note('No dead job in any queue.'));
      return;
    }
    const page = await api(`/queues/${enc(selected)}/jobs?status=dead&offset=${offset}&limit=${PAGE_SIZE}`);
    listedCount = page.total;
    if (!page.jobs.length && offset === 0) {
      list.replaceChildren(note(`No dead job in queue ${selected}.`));
      return;
    }
    const head = h('tr', {}, ['Job id', 'Name', 'Priority', 'Attempts', 'Died', 'Error', ''].map((t) => h('th', {}, t)));
    list.replaceChildren(
      h('table', { class: 'grid', id: 'dead-jobs' }, h('thead', {}, head), h('tbody', {}, page.jobs.map((j) => jobRow(j, 'dead', reload)))),
      pager(page, offset, (o) => { location.hash = `#/dead?queue=${enc(selected)}&offset=${o}`; }));
  };
  const reload = async () => {
    lastChips = '';
    await refresh(true);
  };

  const renderChips = (queues) => {
    chips.replaceChildren(...queues.map((q) => h('a', {
      href: `#/dead?queue=${enc(q.name)}`,
      class: q.name === selected ? 'tab active' : 'tab',
      'data-queue': q.name,
    }, q.name, h('span', { class: q.dead ? 'count bad' : 'count' }, fmtNum(q.dead)))));
    const q = queues.find((x) => x.name === selected);
    const n = q ? q.dead : 0;
    toolbar.replaceChildren(
      actionButton(`Retry all (${fmtNum(n)})`, 'retry-all', {
        title: `Retry every dead job of ${selected}`,
        text: `${fmtNum(n)} dead job(s) of queue “${selected}” go back to pending with their attempts reset.`,
        path: `/queues/${enc(selected)}/retry-dead`,
        done: (b) => `Retried ${b.retried} job(s) of ${b.queue}` + (b.failed ? `; ${b.failed} refused: ${b.errors.join('; ')}` : '.'),
      }, reload),
      actionButton(`Purge (${fmtNum(n)})`, 'purge', {
        title: `Purge the dead jobs of ${selected}`,
        text: `Deletes every dead job of queue “${selected}” with its payload and errors. This cannot be undone.`,
        path: `/queues/${enc(selected)}/purge-dead`,
        danger: true,
        confirm: 'Purge',
        done: (b) => `Purged ${b.purged} dead job(s) of ${b.queue}.`,
      }, reload),
    );
    for (const b of toolbar.querySelectorAll('button')) b.disabled = !selected || n === 0;
  };

  async function refresh(force = false) {
    const stats = await api('/stats');
    if (!selected) {
      const first = stats.queues.find((q) => q.dead > 0);
      selected = first ? first.name : '';
    }
    const queues = stats.queues.filter((q) => q.dead > 0 || q.name === selected);
    const cj = JSON.stringify(queues);
    if (cj !== lastChips) {
      lastChips = cj;
      renderChips(queues);
    }
    const q = queues.find((x) => x.name === selected);
    const changed = q && listedCount !== null && q.dead !== listedCount;
    if (force === true || listedAt === 0 || (changed && Date.now() - listedAt > LIST_RELOAD_MS)) await loadList();
  }
  const fail = (e) => list.replaceChildren(note(e.message, 'error'));
  return { el, refresh: () => refresh(), fail };
}
