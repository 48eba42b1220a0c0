// The dashboard's shell: hash routes to pages, the header (mode, token,
// live indicator) and the poll that keeps the current page fresh.

import { api, clearFlash, confirmDialog, flash, fmtAgo, getToken, h, note, setToken } from './core.js';
import { overviewPage } from './overview.js';
import { queuePage } from './queue.js';
import { jobPage } from './job.js';
import { deadPage } from './dead.js';
import { schedulesPage, workersPage } from './ops.js';
import { flowPage, flowsPage } from './flows.js';

/** How often the current page refreshes its data. */
const POLL_MS = 3000;

const routes = [
  [/^\/$/, 'overview', () => overviewPage()],
  [/^\/queues\/([^/]+)$/, 'overview', (m, q) => queuePage(decodeURIComponent(m[1]), q)],
  [/^\/jobs\/([^/]+)$/, '', (m) => jobPage(decodeURIComponent(m[1]))],
  [/^\/dead$/, 'dead', (m, q) => deadPage(q)],
  [/^\/flows$/, 'flows', (m, q) => flowsPage(q)],
  [/^\/flows\/([^/]+)$/, 'flows', (m) => flowPage(decodeURIComponent(m[1]))],
  [/^\/schedules$/, 'schedules', () => schedulesPage()],
  [/^\/workers$/, 'workers', () => workersPage()],
];

let current = null;
let actionsEnabled = null;

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = raw.split('?');
  return { path, query: new URLSearchParams(query) };
}

async function show() {
  if (current && current.stop) current.stop();
  clearFlash();
  const { path, query } = parseHash();
  const main = document.getElementById('page');
  let page = null;
  let nav = '';
  for (const [re, navName, make] of routes) {
    const m = path.match(re);
    if (m) {
      page = make(m, query);
      nav = navName;
      break;
    }
  }
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', a.dataset.nav === nav);
  if (!page) {
    main.replaceChildren(h('h1', {}, 'Not found'), note(`No page at ${path}.`), h('a', { href: '#/' }, 'Overview'));
    current = null;
    return;
  }
  current = page;
  main.replaceChildren(page.el);
  await tick();
}

/**
 * Refreshes the current page; the live indicator tells how it went. A
 * refresh still running (one waiting for the token prompt, say) is not
 * started again.
 */
async function tick() {
  const page = current;
  if (!page || document.hidden || page.refreshing) return;
  page.refreshing = true;
  const live = document.getElementById('live');
  try {
    await page.refresh();
    // Relative times ("12 s ago") move on even where the data did not change.
    for (const t of document.querySelectorAll('time[data-rel]')) t.textContent = fmtAgo(t.dateTime);
    live.textContent = 'live · ' + new Date().toLocaleTimeString();
    live.className = 'live ok';
    live.title = 'refreshed every few seconds';
  } catch (e) {
    if (page !== current) return;
    live.textContent = 'offline';
    live.className = 'live bad';
    live.title = e.message;
    if (page.fail) page.fail(e);
  } finally {
    page.refreshing = false;
  }
}

function renderSession() {
  const mode = document.getElementById('mode');
  const btn = document.getElementById('token-btn');
  if (actionsEnabled === false) {
    mode.textContent = 'read-only';
    mode.className = 'badge mode-ro';
    mode.title = 'No admin token is configured on the server: every action is refused.';
  } else if (getToken()) {
    mode.textContent = 'admin';
    mode.className = 'badge mode-admin';
    mode.title = 'Actions are sent with the admin token of this tab.';
  } else {
    mode.textContent = 'viewer';
    mode.className = 'badge mode-viewer';
    mode.title = 'Actions ask for the admin token.';
  }
  btn.textContent = getToken() ? 'Forget token' : 'Set token';
}

async function onTokenButton() {
  if (getToken()) {
    setToken('');
    flash('The admin token was forgotten in this tab.', 'ok');
    return;
  }
  const ok = await confirmDialog({
    title: 'Admin token',
    text: 'Actions (retry, cancel, purge, pause) need the token configured on the server. It is kept in this tab only.',
    confirm: 'Save',
    tokenOnly: true,
  });
  if (!ok || !getToken()) return;
  try {
    const auth = await api('/auth');
    if (auth.token_valid === false) {
      setToken('');
      flash('That token is not the server’s admin token.', 'error');
    } else if (!auth.actions_enabled) {
      flash('The server has no admin token configured: it is read-only.', 'error');
    } else {
      flash('Token accepted: actions are enabled in this tab.', 'ok');
    }
  } catch (e) {
    flash(e.message, 'error');
  }
}

async function start() {
  document.getElementById('token-btn').addEventListener('click', onTokenButton);
  document.addEventListener('jobs:token', renderSession);
  // A new token may open reads that needed it: show the data at once.
  document.addEventListener('jobs:token', () => tick());
  window.addEventListener('hashchange', show);
  document.addEventListener('visibilitychange', tick);
  try {
    actionsEnabled = (await api('/auth')).actions_enabled;
  } catch {
    actionsEnabled = null;
  }
  renderSession();
  await show();
  setInterval(tick, POLL_MS);
}

start();
