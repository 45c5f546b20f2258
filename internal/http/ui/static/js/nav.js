// Console URLs: #/<segment>/<segment>?query, each segment percent-encoded so ids with
// slashes or spaces survive.

import {h} from './dom.js';

// link builds a console URL from path segments and query parameters.
export function link(segments, query = {}) {
  const path = '#/' + segments.map(encodeURIComponent).join('/');
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') s.set(k, v);
  const qs = s.toString();
  return qs ? `${path}?${qs}` : path;
}

// instanceLink links to an instance's page: {workflow_type, id} (a parent, a send's
// target) or a workflow view ({type, id}).
export function instanceLink(ref, attrs = {}) {
  const type = ref.workflow_type ?? ref.type;
  return h('a', {href: link(['workflows', type, ref.id]), ...attrs}, h('span', {class: 'id'}, `${type} / ${ref.id}`));
}

// navigate goes to a console URL, redrawing the page when it is the current one.
export function navigate(href) {
  if (location.hash === href) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = href;
}
