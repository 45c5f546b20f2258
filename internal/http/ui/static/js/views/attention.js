// Needs attention: every instance an operator should look at, one row each, worst
// first: failed instances, and instances with dead effects or dead timers. Built from
// three indexed lists (status=failed, dead effects, dead timers), not a scan.

import {api, q} from '../api.js';
import {badge, h, notice, replace, table} from '../dom.js';
import {time} from '../format.js';
import {instanceLink, link} from '../nav.js';

const MAX = 500; // rows read from each list

async function list(path, signal) {
  const p = await api(path + (path.includes('?') ? '&' : '?') + 'limit=' + MAX, {signal});
  return {items: p.items, more: !!p.next_cursor};
}

export async function render(ctx) {
  const type = ctx.query.get('type') || '';
  const [failed, deadEffects, deadTimers] = await Promise.all([
    list('/v1/workflows' + q({status: 'failed', type}), ctx.signal),
    list('/v1/effects' + q({status: 'dead', workflow_type: type}), ctx.signal),
    list('/v1/timers' + q({status: 'dead', workflow_type: type}), ctx.signal),
  ]);
  const byInstance = new Map();
  const entry = (t, id) => {
    const k = JSON.stringify([t, id]);
    if (!byInstance.has(k)) byInstance.set(k, {type: t, id, reasons: [], since: null, failed: null, effects: [], timers: []});
    return byInstance.get(k);
  };
  const earliest = (a, b) => (!a || (b && Date.parse(b) < Date.parse(a)) ? b : a);
  for (const w of failed.items) {
    const e = entry(w.type, w.id);
    e.failed = w;
    e.since = earliest(e.since, w.completed_at);
  }
  for (const x of deadEffects.items) {
    const e = entry(x.workflow_type, x.workflow_id);
    e.effects.push(x);
    e.since = earliest(e.since, x.updated_at);
  }
  for (const x of deadTimers.items) {
    const e = entry(x.workflow_type, x.workflow_id);
    e.timers.push(x);
    e.since = earliest(e.since, x.updated_at);
  }
  const rows = [...byInstance.values()].sort((a, b) => Date.parse(a.since) - Date.parse(b.since));
  const truncated = failed.more || deadEffects.more || deadTimers.more;

  replace(ctx.main,
    h('h1', {}, 'Needs attention'),
    h('p', {class: 'muted'}, 'Instances that failed, or wait on a dead effect or timer, oldest first. Open one to see why and act.'),
    truncated ? notice('warn', `More than ${MAX} of one kind: the oldest ${MAX} of each are shown.`) : null,
    rows.length
      ? table(['instance', 'why', 'since', ''], rows.map((r) => h('tr', {'data-testid': 'attention-row', 'data-key': r.type + '/' + r.id},
        h('td', {}, instanceLink(r)),
        h('td', {}, h('ul', {class: 'why'},
          r.failed ? h('li', {}, badge('failed'), ` in state ${r.failed.state.name}`) : null,
          r.effects.length ? h('li', {}, badge('dead'), ` ${r.effects.length} dead effect(s): `, r.effects.map((x, i) => [i ? ', ' : '', h('code', {}, x.name)]),
            r.effects[0].last_error ? h('div', {class: 'err small'}, r.effects[0].last_error) : null) : null,
          r.timers.length ? h('li', {}, badge('dead'), ` ${r.timers.length} dead timer(s): `, r.timers.map((x, i) => [i ? ', ' : '', h('code', {}, x.key)])) : null)),
        h('td', {}, time(r.since)),
        h('td', {}, h('a', {class: 'button', href: link(['workflows', r.type, r.id])}, 'Open')))), {testid: 'attention-table'})
      : notice('ok', 'Nothing needs attention: no failed instances, no dead effects or timers.'));
}
