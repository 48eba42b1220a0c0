// Shared by every page: DOM building (text only, never HTML), the API
// client with the admin token, formatting, the flash message and the
// confirmation dialog.
//
// Escaping rule: data from the server (payloads, errors, names) only ever
// reaches the page as text nodes or attribute values; nothing here or in the
// pages parses HTML from strings (tests/api.rs checks the scripts for it).

const API = '../api';
const TOKEN_KEY = 'jobs.adminToken';

/** Builds an element: `h('a', { href: '#/', class: 'x', onclick: f }, 'text', child)`. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** The same for SVG elements. */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** The admin token of this browser tab, if one was given. */
export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(t) {
  if (t) {
    sessionStorage.setItem(TOKEN_KEY, t);
    // A token given by any means is worth trying on reads again.
    readPromptDeclined = false;
  } else sessionStorage.removeItem(TOKEN_KEY);
  document.dispatchEvent(new Event('jobs:token'));
}

/** An API failure: the HTTP status, the server's code and its sentence. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * Calls the API. Every request carries the stored token as a header (reads
 * too: a server may require it for them); browsers never attach it by
 * themselves, which is what makes the actions CSRF-safe.
 *
 * A read (GET) answered 401 means the server requires the token for reads:
 * the token prompt opens (once for all reads waiting on it), and the read
 * is sent again with the token given. A read sent with a token that was
 * replaced meanwhile is sent again without asking. Actions are not retried:
 * `act` reports their 401.
 */
export async function api(path, { method = 'GET', ask = method === 'GET' } = {}) {
  for (;;) {
    const token = getToken();
    try {
      return await request(path, method, token);
    } catch (e) {
      if (!ask || e.status !== 401) throw e;
      if (getToken() !== token) continue;
      if (!(await askReadToken(!!token))) {
        throw new ApiError(
          401,
          'unauthorized',
          'This server shows its data only with the admin token: use “Set token” to enter it.',
        );
      }
    }
  }
}

async function request(path, method, token) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  let resp;
  try {
    resp = await fetch(API + path, { method, headers, cache: 'no-store', credentials: 'omit' });
  } catch (e) {
    throw new ApiError(0, 'network', 'cannot reach the server (' + e.message + ')');
  }
  let body = null;
  try {
    body = await resp.json();
  } catch {
    body = null;
  }
  if (!resp.ok) {
    const why = body && body.error ? body.error : 'request failed';
    throw new ApiError(resp.status, body && body.code, `${resp.status} ${resp.statusText}: ${why}`);
  }
  return body;
}

/** Whether the operator dismissed the read token prompt (until a token is set). */
let readPromptDeclined = false;
/** The prompt on screen, shared by every read that waits for it. */
let readPrompt = null;

/**
 * Asks for the token that reads need; `refused` when the stored one was
 * refused (it is forgotten). Resolves true once a token is stored.
 */
function askReadToken(refused) {
  if (refused) setToken('');
  if (readPromptDeclined) return Promise.resolve(false);
  if (!readPrompt) {
    readPrompt = tokenPrompt(refused).then((given) => {
      readPrompt = null;
      if (given) setToken(given);
      else readPromptDeclined = true;
      return !!given;
    });
  }
  return readPrompt;
}

/** The "Admin token needed" dialog; resolves to the token given, or '' when cancelled. */
function tokenPrompt(refused) {
  const dlg = document.getElementById('token-prompt');
  const input = document.getElementById('token-prompt-input');
  const ok = document.getElementById('token-prompt-ok');
  const cancel = document.getElementById('token-prompt-cancel');
  document.getElementById('token-prompt-text').textContent = refused
    ? 'The server refused that token. Enter its admin token to see the data (kept in this tab only).'
    : 'This server shows jobs, queues and payloads only with its admin token. ' +
      'Enter it to see the data (kept in this tab only).';
  input.value = '';
  return new Promise((resolve) => {
    const done = (given) => {
      ok.removeEventListener('click', onOk);
      cancel.removeEventListener('click', onCancel);
      input.removeEventListener('keydown', onKey);
      dlg.removeEventListener('cancel', onCancel);
      dlg.close();
      resolve(given);
    };
    const onOk = () => {
      const given = input.value.trim();
      if (given) done(given);
      else input.focus();
    };
    const onCancel = (e) => {
      if (e) e.preventDefault();
      done('');
    };
    const onKey = (e) => {
      if (e.key === 'Enter') onOk();
    };
    ok.addEventListener('click', onOk);
    cancel.addEventListener('click', onCancel);
    input.addEventListener('keydown', onKey);
    dlg.addEventListener('cancel', onCancel);
    dlg.showModal();
    input.focus();
  });
}

/** Path segment, encoded. */
export const enc = encodeURIComponent;

export function fmtNum(n) {
  return n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US');
}

/** An absolute time, local, to the second. */
export function fmtTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  const pad = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "12 s ago", "in 3 min". */
export function fmtAgo(iso) {
  if (!iso) return '–';
  const s = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
  const a = Math.abs(s);
  let txt;
  if (a < 60) txt = `${a} s`;
  else if (a < 3600) txt = `${Math.round(a / 60)} min`;
  else if (a < 86400) txt = `${Math.round(a / 360) / 10} h`;
  else txt = `${Math.round(a / 8640) / 10} d`;
  return s > 1 ? `in ${txt}` : `${txt} ago`;
}

/** A `<time>` showing relative time, with the absolute one on hover. */
export function timeEl(iso) {
  if (!iso) return h('span', { class: 'muted' }, '–');
  return h('time', { datetime: iso, title: fmtTime(iso), 'data-rel': '' }, fmtAgo(iso));
}

export function statusBadge(status, attrs = {}) {
  return h('span', { ...attrs, class: `badge st-${status}` }, status);
}

export function jobLink(id) {
  return h('a', { href: `#/jobs/${enc(id)}`, class: 'mono' }, id);
}

/** Shows a message in the banner under the header (text only). */
export function flash(message, kind = 'error') {
  const el = document.getElementById('flash');
  el.textContent = message;
  el.className = `flash ${kind}`;
  el.hidden = false;
  clearTimeout(flash.timer);
  if (kind === 'ok') flash.timer = setTimeout(() => (el.hidden = true), 6000);
}

export function clearFlash() {
  document.getElementById('flash').hidden = true;
}

/**
 * Asks for confirmation in a modal dialog; asks for the admin token in the
 * same dialog when this tab has none yet. Resolves true when confirmed.
 */
export function confirmDialog({ title, text, confirm = 'Confirm', danger = false, tokenOnly = false }) {
  const dlg = document.getElementById('confirm');
  const input = document.getElementById('confirm-token');
  const ok = document.getElementById('confirm-ok');
  const cancel = document.getElementById('confirm-cancel');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-token-row').hidden = !tokenOnly && !!getToken();
  input.value = '';
  ok.textContent = confirm;
  ok.className = danger ? 'danger' : 'primary';
  return new Promise((resolve) => {
    const done = (yes) => {
      ok.removeEventListener('click', onOk);
      cancel.removeEventListener('click', onCancel);
      input.removeEventListener('keydown', onKey);
      dlg.removeEventListener('cancel', onCancel);
      if (yes && input.value.trim()) setToken(input.value.trim());
      dlg.close();
      resolve(yes);
    };
    const onOk = () => done(true);
    const onCancel = (e) => {
      if (e) e.preventDefault();
      done(false);
    };
    const onKey = (e) => {
      if (e.key === 'Enter') done(true);
    };
    ok.addEventListener('click', onOk);
    cancel.addEventListener('click', onCancel);
    input.addEventListener('keydown', onKey);
    dlg.addEventListener('cancel', onCancel);
    dlg.showModal();
    (getToken() && !tokenOnly ? cancel : input).focus();
  });
}

/**
 * Runs an action after confirmation: POSTs `path` and flashes the outcome.
 * A 401 forgets the stored token so the next action asks again. Resolves to
 * the response body, or null when cancelled or refused.
 */
export async function act({ title, text, path, done, danger = false, confirm }) {
  if (!(await confirmDialog({ title, text, danger, confirm }))) return null;
  try {
    const body = await api(path, { method: 'POST' });
    flash(done(body), 'ok');
    return body;
  } catch (e) {
    if (e.status === 401) setToken('');
    flash(`${title} refused — ${e.message}`, 'error');
    return null;
  }
}

/** A button that runs an action; `data-action` names it for tests and styles. */
export function actionButton(label, action, opts, after) {
  return h(
    'button',
    { type: 'button', class: opts.danger ? 'danger small' : 'small', 'data-action': action, onclick: async () => {
      const body = await act(opts);
      if (body && after) after(body);
    } },
    label,
  );
}

/** A message box in place of a page's content (errors, empty states). */
export function note(text, kind = 'muted') {
  return h('p', { class: `note ${kind}` }, text);
}

/**
 * Follows a queue's job events (`/api/queues/{queue}/events`, server-sent
 * events read through `fetch`, so the admin token travels as a header like
 * every other read). Calls `onEvent(event)` for each job event and
 * `onEvent(null)` when events were missed (the page reloads what it shows).
 * Reconnects after a pause when the stream ends, resuming after the last
 * event seen. Returns a function that stops it.
 */
export function followEvents(queue, { job = null } = {}, onEvent) {
  const abort = new AbortController();
  let last = '';
  const run = async () => {
    while (!abort.signal.aborted) {
      const params = new URLSearchParams();
      if (job) params.set('job', job);
      if (last) params.set('after', last);
      const headers = { Accept: 'text/event-stream' };
      const token = getToken();
      if (token) headers.Authorization = 'Bearer ' + token;
      try {
        const resp = await fetch(`${API}/queues/${enc(queue)}/events?${params}`, {
          headers, cache: 'no-store', credentials: 'omit', signal: abort.signal,
        });
        if (resp.ok && resp.body) await readEvents(resp.body, (name, id, data) => {
          if (id) last = id;
          if (name === 'job') onEvent(JSON.parse(data));
          else if (name === 'missed') onEvent(null);
        });
      } catch {
        // Aborted, or the connection dropped: retried below unless stopped.
      }
      if (abort.signal.aborted) return;
      await new Promise((r) => setTimeout(r, 2000));
    }
  };
  run();
  return () => abort.abort();
}

/** Reads a server-sent event stream, calling `each(event, id, data)` per event. */
async function readEvents(body, each) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let name = 'message';
      let id = '';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('id:')) id = line.slice(3).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length) each(name, id, data.join('\n'));
    }
  }
}

/** Calls `f` at most once per `ms`, the last call of a burst included. */
export function throttle(f, ms) {
  let timer = null;
  let again = false;
  return () => {
    if (timer) {
      again = true;
      return;
    }
    f();
    timer = setTimeout(function done() {
      timer = null;
      if (again) {
        again = false;
        f();
        timer = setTimeout(done, ms);
      }
    }, ms);
  };
}
