// Workflow types: the list, and one type with its diagram, versions and webhook.

import {all, api, optional} from '../api.js';
import {h, jsonBlock, notice, replace, section, table} from '../dom.js';
import {time} from '../format.js';
import {diagram} from '../diagram.js';
import {link, navigate} from '../nav.js';

const typePath = (type) => `/v1/workflow-types/${encodeURIComponent(type)}`;

// stateNames lists the states of a definition document in its own order.
export function stateNames(def) {
  return Object.keys(def?.states || {});
}

export async function renderList(ctx) {
  const items = await all('/v1/workflow-types', {signal: ctx.signal});
  const rows = items.map((d) => h('tr', {},
    h('td', {}, h('a', {href: link(['types', d.type]), 'data-testid': `type-${d.type}`}, d.type)),
    h('td', {}, d.definition?.description || ''),
    h('td', {class: 'num'}, `v${d.version}`),
    h('td', {}, stateNames(d.definition).length),
    h('td', {}, time(d.created_at)),
    h('td', {}, h('a', {href: link(['workflows'], {type: d.type})}, 'instances →'))));
  replace(ctx.main,
    h('h1', {}, 'Workflow types'),
    table(['type', 'description', 'latest', 'states', 'defined', ''], rows, {
      empty: 'No workflow types yet: PUT a definition to /v1/workflow-types/{type}.',
      testid: 'types-table',
    }));
}

export async function renderType(ctx) {
  const {type} = ctx.params;
  const [versions, webhook] = await Promise.all([
    all(`${typePath(type)}/versions`, {limit: 50, signal: ctx.signal}),
    optional(api(`${typePath(type)}/webhook`, {signal: ctx.signal})),
  ]);
  const latest = versions[versions.length - 1];
  const wanted = Number(ctx.query.get('version')) || latest.version;
  const shown = versions.find((v) => v.version === wanted) || latest;
  const def = shown.definition || {};

  const picker = h('select', {
    'aria-label': 'version',
    onchange: (e) => navigate(link(['types', type], {version: e.target.value})),
  }, [...versions].reverse().map((v) => h('option', {value: v.version, selected: v.version === shown.version},
    `v${v.version}${v.version === latest.version ? ' (latest)' : ''} — ${new Date(v.created_at).toLocaleString()}`)));

  const states = stateNames(def).map((name) => {
    const st = def.states[name];
    const inputs = Object.keys(st.on || {});
    return h('tr', {},
      h('td', {}, h('a', {href: link(['workflows'], {type, state: name})}, name), name === def.initial_state ? h('span', {class: 'muted'}, ' (initial)') : null),
      h('td', {}, st.terminal ? 'terminal' : inputs.join(', ') || h('span', {class: 'muted'}, 'accepts nothing')),
      h('td', {}, (st.timers || []).map((t) => `timer ${t.key} ${t.after || t.at || ''} → ${t.input?.type || ''}`).join(' ')));
  });

  const hook = webhook
    ? h('dl', {class: 'kv'},
      h('dt', {}, 'URL'), h('dd', {}, h('code', {}, webhook.url)),
      h('dt', {}, 'status'), h('dd', {}, webhook.status || 'active'),
      webhook.updated_at ? [h('dt', {}, 'updated'), h('dd', {}, time(webhook.updated_at))] : null)
    : notice('warn', 'No webhook registered: this type\'s effects wait (pending) until one is. PUT /v1/workflow-types/', type, '/webhook');

  replace(ctx.main,
    h('p', {class: 'crumbs'}, h('a', {href: '#/types'}, 'Workflow types'), ' / ', type),
    h('h1', {}, type, ' ', h('span', {class: 'muted'}, def.description || '')),
    h('div', {class: 'toolbar'}, h('label', {}, 'Version ', picker), ' ',
      h('a', {class: 'button', href: link(['workflows'], {type})}, 'Instances of this type →')),
    h('div', {class: 'cols'},
      section(`Diagram (v${shown.version})`, diagram(type, {version: shown.version})),
      h('div', {},
        section('States', table(['state', 'accepts', 'timers'], states)),
        section('Webhook', hook))),
    section('Versions', table(['version', 'defined', 'states', ''], [...versions].reverse().map((v) => h('tr', {},
      h('td', {}, `v${v.version}`),
      h('td', {}, time(v.created_at)),
      h('td', {}, stateNames(v.definition).join(', ')),
      h('td', {}, v.version === shown.version ? h('span', {class: 'muted'}, 'shown') : h('a', {href: link(['types', type], {version: v.version})}, 'show')))))),
    section('Definition', jsonBlock(def, {open: false, limit: 120})));
}
