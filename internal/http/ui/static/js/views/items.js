// Effects and timers across every instance, by status (pending, dead, delivered or
// fired, cancelled) and type: #/effects?status=pending, #/timers?status=dead. The
// overview's backlog tiles open these lists.

import {all, api, q} from '../api.js';
import {badge, h, label, notice, replace, section} from '../dom.js';
import {ago, time} from '../format.js';
import {instanceLink, link, navigate} from '../nav.js';
import {discardButton, retryButton} from '../retry.js';

const PAGE = 100;

const KINDS = {
  effects: {
    kind: 'effect',
    title: 'Effects',
    statuses: ['pending', 'dead', 'delivered', 'cancelled'],
    headers: ['instance', 'effect', 'status', 'attempts', 'when', 'last error', ''],
    row: (e, ctx) => [
      h('td', {}, h('strong', {}, e.name),
        e.send ? h('div', {class: 'small'}, 'sends to ', instanceLink(e.send)) : null,
        h('div', {class: 'muted small'}, h('code', {class: 'id'}, e.id))),
      h('td', {class: 'status-cell'}, badge(e.status)),
      h('td', {class: 'num'}, e.attempt_count),
      h('td', {}, e.status === 'pending' ? ['next ', time(e.next_attempt_at)] : e.status === 'delivered' ? time(e.delivered_at) : time(e.updated_at)),
      h('td', {class: 'err'}, e.last_error || ''),
      h('td', {class: 'row-actions'}, e.status === 'dead' ? [retryButton('effect', e, {signal: ctx.signal}), ' '] : null,
        e.status === 'dead' || e.status === 'pending' ? discardButton('effect', e, {signal: ctx.signal}) : null),
    ],
  },
  timers: {
    kind: 'timer',
    title: 'Timers',
    statuses: ['pending', 'dead', 'fired', 'cancelled'],
    headers: ['instance', 'timer', 'status', 'attempts', 'fires', 'outcome / error', ''],
    row: (t, ctx) => [
      h('td', {}, h('strong', {}, t.key), ' ', h('code', {class: 'small'}, t.input?.type || '')),
      h('td', {class: 'status-cell'}, badge(t.status)),
      h('td', {class: 'num'}, t.attempt_count),
      h('td', {}, time(t.fire_at)),
      h('td', {}, t.outcome ? badge(t.outcome, 'outcome') : '', t.last_error ? h('span', {class: 'err'}, ' ', t.last_error) : ''),
      h('td', {class: 'row-actions'}, t.status === 'dead' ? [retryButton('timer', t, {signal: ctx.signal}), ' '] : null,
        t.status === 'dead' || t.status === 'pending' ? discardButton('timer', t, {signal: ctx.signal}) : null),
    ],
  },
};

export async function render(ctx) {
  const which = ctx.params.kind;
  const spec = KINDS[which];
  const status = spec.statuses.includes(ctx.query.get('status')) ? ctx.query.get('status') : 'pending';
  const type = ctx.query.get('type') || '';
  const types = await all('/v1/workflow-types', {signal: ctx.signal});
  const go = (over) => navigate(link([which], {status, type, ...over}));
  const typeSel = h('select', {'aria-label': 'type', onchange: (e) => go({type: e.currentTarget.value})},
    h('option', {value: ''}, 'every type'),
    types.map((t) => h('option', {value: t.type, selected: t.type === type}, t.type)));
  const tabs = h('div', {class: 'tabs', role: 'tablist'}, spec.statuses.map((s) =>
    h('a', {href: link([which], {status: s, type}), role: 'tab', 'aria-selected': s === status ? 'true' : 'false', class: s === status ? 'active' : ''}, s)));

  const body = h('tbody', {});
  const tableEl = h('table', {class: 'grid', 'data-testid': `${which}-table`},
    h('thead', {}, h('tr', {}, spec.headers.map((x) => h('th', {scope: 'col'}, x)))), body);
  const more = h('div', {class: 'pager'});
  let count = 0;
  async function page(cursor) {
    const p = await api(`/v1/${which}` + q({status, workflow_type: type, limit: PAGE, cursor}), {signal: ctx.signal});
    for (const x of p.items) {
      body.append(h('tr', {'data-testid': `${spec.kind}-row`, 'data-key': x.id},
        h('td', {}, instanceLink({workflow_type: x.workflow_type, id: x.workflow_id}),
          h('div', {class: 'muted small'}, 'created ', ago(x.created_at))),
        spec.row(x, ctx)));
    }
    count += p.items.length;
    if (!count) body.append(h('tr', {class: 'empty'}, h('td', {colspan: spec.headers.length}, `No ${status} ${which}.`)));
    label(tableEl, spec.headers);
    replace(more, p.next_cursor
      ? h('button', {type: 'button', onclick: () => page(p.next_cursor).catch(ctx.fail)}, 'Load more')
      : h('span', {class: 'muted'}, `${count} in all`));
  }

  replace(ctx.main,
    h('h1', {}, spec.title),
    h('div', {class: 'toolbar'}, tabs, h('label', {}, 'Type ', typeSel),
      h('a', {href: link([which === 'effects' ? 'timers' : 'effects'], {status: 'pending'})}, which === 'effects' ? 'Timers →' : 'Effects →')),
    status === 'pending' ? notice('info', which === 'effects'
      ? 'Pending effects wait for delivery or for their next attempt; an effect of a type without a webhook waits here until one is registered.'
      : 'Pending timers fire at their time. Discard cancels one for good.') : null,
    section(`${status} ${which}`, tableEl, more));
  await page('');
}
