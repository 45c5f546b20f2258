// Retry buttons for dead effects and timers: POST …/retry puts the item back to
// pending with a fresh attempt budget; the button then watches it until the worker
// has delivered (or fired) it, or it died again.

import {api} from './api.js';
import {badge, h, replace} from './dom.js';

const WATCH_MS = 500;
const WATCH_FOR_MS = 60000;

// retryButton returns a button that retries item (kind 'effect' or 'timer') and
// writes its progress into statusCell; done(item) runs with the final item.
export function retryButton(kind, item, {statusCell, done, signal} = {}) {
  const base = kind === 'effect' ? '/v1/effects/' : '/v1/timers/';
  const btn = h('button', {type: 'button', class: 'retry', 'data-testid': `retry-${kind}-${item.id}`,
    title: `Put this ${kind} back to pending with a fresh attempt budget`}, 'Retry');
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    btn.textContent = 'Retrying…';
    const show = (status, extra) => statusCell && replace(statusCell, badge(status), extra ? h('span', {class: 'muted'}, ' ', extra) : null);
    try {
      let cur = await api(base + encodeURIComponent(item.id) + '/retry', {method: 'POST', signal});
      show(cur.status, 'retried, waiting for the worker…');
      const until = Date.now() + WATCH_FOR_MS;
      while (cur.status === 'pending' && Date.now() < until && !signal?.aborted) {
        await new Promise((r) => setTimeout(r, WATCH_MS));
        cur = await api(base + encodeURIComponent(item.id), {signal});
        show(cur.status, cur.status === 'pending' && cur.attempt_count ? `attempt ${cur.attempt_count} failed: ${cur.last_error || ''}` : '');
      }
      btn.textContent = cur.status === 'dead' ? 'Retry again' : 'Retried';
      btn.disabled = cur.status !== 'dead';
      // The navigation bar's dead count listens for this.
      window.dispatchEvent(new Event('ironflow:changed'));
      if (done) done(cur);
    } catch (err) {
      if (err.name === 'AbortError') return;
      btn.disabled = false;
      btn.textContent = 'Retry';
      show('error', err.message);
    }
  });
  return btn;
}
