// Overview: live throughput and backlog, read again as events are committed (the event
// stream, at most once a second) and every 15 s for what changes without an event
// (deliveries, backlog, dead letters).
//
// Rates come from the Prometheus counters at /metrics (the difference between two
// polls over the time between them), so they are this server process's rates; with
// several processes behind a balancer, sum them in Prometheus instead. Backlog and
// dead counts come from gauges the workers export, which read the shared database;
// when /metrics lacks them (or is refused), the console counts through the API.

import {ApiError, api, optional} from '../api.js';
import {h, notice, patch, replace, section, table} from '../dom.js';
import {ago, duration, rate} from '../format.js';
import {follow} from '../live.js';
import {link} from '../nav.js';

const POLL_MS = 15000;
const EVENTS_GAP_MS = 1000;
const HISTORY = 60;

// parseMetrics reads the Prometheus text format into [{name, labels, value}].
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      for (const l of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    }
    out.push({name: m[1], labels, value: Number(m[4])});
  }
  return out;
}

// sum adds the samples of a metric whose labels include match; null when absent.
function sum(samples, name, match = {}) {
  let total = null;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(match).some(([k, v]) => s.labels[k] !== v)) continue;
    total = (total ?? 0) + s.value;
  }
  return total;
}

// countList lists path through the API, up to limit rows: 500 when the list is
// counted ("500+" beyond), fewer when only its first rows are shown.
async function countList(path, signal, limit = 500) {
  const page = await api(path + (path.includes('?') ? '&' : '?') + 'limit=' + limit, {signal});
  return {n: page.items.length, more: !!page.next_cursor, items: page.items};
}

function sparkline(values) {
  const w = 120;
  const hgt = 28;
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${hgt}`);
  svg.setAttribute('class', 'spark');
  const vals = values.filter((v) => v !== null);
  if (vals.length < 2) return svg;
  const max = Math.max(...vals, 0.001);
  const step = w / (HISTORY - 1);
  const start = HISTORY - values.length;
  const pts = values.map((v, i) => `${((start + i) * step).toFixed(1)},${(hgt - 2 - ((v ?? 0) / max) * (hgt - 4)).toFixed(1)}`);
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('points', pts.join(' '));
  svg.appendChild(line);
  return svg;
}

// tile is one figure; with href the whole tile is a link to the list behind it.
function tile(label, value, {hint, testid, spark, tone, href} = {}) {
  return h(href ? 'a' : 'div', {class: `tile ${tone ? 'tone-' + tone : ''}`, 'data-testid': testid, href},
    h('div', {class: 'tile-label'}, label),
    h('div', {class: 'tile-value'}, value),
    spark ? sparkline(spark) : null,
    hint ? h('div', {class: 'tile-hint muted'}, hint) : null);
}

// statusCounts reads how many instances have each status (capped by the server);
// null when the server has no counts.
async function statusCounts(signal) {
  const c = await optional(api('/v1/workflow-counts', {signal}));
  if (!c) return null;
  const cap = c.capped ? '+' : '';
  return Object.fromEntries(Object.entries(c.counts || {}).map(([k, v]) => [k, `${v}${c.capped && v >= c.cap ? cap : ''}`]));
}

export async function render(ctx) {
  const tiles = h('div', {class: 'tiles', 'data-testid': 'overview-tiles'});
  const statuses = h('div', {class: 'tiles', 'data-testid': 'status-tiles'});
  const attention = h('div', {});
  const source = h('p', {class: 'muted small'});
  replace(ctx.main,
    h('h1', {}, 'Overview'),
    tiles,
    statuses,
    source,
    section('Needs attention', attention));

  let prev; // {t, inputs, delivered}
  const history = {inputs: [], deliveries: []};
  const push = (arr, v) => {
    arr.push(v);
    if (arr.length > HISTORY) arr.shift();
  };

  async function poll() {
    const now = performance.now();
    let samples = null;
    let metricsNote = '';
    try {
      samples = parseMetrics(await api('/metrics', {text: true, signal: ctx.signal}));
    } catch (err) {
      if (err.name === 'AbortError') return;
      if (err instanceof ApiError && err.status === 401) throw err;
      metricsNote = ` /metrics unavailable (${err.message}).`;
    }
    const inputs = samples && sum(samples, 'ironflow_inputs_total');
    const delivered = samples && sum(samples, 'ironflow_webhook_deliveries_total', {result: 'delivered'});
    let inRate = null;
    let delRate = null;
    if (prev) {
      const dt = (now - prev.t) / 1000;
      if (inputs !== null && prev.inputs !== null) inRate = Math.max(0, inputs - prev.inputs) / dt;
      if (delivered !== null && prev.delivered !== null) delRate = Math.max(0, delivered - prev.delivered) / dt;
      push(history.inputs, inRate);
      push(history.deliveries, delRate);
    }
    prev = {t: now, inputs: inputs ?? null, delivered: delivered ?? null};

    // Backlog: the workers' gauges, else counted through the API.
    let pending = samples && sum(samples, 'ironflow_effects_pending');
    let oldest = samples && sum(samples, 'ironflow_effects_oldest_pending_age_seconds');
    let deadEffects = samples && sum(samples, 'ironflow_effects_dead');
    let pendingTimers = samples && sum(samples, 'ironflow_timers_pending');
    let deadTimers = samples && sum(samples, 'ironflow_timers_dead');
    const fmtCount = (c) => (c.more ? `${c.n}+` : String(c.n));
    // With the gauges, the dead lists are fetched only for the ten rows shown below.
    const shown = (gauge) => (gauge === null ? 500 : 10);
    const deadList = await countList('/v1/effects?status=dead', ctx.signal, shown(deadEffects));
    if (deadEffects === null) deadEffects = fmtCount(deadList);
    if (pending === null) {
      const c = await countList('/v1/effects?status=pending', ctx.signal);
      pending = fmtCount(c);
      if (oldest === null && c.items.length) oldest = (Date.now() - Date.parse(c.items[0].created_at)) / 1000;
    }
    const deadTimerList = await countList('/v1/timers?status=dead', ctx.signal, shown(deadTimers));
    if (deadTimers === null) deadTimers = fmtCount(deadTimerList);
    if (pendingTimers === null) pendingTimers = fmtCount(await countList('/v1/timers?status=pending', ctx.signal));

    let ready = 'unknown';
    try {
      await api('/readyz', {signal: ctx.signal});
      ready = 'ready';
    } catch (err) {
      if (err.name === 'AbortError') return;
      ready = 'not ready';
    }
    if (ctx.signal.aborted) return;

    const counts = await statusCounts(ctx.signal);
    if (ctx.signal.aborted) return;

    const measuring = prev && history.inputs.length === 0 ? 'measuring…' : undefined;
    patch(tiles,
      tile('Inputs / s', rate(inRate), {testid: 'tile-inputs', spark: history.inputs, hint: measuring, href: '#/workflows'}),
      tile('Deliveries / s', rate(delRate), {testid: 'tile-deliveries', spark: history.deliveries, hint: measuring, href: '#/effects?status=delivered'}),
      tile('Effect backlog', String(pending ?? '—'), {testid: 'tile-backlog', href: '#/effects?status=pending',
        hint: oldest ? `oldest waiting ${duration(oldest)}` : 'nothing waiting'}),
      tile('Dead effects', String(deadEffects ?? '—'), {testid: 'tile-dead', href: '#/dead', tone: Number(String(deadEffects).replace('+', '')) > 0 ? 'bad' : 'good'}),
      tile('Timers pending', String(pendingTimers ?? '—'), {testid: 'tile-timers', href: '#/timers?status=pending'}),
      tile('Dead timers', String(deadTimers ?? '—'), {testid: 'tile-dead-timers', href: '#/dead', tone: Number(String(deadTimers).replace('+', '')) > 0 ? 'bad' : 'good'}),
      tile('Database', ready, {testid: 'tile-ready', tone: ready === 'ready' ? 'good' : 'bad'}));
    patch(statuses, counts
      ? ['running', 'completed', 'failed', 'terminated'].map((st) => tile(`Instances ${st}`, counts[st] ?? '0', {
        testid: `tile-status-${st}`, href: link(['workflows'], {status: st}),
        tone: st === 'failed' && counts[st] !== '0' ? 'bad' : undefined}))
      : null);
    source.textContent = `Updated as events arrive and every ${POLL_MS / 1000} s. Rates are this server process's, from /metrics.${metricsNote}`;

    const rows = [
      ...deadList.items.slice(0, 10).map((e) => h('tr', {'data-key': e.id},
        h('td', {}, 'effect'),
        h('td', {}, h('a', {href: link(['workflows', e.workflow_type, e.workflow_id])}, `${e.workflow_type} / ${e.workflow_id}`)),
        h('td', {}, e.name),
        h('td', {class: 'err'}, e.last_error || ''),
        h('td', {}, ago(e.updated_at)))),
      ...deadTimerList.items.slice(0, 10).map((t) => h('tr', {'data-key': t.id},
        h('td', {}, 'timer'),
        h('td', {}, h('a', {href: link(['workflows', t.workflow_type, t.workflow_id])}, `${t.workflow_type} / ${t.workflow_id}`)),
        h('td', {}, t.key),
        h('td', {class: 'err'}, t.last_error || ''),
        h('td', {}, ago(t.updated_at)))),
    ];
    patch(attention,
      rows.length
        ? [table(['kind', 'instance', 'name', 'last error', 'dead since'], rows),
          h('p', {}, h('a', {href: '#/dead'}, 'Retry them on the dead letters page →'), ' · ', h('a', {href: '#/attention'}, 'Every instance that needs attention →'))]
        : notice('ok', 'No dead effects or timers.'));
  }

  let running = null;
  const tick = async () => {
    if (running) return running; // one read at a time; the next event reads again
    running = (async () => {
      try {
        await poll();
      } catch (err) {
        if (err.name !== 'AbortError') ctx.fail(err); // aborted: the page was left
      } finally {
        running = null;
      }
    })();
    return running;
  };
  await poll();
  follow({signal: ctx.signal, minGapMs: EVENTS_GAP_MS, onEvents: () => !document.hidden && tick()});
  ctx.every(POLL_MS, tick);
}
