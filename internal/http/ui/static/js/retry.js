// Retry buttons for dead effects and timers: POST …/retry puts the item back to
// pending with a fresh attempt budget; the button then watches it until the worker
// has delivered (or fired) it, or it died again. Discard buttons end a dead (or
// pending) effect or timer for good: it is cancelled, never delivered.
//
// Progress is written into the row's status cell (the cell with class status-cell in
// the button's row), found when the button is pressed: a page may have redrawn the
// row since.

import {api} from './api.js';
import {badge, h, replace} from './dom.js';

const WATCH_MS = 500;
const WATCH_FOR_MS = 60000;

const base = (kind) => (kind === 'effect' ? '/v1/effects/' : '/v1/timers/');
const statusCell = (btn) => btn.closest('tr')?.querySelector('.status-cell');

function show(btn, status, extra) {
  const cell = statusCell(btn);
  if (cell) replace(cell, badge(status), extra ? h('span', {class: 'muted'}, ' ', extra) : null);
}

// retryButton returns a button that retries item (kind 'effect' or 'timer'); done(item)
// runs with the final item.
export function retryButton(kind, item, {done, signal} = {}) {
  return h('button', {type: 'button', class: 'retry', 'data-testid': `retry-${kind}-${item.id}`,
    title: `Put this ${kind} back to pending with a fresh attempt budget`,
    onclick: (e) => retry(e.currentTarget, kind, item, {done, signal})}, 'Retry');
}

// retry retries item and watches it; btn shows the progress. Resolves with the final
// item (null when the request failed).
async function retry(btn, kind, item, {done, signal} = {}) {
  btn.disabled = true;
  btn.textContent = 'Retrying…';
  try {
    let cur = await api(base(kind) + encodeURIComponent(item.id) + '/retry', {method: 'POST', signal});
    show(btn, cur.status, 'retried, waiting for the worker…');
    const until = Date.now() + WATCH_FOR_MS;
    while (cur.status === 'pending' && Date.now() < until && !signal?.aborted) {
      await new Promise((r) => setTimeout(r, WATCH_MS));
      cur = await api(base(kind) + encodeURIComponent(item.id), {signal});
      show(btn, cur.status, cur.status === 'pending' && cur.attempt_count ? `attempt ${cur.attempt_count} failed: ${cur.last_error || ''}` : '');
    }
    btn.textContent = cur.status === 'dead' ? 'Retry again' : 'Retried';
    btn.disabled = cur.status !== 'dead';
    // The navigation bar's dead count listens for this.
    window.dispatchEvent(new Event('ironflow:changed'));
    if (done) done(cur);
    return cur;
  } catch (err) {
    if (err.name === 'AbortError') return null;
    btn.disabled = false;
    btn.textContent = 'Retry';
    show(btn, 'error', err.message);
    return null;
  }
}

// discardButton returns a button that cancels item for good (DELETE), after a
// confirmation; done(item) runs with the cancelled item.
export function discardButton(kind, item, {done, signal} = {}) {
  return h('button', {type: 'button', class: 'discard', 'data-testid': `discard-${kind}-${item.id}`,
    title: `Cancel this ${kind} for good: it is never delivered`,
    onclick: async (e) => {
      const btn = e.currentTarget;
      const what = kind === 'effect' ? `effect ${item.name}` : `timer ${item.key}`;
      if (!window.confirm(`Discard ${what} of ${item.workflow_type}/${item.workflow_id}? It will never be ${kind === 'effect' ? 'delivered' : 'fired'}.`)) return;
      btn.disabled = true;
      try {
        const cur = await api(base(kind) + encodeURIComponent(item.id), {method: 'DELETE', signal});
        show(btn, cur.status, 'discarded');
        btn.textContent = 'Discarded';
        window.dispatchEvent(new Event('ironflow:changed'));
        if (done) done(cur);
      } catch (err) {
        if (err.name === 'AbortError') return;
        btn.disabled = false;
        show(btn, 'error', err.message);
      }
    }}, 'Discard');
}
