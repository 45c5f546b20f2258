// Instances: status counts, filters (type, state, status, id prefix, creation time)
// and cursor paging over GET /v1/workflows.

import {all, api, optional, q} from '../api.js';
import {badge, h, replace, table} from '../dom.js';
import {time} from '../format.js';
import {link, navigate} from '../nav.js';
import {stateNames} from './types.js';

// The cursors walked through, per filter, kept for the tab (sessionStorage) so
// "Previous" works after a reload and on the first page reached by Next.
const TRAIL = 'ironflow.trail.workflows';

function trailOf(key) {
  try {
    return JSON.parse(sessionStorage.getItem(TRAIL) || '{}')[key] || [];
  } catch {
    return [];
  }
}

function saveTrail(key, walked) {
  let all = {};
  try {
    all = JSON.parse(sessionStorage.getItem(TRAIL) || '{}');
  } catch {
    // start again
  }
  all[key] = walked.slice(-200);
  sessionStorage.setItem(TRAIL, JSON.stringify(all));
}

// toLocalInput turns an RFC 3339 time into a datetime-local value, and back.
const toLocalInput = (iso) => {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
};
const fromLocalInput = (v) => (v ? new Date(v).toISOString() : '');

export async function render(ctx) {
  const f = {
    type: ctx.query.get('type') || '',
    state: ctx.query.get('state') || '',
    status: ctx.query.get('status') || '',
    id_prefix: ctx.query.get('id_prefix') || '',
    created_after: ctx.query.get('created_after') || '',
    created_before: ctx.query.get('created_before') || '',
    limit: ctx.query.get('limit') || '50',
    cursor: ctx.query.get('cursor') || '',
  };
  const types = await all('/v1/workflow-types', {signal: ctx.signal});
  const def = types.find((t) => t.type === f.type)?.definition;

  const typeSel = h('select', {name: 'type', 'aria-label': 'type'},
    h('option', {value: ''}, 'any type'),
    types.map((t) => h('option', {value: t.type, selected: t.type === f.type}, t.type)));
  const stateList = h('datalist', {id: 'state-names'}, (def ? stateNames(def) : [...new Set(types.flatMap((t) => stateNames(t.definition)))])
    .map((s) => h('option', {value: s})));
  const stateIn = h('input', {name: 'state', value: f.state, placeholder: 'any state', list: 'state-names', 'aria-label': 'state'});
  const statusSel = h('select', {name: 'status', 'aria-label': 'status'},
    ['', 'running', 'completed', 'failed', 'terminated'].map((s) => h('option', {value: s, selected: s === f.status}, s || 'any status')));
  const sizes = [...new Set(['25', '50', '100', '200', f.limit])].sort((a, b) => a - b);
  const limitSel = h('select', {name: 'limit', 'aria-label': 'page size'},
    sizes.map((s) => h('option', {value: s, selected: s === f.limit}, `${s} a page`)));
  const prefixIn = h('input', {name: 'id_prefix', value: f.id_prefix, placeholder: 'id starts with…', 'aria-label': 'id starts with', 'data-testid': 'id-search'});
  const afterIn = h('input', {type: 'datetime-local', name: 'created_after', value: toLocalInput(f.created_after), 'aria-label': 'created after', 'data-testid': 'created-after'});
  const beforeIn = h('input', {type: 'datetime-local', name: 'created_before', value: toLocalInput(f.created_before), 'aria-label': 'created before', 'data-testid': 'created-before'});

  const filters = h('form', {
    class: 'filters',
    onsubmit: (e) => {
      e.preventDefault();
      navigate(link(['workflows'], {type: typeSel.value, state: stateIn.value.trim(), status: statusSel.value,
        id_prefix: prefixIn.value.trim(), created_after: fromLocalInput(afterIn.value), created_before: fromLocalInput(beforeIn.value), limit: limitSel.value}));
    },
  }, typeSel, stateIn, stateList, statusSel, prefixIn,
  h('label', {class: 'small'}, 'created from ', afterIn), h('label', {class: 'small'}, 'to ', beforeIn),
  limitSel, h('button', {type: 'submit', 'data-testid': 'filter'}, 'Filter'),
  f.type || f.state || f.status || f.id_prefix || f.created_after || f.created_before ? h('a', {href: '#/workflows'}, 'clear') : null);

  const query = {type: f.type, state: f.state, status: f.status, id_prefix: f.id_prefix, created_after: f.created_after, created_before: f.created_before};
  const [page, counts] = await Promise.all([
    api('/v1/workflows' + q({...query, limit: f.limit, cursor: f.cursor}), {signal: ctx.signal}),
    optional(api('/v1/workflow-counts' + q({type: f.type, created_after: f.created_after, created_before: f.created_before}), {signal: ctx.signal})),
  ]);
  // One exact hit of an id search opens the instance.
  if (f.id_prefix && !f.cursor && page.items.length === 1 && page.items[0].id === f.id_prefix) {
    return navigate(link(['workflows', page.items[0].type, page.items[0].id]));
  }
  const key = JSON.stringify([query, f.limit]);
  const walked = f.cursor ? trailOf(key) : [];
  let at = walked.indexOf(f.cursor);
  if (f.cursor && at < 0) {
    walked.push(f.cursor);
    at = walked.length - 1;
  }
  saveTrail(key, walked);
  const prevCursor = at > 0 ? walked[at - 1] : ''; // '' is the first page

  const rows = page.items.map((w) => h('tr', {'data-key': w.type + '/' + w.id},
    h('td', {}, w.type),
    h('td', {}, h('a', {href: link(['workflows', w.type, w.id]), 'data-testid': `instance-${w.id}`, class: 'id'}, w.id)),
    h('td', {}, badge(w.state.name, 'state')),
    h('td', {}, badge(w.status)),
    h('td', {class: 'num'}, w.version),
    h('td', {class: 'num'}, `v${w.definition_version}`),
    h('td', {}, time(w.updated_at)),
    h('td', {}, time(w.created_at))));

  const base = {...query, limit: f.limit};
  const pager = h('div', {class: 'pager'},
    f.cursor ? h('a', {class: 'button', href: link(['workflows'], base)}, '⇤ First') : null,
    f.cursor ? h('a', {class: 'button', href: link(['workflows'], {...base, cursor: prevCursor}), 'data-testid': 'prev-page'}, '← Previous') : null,
    page.next_cursor
      ? h('a', {class: 'button', href: link(['workflows'], {...base, cursor: page.next_cursor}), 'data-testid': 'next-page'}, 'Next →')
      : h('span', {class: 'muted'}, 'last page'));

  const chips = counts ? h('div', {class: 'chips', 'data-testid': 'status-counts'},
    ['running', 'completed', 'failed', 'terminated'].map((st) => h('a', {
      href: link(['workflows'], {...query, status: st === f.status ? '' : st, limit: f.limit}),
      class: `chip ${st === f.status ? 'active' : ''}`, 'data-testid': `count-${st}`,
    }, badge(st), ' ', String(counts.counts?.[st] ?? 0), counts.capped && counts.counts?.[st] >= counts.cap ? '+' : ''))) : null;

  replace(ctx.main,
    h('h1', {}, 'Instances'),
    chips,
    h('div', {class: 'toolbar'}, filters),
    table(['type', 'id', 'state', 'status', 'version', 'definition', 'updated', 'created'], rows, {
      empty: f.id_prefix ? `No instance whose id starts with "${f.id_prefix}".` : 'No instance matches.',
      testid: 'instances-table',
    }),
    pager);
}
