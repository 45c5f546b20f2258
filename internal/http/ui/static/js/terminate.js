// The Terminate action of an instance page: a confirmation dialog that asks for the
// reason, then POST …/terminate. The request carries an Idempotency-Key made when the
// dialog opens, so pressing Confirm twice (or a retried request) ends it once.

import {api, wf} from './api.js';
import {h, notice, replace, showModal} from './dom.js';

const MAX_REASON = 1024; // the API's limit, in bytes of UTF-8

// terminateButton returns a button that opens the dialog for instance w; done(view)
// runs with the terminated instance's view.
export function terminateButton(w, {signal, done} = {}) {
  const btn = h('button', {type: 'button', class: 'danger', 'data-testid': 'terminate',
    title: 'End this instance now: pending timers and effects are cancelled'}, 'Terminate…');
  btn.addEventListener('click', () => openDialog(w, {signal, done, opener: btn}));
  return btn;
}

function openDialog(w, {signal, done, opener}) {
  const key = 'console-terminate-' + crypto.randomUUID();
  const reason = h('textarea', {name: 'reason', rows: 3, 'aria-required': 'true', maxlength: MAX_REASON,
    placeholder: 'why, for the history (required)', 'aria-label': 'reason', 'data-testid': 'terminate-reason'});
  const status = h('div', {role: 'status'});
  const confirm = h('button', {type: 'submit', class: 'danger', 'data-testid': 'terminate-confirm'}, 'Terminate');
  const cancel = h('button', {type: 'button', onclick: () => dialog.close()}, 'Cancel');
  const dialog = h('dialog', {class: 'confirm', 'aria-labelledby': 'terminate-title', 'data-testid': 'terminate-dialog'},
    h('form', {
      method: 'dialog',
      onsubmit: async (e) => {
        e.preventDefault();
        const text = reason.value.trim();
        if (!text) {
          replace(status, notice('warn', 'A reason is required.'));
          reason.focus();
          return;
        }
        if (new TextEncoder().encode(text).length > MAX_REASON) {
          replace(status, notice('warn', `The reason is longer than ${MAX_REASON} bytes.`));
          return;
        }
        confirm.disabled = true;
        replace(status, h('span', {class: 'muted'}, 'Terminating…'));
        try {
          const view = await api(wf(w.type, w.id) + '/terminate', {method: 'POST', body: {reason: text}, headers: {'Idempotency-Key': key}, signal});
          dialog.close();
          window.dispatchEvent(new Event('ironflow:changed'));
          if (done) done(view);
        } catch (err) {
          if (err.name === 'AbortError') return;
          confirm.disabled = false;
          replace(status, notice('error', err.status === 409 ? 'It has already ended: ' : 'Terminate failed: ', err.message));
        }
      },
    },
    h('h2', {id: 'terminate-title'}, `Terminate ${w.type}/${w.id}?`),
    h('p', {}, 'The instance ends with status ', h('strong', {}, 'terminated'), ' in state ', h('code', {}, w.state.name),
      '. Its pending timers and undelivered effects are cancelled and its unique key is freed. This cannot be undone.'),
    h('label', {class: 'block'}, 'Reason', reason),
    status,
    h('div', {class: 'actions'}, cancel, confirm)));
  showModal(dialog, opener);
  reason.focus();
}
