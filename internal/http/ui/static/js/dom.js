// DOM helpers. Everything the console shows is built with these, never with innerHTML,
// so data from the API (ids, state data, webhook responses) can never become markup.

// h builds an element: h('a', {href: '#/', class: 'x', onclick: fn}, 'text', child, …).
// Attributes: class, text, dataset (object), on<event> (function), boolean true/false
// for presence, anything else as an attribute. Children: nodes, strings, numbers,
// arrays (flattened); null, undefined and false are skipped.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// replace empties el and fills it with children.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// table builds a table from column headers and rows of cells; an empty list shows
// the empty message in one cell instead.
export function table(headers, rows, {empty = 'Nothing here.', cls = '', testid} = {}) {
  return h('table', {class: 'grid ' + cls, 'data-testid': testid},
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', {}, x)))),
    h('tbody', {}, rows.length
      ? rows
      : h('tr', {class: 'empty'}, h('td', {colspan: headers.length}, empty))));
}

// badge is a small coloured label; its class follows the value (status-dead, …).
export function badge(value, kind = 'status') {
  return h('span', {class: `badge ${kind}-${String(value).replace(/[^a-z0-9_-]/gi, '')}`}, value);
}

// jsonBlock shows a JSON value: short values inline, longer ones folded in a
// <details> whose summary is the start of the text.
export function jsonBlock(value, {open = false, limit = 80} = {}) {
  if (value === undefined) return h('span', {class: 'muted'}, '—');
  const compact = JSON.stringify(value);
  if (compact === undefined) return h('span', {class: 'muted'}, '—');
  if (compact.length <= limit && !open) return h('code', {class: 'json inline'}, compact);
  return h('details', {class: 'json', open},
    h('summary', {}, h('code', {}, compact.length > limit ? compact.slice(0, limit) + '…' : compact)),
    h('pre', {}, JSON.stringify(value, null, 2)));
}

// textBlock shows a possibly long text (a webhook response) folded after limit.
export function textBlock(text, limit = 80) {
  if (!text) return h('span', {class: 'muted'}, '—');
  if (text.length <= limit) return h('code', {class: 'inline'}, text);
  return h('details', {class: 'json'}, h('summary', {}, h('code', {}, text.slice(0, limit) + '…')), h('pre', {}, text));
}

// section is a titled block of a page.
export function section(title, ...children) {
  return h('section', {class: 'card'}, h('h2', {}, title), children);
}

// notice is a message box: kind is info, warn, error or ok.
export function notice(kind, ...children) {
  return h('div', {class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status'}, children);
}
