// Console URLs: #/<segment>/<segment>?query, each segment percent-encoded so ids with
// slashes or spaces survive.

// link builds a console URL from path segments and query parameters.
export function link(segments, query = {}) {
  const path = '#/' + segments.map(encodeURIComponent).join('/');
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') s.set(k, v);
  const qs = s.toString();
  return qs ? `${path}?${qs}` : path;
}

// navigate goes to a console URL, redrawing the page when it is the current one.
export function navigate(href) {
  if (location.hash === href) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = href;
}
