// The "Send input" action of an instance page: a dialog with a form built from the
// input's JSON Schema (or raw JSON), POST …/inputs, and the decision shown in place.
// One Idempotency-Key per dialog and input type, so pressing Send twice sends once.

import {api, wf} from './api.js';
import {badge, h, notice, replace, showModal} from './dom.js';

// sendButton returns a button that opens the dialog for instance w, whose definition
// is def (the version it runs) and whose state accepts accepts (input names, offered
// first). done() runs after an input was accepted.
export function sendButton(w, def, {signal, done} = {}) {
  return h('button', {type: 'button', 'data-testid': 'send-input',
    title: 'Send an input to this instance, as a client would',
    onclick: (e) => openDialog(e.currentTarget, w, def, {signal, done})}, 'Send input…');
}

// fieldsOf lists the form fields of an object schema: its properties and required
// names, each with a kind (string, number, integer, boolean, enum, json).
export function fieldsOf(schema) {
  if (!schema || typeof schema !== 'object') return [];
  const props = schema.properties && typeof schema.properties === 'object' ? schema.properties : {};
  const required = Array.isArray(schema.required) ? schema.required : [];
  const names = [...new Set([...Object.keys(props), ...required])];
  return names.map((name) => {
    const p = props[name] || {};
    const t = Array.isArray(p.type) ? p.type.find((x) => x !== 'null') : p.type;
    let kind = 'json';
    if (Array.isArray(p.enum) && p.enum.every((v) => typeof v === 'string')) kind = 'enum';
    else if (t === 'string' || t === 'number' || t === 'integer' || t === 'boolean') kind = t;
    return {name, kind, required: required.includes(name), description: p.description || '', options: p.enum || []};
  });
}

function fieldInput(f) {
  const id = 'f-' + f.name.replace(/[^A-Za-z0-9_-]/g, '_');
  const attrs = {id, name: f.name, 'data-kind': f.kind, 'aria-required': f.required ? 'true' : null};
  let input;
  if (f.kind === 'boolean') input = h('input', {...attrs, type: 'checkbox'});
  else if (f.kind === 'enum') input = h('select', attrs, f.required ? null : h('option', {value: ''}, '—'), f.options.map((o) => h('option', {value: o}, o)));
  else if (f.kind === 'number' || f.kind === 'integer') input = h('input', {...attrs, type: 'number', step: f.kind === 'integer' ? '1' : 'any', inputmode: 'decimal'});
  else input = h('input', {...attrs, type: 'text', placeholder: f.kind === 'json' ? 'a JSON value, or text' : ''});
  return h('div', {class: 'field'},
    h('label', {for: id}, h('code', {}, f.name), f.required ? h('span', {class: 'req', title: 'required'}, ' *') : '',
      f.kind !== 'json' && f.kind !== 'enum' ? h('span', {class: 'muted small'}, ` ${f.kind}`) : ''),
    input,
    f.description ? h('div', {class: 'muted small'}, f.description) : null);
}

// readFields turns the form's fields into the input data; an error names the field.
function readFields(box) {
  const data = {};
  for (const el of box.querySelectorAll('[data-kind]')) {
    const kind = el.dataset.kind;
    const name = el.name;
    if (kind === 'boolean') {
      data[name] = el.checked;
      continue;
    }
    const v = el.value.trim();
    if (v === '') {
      if (el.getAttribute('aria-required') === 'true') throw new Error(`${name} is required`);
      continue;
    }
    if (kind === 'number' || kind === 'integer') {
      const n = Number(v);
      if (!Number.isFinite(n) || (kind === 'integer' && !Number.isInteger(n))) throw new Error(`${name} must be ${kind === 'integer' ? 'an integer' : 'a number'}`);
      data[name] = n;
    } else if (kind === 'json') {
      try {
        data[name] = JSON.parse(v);
      } catch {
        data[name] = v; // plain text is a string
      }
    } else {
      data[name] = v;
    }
  }
  return data;
}

function openDialog(opener, w, def, {signal, done}) {
  const accepts = Object.keys(def?.states?.[w.state.name]?.on || {});
  const onAny = Object.keys(def?.on_any || {});
  const declared = Object.keys(def?.inputs || {});
  const names = [...new Set([...accepts, ...onAny, ...declared])];
  const keys = new Map(); // input type → Idempotency-Key of this dialog
  const typeSel = h('select', {name: 'type', 'aria-label': 'input type', 'data-testid': 'send-type'},
    names.map((n) => h('option', {value: n}, accepts.includes(n) || onAny.includes(n) ? n : `${n} (not accepted in ${w.state.name})`)));
  const fields = h('div', {class: 'fields', 'data-testid': 'send-fields'});
  const raw = h('textarea', {name: 'data', rows: 6, 'aria-label': 'input data as JSON', 'data-testid': 'send-json', spellcheck: 'false'});
  const asJSON = h('input', {type: 'checkbox', 'data-testid': 'send-as-json'});
  const result = h('div', {'data-testid': 'send-result', role: 'status'});
  const schemaOf = () => def?.inputs?.[typeSel.value]?.schema;
  const draw = () => {
    const fs = fieldsOf(schemaOf());
    const useRaw = asJSON.checked || fs.length === 0 || fs.some((f) => f.kind === 'json' && !f.required);
    replace(fields, useRaw
      ? h('label', {class: 'block'}, 'Data (JSON object)', raw)
      : fs.map(fieldInput));
    if (useRaw && !raw.value) raw.value = '{}';
    fields.dataset.mode = useRaw ? 'json' : 'form';
  };
  typeSel.addEventListener('change', draw);
  asJSON.addEventListener('change', draw);
  const send = h('button', {type: 'submit', class: 'retry', 'data-testid': 'send-confirm'}, 'Send');
  const dialog = h('dialog', {class: 'confirm wide', 'aria-labelledby': 'send-title', 'data-testid': 'send-dialog'},
    h('form', {
      method: 'dialog',
      onsubmit: async (e) => {
        e.preventDefault();
        let data;
        try {
          data = fields.dataset.mode === 'json' ? JSON.parse(raw.value || '{}') : readFields(fields);
        } catch (err) {
          replace(result, notice('warn', err instanceof SyntaxError ? `Not JSON: ${err.message}` : err.message));
          return;
        }
        if (!keys.has(typeSel.value)) keys.set(typeSel.value, 'console-input-' + crypto.randomUUID());
        send.disabled = true;
        replace(result, h('span', {class: 'muted'}, 'Sending…'));
        try {
          const r = await api(wf(w.type, w.id) + '/inputs', {method: 'POST', body: {type: typeSel.value, data},
            headers: {'Idempotency-Key': keys.get(typeSel.value)}, signal});
          replace(result, notice('ok', badge(r.outcome, 'outcome'), r.workflow ? [' · now in ', h('code', {}, r.workflow.state.name), ` at version ${r.workflow.version}`] : ''));
          keys.delete(typeSel.value); // the next Send is a new input
          send.disabled = false;
          if (done) done(r);
        } catch (err) {
          if (err.name === 'AbortError') return;
          send.disabled = false;
          const p = err.problem;
          if (p?.outcome) keys.delete(typeSel.value); // decided (rejected or already completed): a new input next time
          replace(result, notice(p?.outcome === 'rejected' ? 'warn' : 'error',
            p?.outcome ? [badge(p.outcome, 'outcome'), ' '] : '',
            p?.outcome === 'rejected' ? p.rejection?.reason || 'rejected' : p?.outcome === 'already_completed' ? 'the instance has ended' : err.message,
            Array.isArray(p?.errors) ? h('ul', {}, p.errors.map((x) => h('li', {}, h('code', {}, x.path || ''), ' ', x.message || ''))) : null));
        }
      },
    },
    h('h2', {id: 'send-title'}, `Send an input to ${w.type}/${w.id}`),
    h('p', {class: 'muted small'}, `In state ${w.state.name}. The decision is shown below; the page updates when it is accepted.`),
    h('label', {class: 'block'}, 'Input ', typeSel),
    h('label', {class: 'small'}, asJSON, ' edit the data as JSON'),
    fields,
    result,
    h('div', {class: 'actions'}, h('button', {type: 'button', onclick: () => dialog.close()}, 'Close'), send)));
  draw();
  showModal(dialog, opener);
  typeSel.focus();
}
