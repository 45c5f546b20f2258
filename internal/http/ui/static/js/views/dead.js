// Dead letters: dead effects and dead timers across every type, with Retry and
// Discard buttons, and "Retry all" that says how many it will retry and asks first.

import {all, api, q} from '../api.js';
import {badge, h, label, notice, replace, section} from '../dom.js';
import {time} from '../format.js';
import {link, navigate} from '../nav.js';
import {discardButton, retryButton} from '../retry.js';

const PAGE = 100;
const MAX_BULK = 1000; // effects one Retry all retries

// pagedTable draws one list with a "Load more" button that follows next_cursor.
function pagedTable(ctx, {path, headers, row, empty, testid}) {
  const body = h('tbody', {});
  const more = h('div', {class: 'pager'});
  const tableEl = h('table', {class: 'grid', 'data-testid': testid}, h('thead', {}, h('tr', {}, headers.map((x) => h('th', {scope: 'col'}, x)))), body);
  const wrap = h('div', {}, tableEl, more);
  let count = 0;
  async function page(cursor) {
    const p = await api(path + q({status: 'dead', workflow_type: ctx.query.get('type'), limit: PAGE, cursor}), {signal: ctx.signal});
    for (const item of p.items) body.append(row(item));
    count += p.items.length;
    if (!count) body.append(h('tr', {class: 'empty'}, h('td', {colspan: headers.length}, empty)));
    label(tableEl, headers);
    replace(more, p.next_cursor
      ? h('button', {type: 'button', onclick: () => page(p.next_cursor).catch(ctx.fail)}, 'Load more')
      : h('span', {class: 'muted'}, `${count} in all`));
    return p;
  }
  return {wrap, page};
}

export async function render(ctx) {
  const types = await all('/v1/workflow-types', {signal: ctx.signal});
  const typeSel = h('select', {'aria-label': 'type', onchange: () => navigate(link(['dead'], {type: typeSel.value}))},
    h('option', {value: ''}, 'every type'),
    types.map((t) => h('option', {value: t.type, selected: t.type === ctx.query.get('type')}, t.type)));

  const instanceLink = (x) => h('a', {href: link(['workflows', x.workflow_type, x.workflow_id])}, `${x.workflow_type} / ${x.workflow_id}`);

  const effects = pagedTable(ctx, {
    path: '/v1/effects',
    testid: 'dead-effects',
    empty: 'No dead effects.',
    headers: ['instance', 'effect', 'attempts', 'last error', 'dead since', 'status', ''],
    row: (e) => {
      return h('tr', {'data-testid': 'dead-effect-row', 'data-key': e.id},
        h('td', {}, instanceLink(e)),
        h('td', {}, h('strong', {}, e.name), h('div', {class: 'muted small'}, h('code', {class: 'id'}, e.id))),
        h('td', {class: 'num'}, e.attempt_count),
        h('td', {class: 'err'}, e.last_error || ''),
        h('td', {}, time(e.updated_at)),
        h('td', {class: 'status-cell'}, badge(e.status)),
        h('td', {class: 'row-actions'}, retryButton('effect', e, {signal: ctx.signal}), ' ', discardButton('effect', e, {signal: ctx.signal})));
    },
  });
  const timers = pagedTable(ctx, {
    path: '/v1/timers',
    testid: 'dead-timers',
    empty: 'No dead timers.',
    headers: ['instance', 'timer', 'input', 'attempts', 'last error', 'status', ''],
    row: (t) => {
      return h('tr', {'data-testid': 'dead-timer-row', 'data-key': t.id},
        h('td', {}, instanceLink(t)),
        h('td', {}, h('strong', {}, t.key), h('div', {class: 'muted small'}, 'due ', time(t.fire_at))),
        h('td', {}, h('code', {}, t.input?.type || '')),
        h('td', {class: 'num'}, t.attempt_count),
        h('td', {class: 'err'}, t.last_error || ''),
        h('td', {class: 'status-cell'}, badge(t.status)),
        h('td', {class: 'row-actions'}, retryButton('timer', t, {signal: ctx.signal}), ' ', discardButton('timer', t, {signal: ctx.signal})));
    },
  });

  // Retry every dead effect of the type (after a receiver's outage, that is usually
  // all of them): count them first, say the count and ask, then retry four at a time
  // with the progress shown.
  const progress = h('span', {class: 'muted', 'data-testid': 'retry-all-progress', role: 'status'});
  const retryAll = h('button', {type: 'button', 'data-testid': 'retry-all', onclick: async (e) => {
    const btn = e.currentTarget;
    btn.disabled = true;
    try {
      const dead = await all('/v1/effects' + q({status: 'dead', workflow_type: ctx.query.get('type')}), {max: MAX_BULK, signal: ctx.signal});
      if (!dead.length) {
        progress.textContent = 'No dead effects to retry.';
        return;
      }
      const n = `${dead.length}${dead.truncated ? ` (the first ${dead.length} of more)` : ''}`;
      if (!window.confirm(`Retry ${n} dead effect(s)${ctx.query.get('type') ? ' of ' + ctx.query.get('type') : ''}? Each goes back to pending with a fresh attempt budget.`)) return;
      let done = 0;
      let failed = 0;
      const queue = [...dead];
      const one = async () => {
        for (let x = queue.shift(); x; x = queue.shift()) {
          try {
            await api('/v1/effects/' + encodeURIComponent(x.id) + '/retry', {method: 'POST', signal: ctx.signal});
            done++;
          } catch (err) {
            if (err.name === 'AbortError') return;
            failed++;
          }
          progress.textContent = `${done} of ${dead.length} retried${failed ? `, ${failed} refused` : ''}…`;
        }
      };
      await Promise.all([one(), one(), one(), one()]);
      progress.textContent = `${done} of ${dead.length} retried${failed ? `, ${failed} refused` : ''}.`;
      window.dispatchEvent(new Event('ironflow:changed'));
    } catch (err) {
      if (err.name !== 'AbortError') progress.textContent = `Retry all failed: ${err.message}`;
    } finally {
      btn.disabled = false;
    }
  }}, 'Retry all dead effects…');

  replace(ctx.main,
    h('h1', {}, 'Dead letters'),
    notice('info', 'An effect is dead when its webhook failed every attempt (IRONFLOW_MAX_ATTEMPTS); a timer when its input could not be executed. ',
      'Retry puts it back to pending with a fresh attempt budget; the instance then carries on as if the delivery had just succeeded.'),
    h('div', {class: 'toolbar'}, h('label', {}, 'Type ', typeSel), retryAll, progress),
    section('Dead effects', effects.wrap),
    section('Dead timers', timers.wrap));
  await Promise.all([effects.page(''), timers.page('')]);
}
