// The API client: every request carries the key from sessionStorage as a bearer token,
// errors become ApiError with the RFC 9457 problem the server sent.

const KEY_STORAGE = 'ironflow.apiKey';

// root is the server's base path: the console lives at <root>/ui/, the API at <root>/v1.
export const root = location.pathname.replace(/\/ui(\/.*)?$/, '');

export function getKey() {
  return sessionStorage.getItem(KEY_STORAGE) || '';
}

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

// ApiError is a failed request: status is the HTTP status (0 for a network error),
// problem the problem+json body when there was one.
export class ApiError extends Error {
  constructor(status, message, problem) {
    super(message);
    this.status = status;
    this.problem = problem;
  }
}

// api calls the API. path starts with /v1 (or /metrics, /readyz); opts.method,
// opts.body (JSON-encoded), opts.headers (more request headers), opts.text (return the
// body as text). Returns the decoded body. Throws ApiError.
export async function api(path, opts = {}) {
  const headers = {...opts.headers, Accept: opts.text ? 'text/plain, application/problem+json' : 'application/json, application/problem+json'};
  const key = getKey();
  if (key) headers.Authorization = 'Bearer ' + key;
  let body;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  let res;
  for (let attempt = 1; ; attempt++) {
    try {
      res = await fetch(root + path, {method: opts.method || 'GET', headers, body, signal: opts.signal, cache: 'no-store'});
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      throw new ApiError(0, `cannot reach the server: ${err.message}`);
    }
    // With IRONFLOW_RATE_LIMIT set, a page that loads many things at once may be told
    // to slow down: wait as asked (a few seconds at most) and try again.
    if (res.status !== 429 || attempt >= 4) break;
    const wait = Math.min(Number(res.headers.get('Retry-After')) || 1, 5);
    await new Promise((r) => setTimeout(r, wait * 1000));
  }
  if (!res.ok) {
    let problem;
    let message = `${res.status} ${res.statusText}`;
    try {
      problem = await res.json();
      message = problem.detail || problem.title || message;
    } catch {
      // Not JSON: keep the status line.
    }
    throw new ApiError(res.status, message, problem);
  }
  if (opts.text) return res.text();
  if (res.status === 204) return null;
  return res.json();
}

// q builds a query string from the non-empty values of params ('' when none).
export function q(params) {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') s.set(k, String(v));
  }
  const str = s.toString();
  return str ? '?' + str : '';
}

// wf is the path of an instance: ids may hold any printable character.
export function wf(type, id) {
  return `/v1/workflows/${encodeURIComponent(type)}/${encodeURIComponent(id)}`;
}

// all follows next_cursor through a list (cursor-paged, or after-paged for events)
// and returns every item, up to max. truncated is set on the array when it stopped
// early.
export async function all(path, {param = 'cursor', max = 2000, limit = 500, signal} = {}) {
  const items = [];
  let cursor = '';
  const sep = path.includes('?') ? '&' : '?';
  for (;;) {
    const page = await api(path + sep + `limit=${limit}` + (cursor ? `&${param}=${encodeURIComponent(cursor)}` : ''), {signal});
    items.push(...(page.items || []));
    cursor = page.next_cursor;
    if (!cursor) break;
    if (items.length >= max) {
      items.truncated = true;
      break;
    }
  }
  return items;
}

// optional turns a 404 or 405 (a route this server does not have, or nothing there)
// into fallback.
export async function optional(promise, fallback = null) {
  try {
    return await promise;
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 405)) return fallback;
    throw err;
  }
}
