// Formatting of times, durations and numbers for people.

import {h} from './dom.js';

// ago is "12s ago", "3m ago", "in 5m" relative to now.
export function ago(iso, now = Date.now()) {
  if (!iso) return '';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  const d = (now - t) / 1000;
  const s = duration(Math.abs(d));
  return d >= 0 ? `${s} ago` : `in ${s}`;
}

// duration prints seconds as 850ms, 12s, 3m 4s, 2h 5m, 3d 4h.
export function duration(sec) {
  if (sec === null || sec === undefined || Number.isNaN(sec)) return '—';
  if (sec < 1) return `${Math.round(sec * 1000)}ms`;
  if (sec < 60) return `${Math.round(sec)}s`;
  if (sec < 3600) return `${Math.floor(sec / 60)}m ${Math.round(sec % 60)}s`;
  if (sec < 86400) return `${Math.floor(sec / 3600)}h ${Math.floor((sec % 3600) / 60)}m`;
  return `${Math.floor(sec / 86400)}d ${Math.floor((sec % 86400) / 3600)}h`;
}

// time shows a timestamp as local time with the relative age beside it and the exact
// RFC 3339 value as a tooltip.
export function time(iso) {
  if (!iso) return h('span', {class: 'muted'}, '—');
  const d = new Date(iso);
  const local = d.toLocaleString(undefined, {
    year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
  return h('time', {datetime: iso, title: iso}, local, ' ', h('span', {class: 'muted'}, `(${ago(iso)})`));
}

// rate prints a per-second value.
export function rate(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

// ms prints a millisecond duration.
export function ms(v) {
  if (v === null || v === undefined) return '—';
  return v >= 1000 ? `${(v / 1000).toFixed(2)}s` : `${v.toFixed(1)}ms`;
}
