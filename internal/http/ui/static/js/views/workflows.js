// Instances: filters (type, state, status), id search and cursor paging over
// GET /v1/workflows.

import {ApiError, all, api, q, wf} from '../api.js';
import {badge, h, notice, replace, table} from '../dom.js';
import {time} from '../format.js';
import {link, navigate} from '../nav.js';
import {stateNames} from './types.js';

// Cursors already walked through, per filter, so "Previous" can go back.
const trail = new Map();

export async function render(ctx) {
  const f = {
    type: ctx.query.get('type') || '',
    state: ctx.query.get('state') || '',
    status: ctx.query.get('status') || '',
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
  const limitSel = h('select', {name: 'limit', 'aria-label': 'page size'},
    ['25', '50', '100', '200'].map((s) => h('option', {value: s, selected: s === f.limit}, `${s} a page`)));
  const idIn = h('input', {name: 'id', placeholder: 'find by id', 'aria-label': 'instance id', 'data-testid': 'id-search'});
  const found = h('div', {});

  const filters = h('form', {
    class: 'filters',
    onsubmit: (e) => {
      e.preventDefault();
      navigate(link(['workflows'], {type: typeSel.value, state: stateIn.value.trim(), status: statusSel.value, limit: limitSel.value}));
    },
  }, typeSel, stateIn, stateList, statusSel, limitSel, h('button', {type: 'submit'}, 'Filter'),
  f.type || f.state || f.status ? h('a', {href: '#/workflows'}, 'clear') : null);

  const search = h('form', {
    class: 'filters',
    onsubmit: async (e) => {
      e.preventDefault();
      const id = idIn.value.trim();
      if (!id) return;
      replace(found, h('span', {class: 'muted'}, 'Looking…'));
      // Ids are unique per type only: look the id up in the selected type, else in
      // every type.
      const candidates = typeSel.value ? [typeSel.value] : types.map((t) => t.type);
      const hits = [];
      for (const t of candidates) {
        try {
          hits.push(await api(wf(t, id), {signal: ctx.signal}));
        } catch (err) {
          if (!(err instanceof ApiError && (err.status === 404 || err.status === 400))) throw err;
        }
      }
      if (hits.length === 1) return navigate(link(['workflows', hits[0].type, hits[0].id]));
      replace(found, hits.length
        ? notice('info', `"${id}" exists in ${hits.length} types: `, hits.map((w) => [h('a', {href: link(['workflows', w.type, w.id])}, w.type), ' ']))
        : notice('warn', `No instance "${id}" in ${typeSel.value ? 'type ' + typeSel.value : 'any type'}.`));
    },
  }, idIn, h('button', {type: 'submit'}, 'Open'));

  const page = await api('/v1/workflows' + q({type: f.type, state: f.state, status: f.status, limit: f.limit, cursor: f.cursor}), {signal: ctx.signal});
  const key = JSON.stringify([f.type, f.state, f.status, f.limit]);
  const walked = trail.get(key) || [];
  const at = walked.indexOf(f.cursor);
  const prevCursor = at > 0 ? walked[at - 1] : at === 0 ? null : undefined;
  if (f.cursor && at < 0) walked.push(f.cursor);
  trail.set(key, walked);

  const rows = page.items.map((w) => h('tr', {},
    h('td', {}, w.type),
    h('td', {}, h('a', {href: link(['workflows', w.type, w.id]), 'data-testid': `instance-${w.id}`}, w.id)),
    h('td', {}, badge(w.state.name, 'state')),
    h('td', {}, badge(w.status)),
    h('td', {class: 'num'}, w.version),
    h('td', {class: 'num'}, `v${w.definition_version}`),
    h('td', {}, time(w.updated_at)),
    h('td', {}, time(w.created_at))));

  const base = {type: f.type, state: f.state, status: f.status, limit: f.limit};
  const pager = h('div', {class: 'pager'},
    f.cursor ? h('a', {class: 'button', href: link(['workflows'], base)}, '⇤ First') : null,
    f.cursor && prevCursor !== undefined ? h('a', {class: 'button', href: link(['workflows'], {...base, cursor: prevCursor || ''})}, '← Previous') : null,
    page.next_cursor
      ? h('a', {class: 'button', href: link(['workflows'], {...base, cursor: page.next_cursor}), 'data-testid': 'next-page'}, 'Next →')
      : h('span', {class: 'muted'}, 'last page'));

  replace(ctx.main,
    h('h1', {}, 'Instances'),
    h('div', {class: 'toolbar'}, filters, search),
    found,
    table(['type', 'id', 'state', 'status', 'version', 'definition', 'updated', 'created'], rows, {
      empty: 'No instance matches.',
      testid: 'instances-table',
    }),
    pager);
}
