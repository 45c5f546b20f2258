// One instance: where it is, why it is there, what it is waiting for, the retry
// buttons that move it on and the Terminate action that ends it; its parent and its
// children (instances it started with a send effect), each a link. Read again when one of its events is committed (the event
// stream), and every 10 s while an effect or timer of it is pending, since deliveries
// and attempts change it without an event.

import {ApiError, all, api, optional, q, wf} from '../api.js';
import {badge, h, jsonBlock, notice, patch, replace, section, table, textBlock} from '../dom.js';
import {ago, ms, time} from '../format.js';
import {diagram} from '../diagram.js';
import {follow} from '../live.js';
import {instanceLink, link} from '../nav.js';
import {discardButton, retryButton} from '../retry.js';
import {sendButton} from '../send.js';
import {terminateButton} from '../terminate.js';

const REFRESH_MS = 10000; // while an effect or timer is pending
const MAX_EFFECT_DETAILS = 100;
const CHILD_PAGE = 50;
const CHILD_STATUSES = ['running', 'completed', 'failed', 'terminated'];

// loadChildren reads the first pages of an instance's children (as many as the reader
// has asked for), so a redraw keeps what "Load more" showed. A server without the
// children route answers 404: no children.
async function loadChildren(base, {status, pages}, signal) {
  const items = [];
  let cursor = '';
  for (let i = 0; i < pages; i++) {
    const page = await optional(api(`${base}/children` + q({status, limit: CHILD_PAGE, cursor}), {signal}));
    if (!page) break;
    items.push(...(page.items || []));
    cursor = page.next_cursor || '';
    if (!cursor) break;
  }
  return {items, more: cursor !== ''};
}

async function load(type, id, signal, childView) {
  const base = wf(type, id);
  let instance = null;
  try {
    instance = await api(base, {signal});
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
  }
  // Inputs are listed even when no instance exists: a rejected first input leaves
  // its record, which is exactly what someone asking "where is my order?" needs.
  const inputs = await optional(all(`${base}/inputs`, {signal}), []);
  if (!instance) {
    const known = await optional(api(`/v1/workflow-types/${encodeURIComponent(type)}`, {signal}));
    return {instance, inputs, events: [], effects: [], timers: [], typeKnown: !!known};
  }
  const [events, effects, timers, def, children] = await Promise.all([
    all(`${base}/events`, {signal}),
    optional(all(`${base}/effects`, {signal}), []),
    optional(all(`${base}/timers`, {signal}), []),
    optional(api(`/v1/workflow-types/${encodeURIComponent(type)}/versions/${instance.definition_version}`, {signal})),
    loadChildren(base, childView, signal),
  ]);
  // The list leaves attempts out; each effect's own read has them. Four at a time.
  const detailed = effects.slice(0, MAX_EFFECT_DETAILS);
  for (let i = 0; i < detailed.length; i += 4) {
    const batch = await Promise.all(detailed.slice(i, i + 4).map((e) =>
      optional(api(`/v1/effects/${encodeURIComponent(e.id)}`, {signal}), e).then((d) => d || e)));
    detailed.splice(i, batch.length, ...batch);
  }
  return {instance, inputs, events, effects: detailed.concat(effects.slice(MAX_EFFECT_DETAILS)), timers, def: def?.definition, children};
}

// diagnose answers "where is it stuck and why" in a few sentences, most urgent first.
function diagnose({instance: w, inputs, effects, timers, def}) {
  const out = [];
  const dead = effects.filter((e) => e.status === 'dead');
  for (const e of dead) {
    out.push(notice('error', h('strong', {}, `Effect ${e.name} is dead`), ` after ${e.attempt_count} attempts`,
      e.last_error ? [': ', h('code', {}, e.last_error)] : '',
      e.on_dead_outcome ? `. Its on_dead input ran (${e.on_dead_outcome}); a Retry delivers it again but does not run on_dead twice.` : '. Fix the receiver, then press Retry below.'));
  }
  for (const t of timers.filter((x) => x.status === 'dead')) {
    out.push(notice('error', h('strong', {}, `Timer ${t.key} is dead`), ` after ${t.attempt_count} attempts`,
      t.last_error ? [': ', h('code', {}, t.last_error)] : '', '. Press Retry below to fire it again.'));
  }
  for (const e of effects.filter((x) => x.status === 'pending')) {
    if (e.attempt_count > 0) {
      out.push(notice('warn', `Effect ${e.name} is being retried: ${e.attempt_count} attempt(s) failed`,
        e.last_error ? [' (', h('code', {}, e.last_error), ')'] : '', `; next attempt ${ago(e.next_attempt_at)}.`));
    } else if (e.send) {
      out.push(notice('info', `Effect ${e.name} waits to send its input to ${e.send.workflow_type} / ${e.send.id} (due ${ago(e.next_attempt_at)}).`));
    } else {
      out.push(notice('info', `Effect ${e.name} waits for delivery (due ${ago(e.next_attempt_at)}). If it stays here, check that the type has a webhook.`));
    }
  }
  const cancelled = effects.filter((e) => e.status === 'cancelled');
  if (cancelled.length) {
    out.push(notice('info', `${cancelled.length} effect(s) cancelled (`, cancelled.slice(0, 5).map((e, i) => [i ? ', ' : '', h('code', {}, e.name)]),
      cancelled.length > 5 ? ', …' : '', w.status === 'terminated'
        ? '): the instance was terminated before they were delivered.'
        : '): the instance left the state they belonged to before they were delivered. An answer that still arrives is recorded, never routed.'));
  }
  if (w.status === 'completed') {
    out.unshift(notice('ok', `Completed in state ${w.state.name} ${ago(w.completed_at)}. Later inputs are answered already_completed.`));
  } else if (w.status === 'failed') {
    out.unshift(notice('error', h('strong', {}, `Failed in state ${w.state.name}`), ` ${ago(w.completed_at)}: the definition declares it a failed ending. Later inputs are answered already_completed.`));
  } else if (w.status === 'terminated') {
    const why = inputs.findLast((i) => i.type === '$terminate' && i.outcome === 'accepted');
    out.unshift(notice('warn', h('strong', {}, `Terminated in state ${w.state.name}`), ` ${ago(w.completed_at)}`,
      why?.data?.reason ? [': ', h('q', {'data-testid': 'terminate-reason-shown'}, why.data.reason)] : '', '. Its pending timers and effects were cancelled.'));
  } else {
    const st = def?.states?.[w.state.name];
    const accepts = Object.keys(st?.on || {});
    out.unshift(notice('info', h('strong', {}, `Waiting in state ${w.state.name}`), ` since ${ago(w.updated_at)}. `,
      accepts.length ? ['It moves on when it receives ', accepts.map((a, i) => [i ? ', ' : '', h('code', {}, a)]), '.'] : 'This state accepts no inputs.'));
  }
  for (const t of timers.filter((x) => x.status === 'pending')) {
    out.push(notice('info', `Timer ${t.key} will send `, h('code', {}, t.input?.type || '?'), ` ${ago(t.fire_at)}.`));
  }
  const last = inputs[inputs.length - 1];
  if (last && last.outcome === 'rejected') {
    out.push(notice('warn', 'The latest input, ', h('code', {}, last.type), `, was rejected ${ago(last.created_at)}: ${last.reason || 'no reason given'}.`));
  }
  return out;
}

// timeline joins each input with the event it caused: an accepted input's record
// carries the instance version it produced, which is its event's seq.
function timeline({inputs, events, effects, timers}) {
  const bySeq = new Map(events.map((e) => [e.seq, e]));
  const effectById = new Map(effects.map((e) => [e.id, e]));
  const timerById = new Map(timers.map((t) => [t.id, t]));
  const rows = [];
  const used = new Set();
  for (const inp of inputs) {
    const ev = inp.outcome === 'accepted' ? bySeq.get(inp.version) : undefined;
    if (ev) used.add(ev.seq);
    rows.push({at: inp.created_at, seq: ev ? ev.seq : inp.version + 0.5, input: inp, event: ev});
  }
  for (const ev of events) if (!used.has(ev.seq)) rows.push({at: ev.recorded_at, seq: ev.seq, event: ev});
  rows.sort((a, b) => b.seq - a.seq || Date.parse(b.at) - Date.parse(a.at));

  const source = (inp) => {
    const ref = inp.idempotency_key;
    if (inp.source === 'effect' && effectById.has(ref)) return `from effect ${effectById.get(ref).name}`;
    if (inp.source === 'timer' && timerById.has(ref)) return `from timer ${timerById.get(ref).key}`;
    return inp.source ? `from ${inp.source}` : '';
  };
  return rows.map(({input: inp, event: ev}) => h('tr', {class: inp && inp.outcome !== 'accepted' ? 'row-rejected' : '', 'data-testid': 'timeline-row',
    'data-key': inp ? 'input-' + inp.id : 'event-' + ev.seq},
    h('td', {class: 'num'}, ev ? ev.seq : ''),
    h('td', {}, time(ev ? ev.recorded_at : inp.created_at)),
    h('td', {}, inp ? [h('code', {class: 'input-type'}, inp.type), ' ', h('span', {class: 'muted small'}, source(inp)), h('div', {}, jsonBlock(inp.data))] : h('span', {class: 'muted'}, '—')),
    h('td', {}, inp ? badge(inp.outcome, 'outcome') : badge('accepted', 'outcome')),
    h('td', {}, ev
      ? h('span', {class: 'transition', 'data-testid': 'transition'}, h('span', {class: 'from'}, ev.from), ' → ', h('span', {class: 'to'}, ev.to))
      : h('span', {class: 'reason'}, inp.reason || '')),
    h('td', {}, ev ? h('strong', {}, ev.type) : ''),
    h('td', {}, ev ? jsonBlock(ev.data) : '')));
}

function attemptsTable(e) {
  const attempts = e.attempts || [];
  if (!attempts.length) return h('p', {class: 'muted small'}, e.attempt_count ? `${e.attempt_count} attempt(s); details unavailable.` : 'No attempt yet.');
  return table(['#', 'started', 'duration', 'status', 'error', 'response', 'routed input'], attempts.map((a) => h('tr', {},
    h('td', {class: 'num'}, a.number),
    h('td', {}, time(a.started_at)),
    h('td', {class: 'num'}, ms(a.duration_ms)),
    h('td', {}, a.status_code ? badge(String(a.status_code), a.status_code < 300 ? 'http-ok' : 'http-bad') : h('span', {class: 'muted'}, '—')),
    h('td', {class: 'err'}, a.error || ''),
    h('td', {}, textBlock(a.response, 60)),
    h('td', {}, a.routed_outcome ? badge(a.routed_outcome, 'outcome') : ''))), {cls: 'attempts'});
}

export async function render(ctx) {
  const {type, id} = ctx.params;
  const head = h('div', {});
  const diag = h('div', {'data-testid': 'diagnosis'});
  const stateBox = h('div', {});
  const diagramBox = h('div', {});
  const tl = h('div', {});
  const fx = h('div', {});
  const tm = h('div', {});
  const kids = h('div', {});
  const childView = {status: '', pages: 1}; // the reader's filter and "Load more"
  const stamp = h('span', {class: 'muted small', 'data-testid': 'updated'});
  const auto = h('input', {type: 'checkbox', checked: true});
  const actions = h('span', {class: 'actions'});
  let drawnDiagram;
  let busy = false;
  let again = false; // a change arrived while reading: read once more
  let waiting = true; // an effect or timer is pending: it changes without events
  let ended = false;
  // The event stream is followed while the instance runs; once it has ended and
  // nothing of it is pending, nothing can change any more and the page stops asking.
  const live = new AbortController();
  ctx.signal.addEventListener('abort', () => live.abort());

  async function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      do {
        again = false;
        const data = await load(type, id, ctx.signal, childView);
        // Children that run end without an event of this instance when it takes no
        // answer from them (or has ended): they count as pending work.
        waiting = data.effects.some((e) => e.status === 'pending') || data.timers.some((t) => t.status === 'pending') ||
          !!data.children?.items.some((c) => c.status === 'running');
        ended = !!data.instance && data.instance.status !== 'running';
        draw(data);
        if (ended && !waiting) live.abort();
      } while (again && !ctx.signal.aborted);
    } finally {
      busy = false;
    }
  }
  const redraw = () => refresh().catch(ctx.fail);

  function draw(data) {
    if (ctx.signal.aborted) return;
    const w = data.instance;
    stamp.textContent = `updated ${new Date().toLocaleTimeString()}${ended && !waiting ? ' · ended: no more updates' : ''}`;
    if (!w) {
      patch(head, h('h1', {}, h('span', {class: 'id'}, id), ' ', h('span', {class: 'muted'}, 'does not exist')));
      patch(diag, data.typeKnown === false
        ? notice('warn', `There is no workflow type ${type}. `, h('a', {href: '#/types'}, 'See the types that exist'), '.')
        : data.inputs.length
          ? notice('warn', `No instance ${type}/${id}: every input it received was rejected, so none created it. They are listed below.`)
          : notice('warn', `No instance ${type}/${id}, and no input was ever sent to it.`));
      patch(tl, table(['seq', 'time', 'input', 'outcome', 'transition / reason', 'event', 'event data'], timeline(data), {testid: 'timeline'}));
      patch(actions);
      return;
    }
    patch(head, h('h1', {}, h('span', {'data-testid': 'instance-id', class: 'id'}, w.id), ' ',
      h('span', {'data-testid': 'instance-status'}, badge(w.status)), ' ', h('span', {'data-testid': 'current-state'}, badge(w.state.name, 'state'))),
    w.parent ? h('p', {class: 'parent'}, 'Child of ', instanceLink(w.parent, {'data-testid': 'parent-link'}), '.') : null);
    patch(diag, diagnose(data));
    patch(actions, w.status === 'running'
      ? [sendButton(w, data.def, {signal: ctx.signal, done: redraw}), ' ', terminateButton(w, {signal: ctx.signal, done: redraw})]
      : null);
    patch(stateBox, section('State',
      h('dl', {class: 'kv'},
        h('dt', {}, 'state'), h('dd', {}, h('strong', {}, w.state.name)),
        h('dt', {}, 'status'), h('dd', {}, w.status),
        h('dt', {}, 'version'), h('dd', {}, `${w.version} (events)`),
        h('dt', {}, 'definition'), h('dd', {}, h('a', {href: link(['types', w.type], {version: w.definition_version})}, `${w.type} v${w.definition_version}`)),
        h('dt', {}, 'created'), h('dd', {}, time(w.created_at)),
        h('dt', {}, 'updated'), h('dd', {}, time(w.updated_at)),
        w.completed_at ? [h('dt', {}, 'ended'), h('dd', {}, time(w.completed_at))] : null),
      h('h3', {}, 'Data'),
      h('pre', {class: 'data', 'data-testid': 'state-data'}, JSON.stringify(w.state.data, null, 2))));
    // The diagram is drawn again only when the path changes: Mermaid renders a new
    // picture, which would lose the reader's place.
    const visited = [data.def?.initial_state, ...data.events.map((e) => e.to)].filter(Boolean);
    const drawKey = JSON.stringify([w.definition_version, w.state.name, [...new Set(visited)]]);
    if (drawnDiagram !== drawKey) {
      drawnDiagram = drawKey;
      replace(diagramBox, section('Diagram', diagram(w.type, {version: w.definition_version, current: w.state.name, visited})));
    }
    patch(tl, table(['seq', 'time', 'input', 'outcome', 'transition / reason', 'event', 'event data'], timeline(data), {
      testid: 'timeline', empty: 'No history.',
    }));

    const effectRows = data.effects.flatMap((e) => [
      h('tr', {'data-testid': 'effect-row', 'data-effect': e.name, 'data-key': 'effect-' + e.id},
        h('td', {}, h('strong', {}, e.name), e.key ? [' ', h('code', {class: 'small'}, `[${e.key}]`)] : null,
          e.send ? h('div', {class: 'small'}, 'sends to ', instanceLink(e.send, {'data-testid': 'send-target'})) : null,
          h('div', {class: 'muted small'}, h('code', {class: 'id'}, e.id)),
          e.scope === 'state' ? h('div', {class: 'muted small', title: 'cancelled when the instance leaves the state it was sent in'}, 'scope: state') : null),
        h('td', {class: 'status-cell', 'data-testid': `effect-status-${e.id}`}, badge(e.status),
          e.on_dead_outcome ? h('div', {class: 'small', 'data-testid': `on-dead-${e.id}`}, 'on_dead: ', badge(e.on_dead_outcome, 'outcome')) : null),
        h('td', {class: 'num', title: 'attempts in all (the budget restarts on Retry)'}, e.attempts?.length ?? e.attempt_count),
        h('td', {}, e.status === 'delivered' ? time(e.delivered_at) : e.status === 'pending' ? ['next ', time(e.next_attempt_at)] : time(e.updated_at)),
        h('td', {class: 'err'}, e.last_error || ''),
        h('td', {}, jsonBlock(e.payload)),
        h('td', {class: 'row-actions'}, e.status === 'dead'
          ? [retryButton('effect', e, {signal: ctx.signal, done: redraw}), ' ', discardButton('effect', e, {signal: ctx.signal, done: redraw})]
          : '')),
      h('tr', {class: 'sub', 'data-key': 'attempts-' + e.id}, h('td', {colspan: 7},
        h('details', {open: e.status !== 'delivered' && e.status !== 'cancelled'}, h('summary', {}, `${e.attempts?.length ?? e.attempt_count} attempt(s)`), attemptsTable(e)))),
    ]);
    patch(fx, section(`Effects (${data.effects.length})`, table(['effect', 'status', 'attempts', 'when', 'last error', 'payload', ''], effectRows, {
      testid: 'effects', empty: 'This instance emitted no effects.',
    })));

    patch(tm, section(`Timers (${data.timers.length})`, table(['key', 'fires', 'input', 'status', 'attempts', 'outcome / error', ''], data.timers.map((t) => h('tr', {'data-testid': 'timer-row', 'data-key': 'timer-' + t.id},
      h('td', {}, h('strong', {}, t.key)),
      h('td', {}, time(t.fire_at)),
      h('td', {}, h('code', {}, t.input?.type || ''), ' ', jsonBlock(t.input?.data)),
      h('td', {class: 'status-cell'}, badge(t.status)),
      h('td', {class: 'num'}, t.attempt_count),
      h('td', {}, t.outcome ? badge(t.outcome, 'outcome') : '', t.last_error ? h('span', {class: 'err'}, ' ', t.last_error) : ''),
      h('td', {class: 'row-actions'}, t.status === 'dead'
        ? [retryButton('timer', t, {signal: ctx.signal, done: redraw}), ' ', discardButton('timer', t, {signal: ctx.signal, done: redraw})]
        : ''))), {testid: 'timers', empty: 'No timers.'})));

    patch(kids, children(data.children));
  }

  // children is the Children section: shown once the instance has children (or the
  // reader filters them), each row a link to the child's page.
  function children({items, more}) {
    if (!items.length && !childView.status) return null;
    const rows = items.map((c) => h('tr', {'data-testid': 'child-row', 'data-key': `child-${c.type}/${c.id}`},
      h('td', {}, instanceLink(c, {'data-testid': 'child-link'})),
      h('td', {class: 'status-cell'}, badge(c.status)),
      h('td', {}, badge(c.state.name, 'state')),
      h('td', {}, time(c.updated_at))));
    const filter = h('label', {}, 'Status ', h('select', {'aria-label': 'child status', 'data-testid': 'children-status', onchange: (e) => {
      childView.status = e.currentTarget.value;
      childView.pages = 1;
      redraw();
    }}, h('option', {value: ''}, 'every status'), CHILD_STATUSES.map((s) => h('option', {value: s, selected: s === childView.status}, s))));
    return section(`Children (${items.length}${more ? '+' : ''})`,
      h('div', {class: 'toolbar'}, filter),
      table(['child', 'status', 'state', 'updated'], rows, {testid: 'children', empty: `No ${childView.status} children.`}),
      h('div', {class: 'pager'}, more
        ? h('button', {type: 'button', 'data-testid': 'children-more', onclick: () => {
          childView.pages++;
          redraw();
        }}, 'Load more')
        : h('span', {class: 'muted'}, `${items.length} in all`)));
  }

  replace(ctx.main,
    h('p', {class: 'crumbs'}, h('a', {href: '#/workflows'}, 'Instances'), ' / ',
      h('a', {href: link(['workflows'], {type})}, type), ' / ', h('span', {class: 'id'}, id)),
    head,
    h('div', {class: 'toolbar'},
      h('button', {type: 'button', onclick: redraw}, 'Refresh'), ' ',
      h('label', {}, auto, ' auto-refresh'), ' ', stamp, ' ', actions),
    diag,
    h('div', {class: 'cols'}, stateBox, diagramBox),
    section('Timeline', h('p', {class: 'muted small'}, 'Newest first. Each input with its outcome and the event it caused; rejected inputs show why.'), tl),
    kids,
    fx,
    tm);
  await refresh();
  if (!(ended && !waiting)) {
    follow({signal: live.signal, workflowType: type, onEvents: (items) => {
      if (auto.checked && items.some((e) => e.workflow_id === id)) redraw();
    }});
  }
  ctx.every(REFRESH_MS, () => auto.checked && waiting && !live.signal.aborted && redraw());
}
