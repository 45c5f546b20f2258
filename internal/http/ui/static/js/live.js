// Live updates from the server's event stream (GET /v1/events/stream, Server-Sent
// Events) instead of timers. EventSource cannot send the API key, so the stream is read
// with fetch; a broken stream is reopened with Last-Event-ID and misses nothing.

import {getKey, root} from './api.js';

const RETRY_MS = [500, 1000, 2000, 5000];

// follow calls onEvents(items) with the feed items committed from now on (of
// workflowType when set), coalesced to at most one call per minGapMs, until signal
// aborts.
export function follow({signal, workflowType, minGapMs = 250, onEvents}) {
  let lastId = '';
  let pending = [];
  let timer = null;
  const flush = () => {
    timer = null;
    const items = pending;
    pending = [];
    if (items.length && !signal.aborted) onEvents(items);
  };
  const deliver = (item) => {
    pending.push(item);
    if (!timer) timer = setTimeout(flush, minGapMs);
  };
  signal.addEventListener('abort', () => timer && clearTimeout(timer));

  (async () => {
    for (let failures = 0; !signal.aborted;) {
      try {
        const params = new URLSearchParams();
        if (!lastId) params.set('after', 'now');
        if (workflowType) params.set('workflow_type', workflowType);
        const headers = {Accept: 'text/event-stream'};
        const key = getKey();
        if (key) headers.Authorization = 'Bearer ' + key;
        if (lastId) headers['Last-Event-ID'] = lastId;
        const res = await fetch(`${root}/v1/events/stream?${params}`, {headers, signal, cache: 'no-store'});
        if (!res.ok) throw new Error(`event stream: ${res.status}`);
        failures = 0;
        await read(res.body, signal, (id, data) => {
          lastId = id || lastId;
          try {
            deliver(JSON.parse(data));
          } catch {
            // Not a feed item: ignore it.
          }
        });
      } catch (err) {
        if (signal.aborted) return;
        failures++;
      }
      await new Promise((r) => setTimeout(r, RETRY_MS[Math.min(failures, RETRY_MS.length - 1)]));
    }
  })();
}

// read parses an SSE body and calls onMessage(id, data) per message.
async function read(body, signal, onMessage) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  signal.addEventListener('abort', () => reader.cancel().catch(() => {}));
  let buf = '';
  let id = '';
  let data = [];
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    buf += value;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (line === '') {
        if (data.length) onMessage(id, data.join('\n'));
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'id') id = val;
      else if (field === 'data') data.push(val);
    }
  }
}
