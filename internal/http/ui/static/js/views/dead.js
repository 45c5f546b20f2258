// Dead letters: dead effects and dead timers across every type, with Retry buttons.

import {all, api, q} from '../api.js';
import {badge, h, notice, replace, section, table} from '../dom.js';
import {time} from '../format.js';
import {link, navigate} from '../nav.js';
import {retryButton} from '../retry.js';

const PAGE = 100;

// pagedTable draws one list with a "Load more" button that follows next_cursor.
function pagedTable(ctx, {path, headers, row, empty, testid}) {
  const body = h('tbody', {});
  const more = h('div', {class: 'pager'});
  const wrap = h('div', {}, h('table', {class: 'grid', 'data-testid': testid}, h('thead', {}, h('tr', {}, headers.map((x) => h('th', {}, x)))), body), more);
  let count = 0;
  async function page(cursor) {
    const p = await api(path + q({status: 'dead', workflow_type: ctx.query.get('type'), limit: PAGE, cursor}), {signal: ctx.signal});
    for (const item of p.items) body.append(row(item));
    count += p.items.length;
    if (!count) body.append(h('tr', {class: 'empty'}, h('td', {colspan: headers.length}, empty)));
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
      const statusCell = h('td', {}, badge(e.status));
      return h('tr', {'data-testid': 'dead-effect-row'},
        h('td', {}, instanceLink(e)),
        h('td', {}, h('strong', {}, e.name), h('div', {class: 'muted small'}, h('code', {}, e.id))),
        h('td', {class: 'num'}, e.attempt_count),
        h('td', {class: 'err'}, e.last_error || ''),
        h('td', {}, time(e.updated_at)),
        statusCell,
        h('td', {}, retryButton('effect', e, {statusCell, signal: ctx.signal})));
    },
  });
  const timers = pagedTable(ctx, {
    path: '/v1/timers',
    testid: 'dead-timers',
    empty: 'No dead timers.',
    headers: ['instance', 'timer', 'input', 'attempts', 'last error', 'status', ''],
    row: (t) => {
      const statusCell = h('td', {}, badge(t.status));
      return h('tr', {'data-testid': 'dead-timer-row'},
        h('td', {}, instanceLink(t)),
        h('td', {}, h('strong', {}, t.key), h('div', {class: 'muted small'}, 'due ', time(t.fire_at))),
        h('td', {}, h('code', {}, t.input?.type || '')),
        h('td', {class: 'num'}, t.attempt_count),
        h('td', {class: 'err'}, t.last_error || ''),
        statusCell,
        h('td', {}, retryButton('timer', t, {statusCell, signal: ctx.signal})));
    },
  });

  // Retry every dead effect listed (after a receiver's outage, that is usually all of
  // them): each row's button retries and watches its own effect.
  const retryAll = h('button', {type: 'button', onclick: () => {
    retryAll.disabled = true;
    for (const b of effects.wrap.querySelectorAll('button.retry:not(:disabled)')) b.click();
  }}, 'Retry all listed effects');

  replace(ctx.main,
    h('h1', {}, 'Dead letters'),
    notice('info', 'An effect is dead when its webhook failed every attempt (IRONFLOW_MAX_ATTEMPTS); a timer when its input could not be executed. ',
      'Retry puts it back to pending with a fresh attempt budget; the instance then carries on as if the delivery had just succeeded.'),
    h('div', {class: 'toolbar'}, h('label', {}, 'Type ', typeSel), retryAll),
    section('Dead effects', effects.wrap),
    section('Dead timers', timers.wrap));
  await Promise.all([effects.page(''), timers.page('')]);
}
