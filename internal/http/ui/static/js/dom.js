// DOM helpers. Everything the console shows is built with these, never with innerHTML,
// so data from the API (ids, state data, webhook responses) can never become markup.

// h builds an element: h('a', {href: '#/', class: 'x', onclick: fn}, 'text', child, …).
// Attributes: class, text, dataset (object), on<event> (function), boolean true/false
// for presence, anything else as an attribute. Children: nodes, strings, numbers,
// arrays (flattened); null, undefined and false are skipped.
//
// Handlers given as on<event> are kept on the element (listen), so patch can hand a
// redrawn element's handlers to the element it keeps. A handler must therefore find
// the nodes it works on from its event (event.currentTarget.closest(…)), never hold
// on to nodes built beside it: patch may throw those away.
export function h(tag, attrs = {}, ...children) {
  const el = tag === 'svg' || attrs?.xmlns === SVG ? document.createElementNS(SVG, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') listen(el, k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';

// listen sets el's handler for type: one listener per type calls whichever handler
// the element holds now.
function listen(el, type, fn) {
  el._on ??= {};
  if (!(type in el._on)) el.addEventListener(type, (e) => el._on[type]?.(e));
  el._on[type] = fn;
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

// patch makes el's children look like children, changing the page as little as it
// can: an element of the same tag (and the same data-key, where rows carry one) is
// kept and updated in place, so what the reader did to it survives a redraw: an
// opened <details> stays open, focus, text selection and scroll positions stay, a
// typed value stays, and a notice whose text did not change is not announced again.
// Elements marked data-patch="keep" (a rendered diagram) are left as they are once
// drawn with the same data-key.
export function patch(el, ...children) {
  const next = document.createElement('div');
  append(next, children);
  morphChildren(el, next);
  return el;
}

const keyOf = (n) => (n.nodeType === 1 ? n.getAttribute('data-key') : null);
const sameKind = (a, b) => a.nodeType === b.nodeType && a.nodeName === b.nodeName && keyOf(a) === keyOf(b);

function morphChildren(from, to) {
  const olds = [...from.childNodes];
  const keyed = new Map();
  for (const n of olds) if (keyOf(n) !== null) keyed.set(keyOf(n), n);
  const unkeyed = olds.filter((n) => keyOf(n) === null);
  let u = 0;
  const result = [];
  for (const n of [...to.childNodes]) {
    let old = null;
    if (keyOf(n) !== null) {
      old = keyed.get(keyOf(n)) || null;
      if (old && !sameKind(old, n)) old = null;
      if (old) keyed.delete(keyOf(n));
    } else if (u < unkeyed.length) {
      if (sameKind(unkeyed[u], n)) old = unkeyed[u];
      u++;
    }
    result.push(old ? morph(old, n) : n);
  }
  const keep = new Set(result);
  for (const n of olds) if (!keep.has(n)) n.remove();
  result.forEach((n, i) => {
    if (from.childNodes[i] !== n) from.insertBefore(n, from.childNodes[i] || null);
  });
}

function morph(old, n) {
  if (old.nodeType !== 1) {
    if (old.nodeValue !== n.nodeValue) old.nodeValue = n.nodeValue;
    return old;
  }
  for (const a of [...old.attributes]) {
    if (!n.hasAttribute(a.name) && !userOwned(old, a.name)) old.removeAttribute(a.name);
  }
  for (const a of [...n.attributes]) {
    if (userOwned(old, a.name)) continue;
    if (old.getAttribute(a.name) !== a.value) old.setAttribute(a.name, a.value);
  }
  if (n._on) {
    for (const [type, fn] of Object.entries(n._on)) listen(old, type, fn);
  }
  if (old._on) {
    for (const type of Object.keys(old._on)) if (!n._on || !(type in n._on)) old._on[type] = undefined;
  }
  if (old.getAttribute('data-patch') === 'keep') return old;
  // A field the reader is typing in keeps its text.
  if ((old.nodeName === 'TEXTAREA' || old.nodeName === 'INPUT' || old.nodeName === 'SELECT') && old === document.activeElement) return old;
  morphChildren(old, n);
  return old;
}

// userOwned: attributes the reader changes by using the page (opening a <details>,
// opening a dialog) belong to the reader once the element is drawn.
function userOwned(el, name) {
  return name === 'open' && (el.nodeName === 'DETAILS' || el.nodeName === 'DIALOG');
}

// table builds a table from column headers and rows of cells; an empty list shows
// the empty message in one cell instead.
// On a narrow screen each row becomes a card; each cell is labelled with its column
// header (data-label) there.
export function table(headers, rows, {empty = 'Nothing here.', cls = '', testid} = {}) {
  const t = h('table', {class: 'grid ' + cls, 'data-testid': testid},
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', {scope: 'col'}, x)))),
    h('tbody', {}, rows.length
      ? rows
      : h('tr', {class: 'empty'}, h('td', {colspan: headers.length}, empty))));
  label(t, headers);
  return t;
}

// label names each body cell after its column, for the narrow-screen layout.
export function label(tableEl, headers) {
  for (const tr of tableEl.tBodies[0]?.rows || []) {
    if (tr.classList.contains('sub') || tr.classList.contains('empty')) continue;
    [...tr.cells].forEach((td, i) => headers[i] && td.setAttribute('data-label', typeof headers[i] === 'string' ? headers[i] : ''));
  }
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

// notice is a message box: kind is info, warn, error or ok. Only an error is
// announced (role alert); patch keeps an unchanged notice, so it is announced once,
// not on every redraw.
export function notice(kind, ...children) {
  return h('div', {class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : null}, children);
}

// showModal opens dialog as a modal over the page; closing it removes it and gives
// focus back to opener (the button that opened it).
export function showModal(dialog, opener) {
  dialog.addEventListener('close', () => {
    dialog.remove();
    opener?.focus();
  });
  document.body.appendChild(dialog);
  dialog.showModal();
}
