// The console's shell: a hash router (#/types, #/workflows/order/o-1, …), the API key
// box, and error display. Each page is a module exporting render(ctx).

import {ApiError, api, getKey, setKey} from './api.js';
import {h, notice, patch, replace} from './dom.js';
import * as overview from './views/overview.js';
import * as types from './views/types.js';
import * as workflows from './views/workflows.js';
import * as instance from './views/instance.js';
import * as dead from './views/dead.js';
import * as attention from './views/attention.js';
import * as items from './views/items.js';

const main = document.getElementById('main');

// routes: a path pattern (segments already decoded) and the page that draws it.
const routes = [
  {nav: 'overview', match: (p) => p.length === 0 && {}, page: overview},
  {nav: 'types', match: (p) => p.length === 1 && p[0] === 'types' && {}, page: types, fn: 'renderList'},
  {nav: 'types', match: (p) => p.length === 2 && p[0] === 'types' && {type: p[1]}, page: types, fn: 'renderType'},
  {nav: 'workflows', match: (p) => p.length === 1 && p[0] === 'workflows' && {}, page: workflows},
  {nav: 'workflows', match: (p) => p.length === 3 && p[0] === 'workflows' && {type: p[1], id: p[2]}, page: instance},
  {nav: 'dead', match: (p) => p.length === 1 && p[0] === 'dead' && {}, page: dead},
  {nav: 'attention', match: (p) => p.length === 1 && p[0] === 'attention' && {}, page: attention},
  {nav: 'overview', match: (p) => p.length === 1 && (p[0] === 'effects' || p[0] === 'timers') && {kind: p[0]}, page: items},
];

let current; // the page being shown: {controller, cleanups}

function parse() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?', 2);
  const segments = path.split('/').filter(Boolean).map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
  return {segments, query: new URLSearchParams(query)};
}

async function render() {
  if (current) {
    current.controller.abort();
    current.cleanups.forEach((fn) => fn());
  }
  const {segments, query} = parse();
  const controller = new AbortController();
  const cleanups = [];
  current = {controller, cleanups};
  const me = current;

  let params;
  const route = routes.find((r) => (params = r.match(segments)));
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', !!route && a.dataset.nav === route.nav);
  }
  if (!route) {
    replace(main, notice('warn', 'No such page. ', h('a', {href: '#/'}, 'Back to the overview')));
    return;
  }
  const ctx = {
    params,
    query,
    main,
    signal: controller.signal,
    // every registers fn to run every ms while the page is shown (skipped while the
    // tab is hidden); the page is gone once its signal aborts.
    every(ms, fn) {
      const t = setInterval(() => {
        if (!document.hidden && !controller.signal.aborted) fn();
      }, ms);
      cleanups.push(() => clearInterval(t));
    },
    onCleanup(fn) {
      cleanups.push(fn);
    },
    rerender: render,
    fail: (err) => showError(err, me),
  };
  replace(main, h('p', {class: 'muted loading'}, 'Loading…'));
  try {
    await route.page[route.fn || 'render'](ctx);
  } catch (err) {
    showError(err, me);
  }
}

// unreachable: the server did not answer, or a proxy in front of it said it is down.
const unreachable = (err) => err instanceof ApiError && [0, 502, 503, 504].includes(err.status);
const RECONNECT_MS = [1000, 2000, 3000, 5000];

// showError replaces the page with what went wrong; a 401 asks for the key. When the
// server cannot be reached the page stops its work, says so, and tries again on its
// own, redrawing the page once the server answers (a restart or a network blip).
function showError(err, page) {
  if (err?.name === 'AbortError' || page !== current) return;
  if (err instanceof ApiError && err.status === 401) {
    stop(page);
    // patch keeps the key field (and what is being typed in it) when the prompt is
    // already there.
    patch(main, keyPrompt(getKey() ? 'That API key was refused. Enter another one.' : 'This server needs an API key.'));
    return;
  }
  if (unreachable(err)) {
    stop(page);
    reconnect(page, err);
    return;
  }
  console.error(err);
  stop(page);
  replace(main, notice('error', h('strong', {}, 'Something went wrong: '), err.message || String(err), ' ',
    h('button', {type: 'button', onclick: render}, 'Try again')));
}

// stop ends a page's background work (polls, streams) without leaving it.
function stop(page) {
  page.controller.abort();
  page.cleanups.splice(0).forEach((fn) => fn());
}

async function reconnect(page, err) {
  const line = h('span', {});
  replace(main, notice('warn', h('strong', {}, 'The server does not answer'), ` (${err.message}). `, line, ' ',
    h('button', {type: 'button', onclick: render}, 'Try now')));
  main.querySelector('.notice')?.setAttribute('data-testid', 'reconnecting');
  for (let attempt = 0; page === current; attempt++) {
    const wait = RECONNECT_MS[Math.min(attempt, RECONNECT_MS.length - 1)];
    line.textContent = `Trying again in ${wait / 1000} s…`;
    await new Promise((r) => setTimeout(r, wait));
    if (page !== current) return;
    try {
      await api('/readyz');
      render();
      refreshDeadBadge();
      return;
    } catch (e) {
      if (!unreachable(e)) {
        render(); // it answers: the page shows whatever is wrong now
        return;
      }
    }
  }
}

// keyPrompt is the form that asks for an API key. The key lives in sessionStorage:
// it is gone when the tab closes and is never sent anywhere but this server.
function keyPrompt(message) {
  return h('section', {class: 'card narrow'},
    h('h2', {}, 'API key'),
    h('p', {}, message),
    h('form', {
      class: 'inline',
      onsubmit: (e) => {
        e.preventDefault();
        setKey(e.currentTarget.elements.key.value.trim());
        drawKeyBox();
        render();
        refreshDeadBadge();
      },
    }, h('input', {type: 'password', name: 'key', autocomplete: 'off', required: true,
      placeholder: 'a key from IRONFLOW_API_KEYS', 'aria-label': 'API key', 'data-testid': 'api-key'}),
    h('button', {type: 'submit'}, 'Use key')),
    h('p', {class: 'muted'}, 'The key is kept in this tab only (sessionStorage) and sent as "Authorization: Bearer".'));
}

function drawKeyBox() {
  const box = document.getElementById('keybox');
  if (getKey()) {
    replace(box, h('span', {class: 'muted'}, 'API key set'), ' ',
      h('button', {type: 'button', class: 'link', onclick: () => {
        setKey('');
        drawKeyBox();
        render();
      }}, 'forget'));
  } else {
    replace(box, h('button', {type: 'button', class: 'link', onclick: () => replace(main, keyPrompt('Set the API key for this tab.'))}, 'set API key'));
  }
}

// The dead-letter count in the navigation bar is refreshed every 10 s on every page.
async function refreshDeadBadge() {
  const badge = document.getElementById('dead-badge');
  try {
    const [effects, timers] = await Promise.all([
      api('/v1/effects?status=dead&limit=100'),
      api('/v1/timers?status=dead&limit=100'),
    ]);
    const n = effects.items.length + timers.items.length;
    const more = effects.next_cursor || timers.next_cursor;
    badge.hidden = n === 0;
    badge.textContent = more ? `${n}+` : String(n);
  } catch {
    badge.hidden = true;
  }
}

// The skip link moves focus past the navigation; its #main must not reach the router.
document.getElementById('skip').addEventListener('click', (e) => {
  e.preventDefault();
  main.focus();
});
window.addEventListener('hashchange', render);
window.addEventListener('ironflow:changed', refreshDeadBadge);
drawKeyBox();
render();
refreshDeadBadge();
setInterval(() => !document.hidden && refreshDeadBadge(), 10000);
