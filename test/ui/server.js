// Test fixtures: the real ironflow server built from this repository, and a webhook
// receiver whose answers the test controls.

import {spawn, execFileSync} from 'node:child_process';
import {mkdtempSync, rmSync} from 'node:fs';
import {chromium} from 'playwright-core';
import {createServer} from 'node:http';
import {tmpdir} from 'node:os';
import {dirname, join, resolve} from 'node:path';
import {fileURLToPath} from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

// startServer builds cmd/server and runs it on a free loopback port with a fresh
// SQLite database. env is merged over the defaults. Returns {url, key, stop, restart,
// logs}: restart stops the process and starts it again on the same address and
// database, as an operator's restart would.
export async function startServer(env = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'ironflow-ui-'));
  const bin = join(dir, 'ironflow');
  execFileSync(process.env.GO || 'go', ['build', '-o', bin, './cmd/server'], {cwd: repoRoot, stdio: 'inherit'});
  const key = 'ui-test-key';
  const vars = {
    PATH: process.env.PATH,
    HOME: process.env.HOME || dir,
    IRONFLOW_LISTEN_ADDR: '127.0.0.1:0',
    IRONFLOW_DATABASE_URL: 'sqlite://' + join(dir, 'ironflow.db'),
    IRONFLOW_API_KEYS: key,
    IRONFLOW_LOG_FORMAT: 'json',
    IRONFLOW_LOG_LEVEL: 'debug',
    ...env,
  };
  const logs = [];
  let proc;

  function launch(extra = {}) {
    proc = spawn(bin, [], {env: {...vars, ...extra}, stdio: ['ignore', 'pipe', 'pipe']});
    const me = proc;
    let buf = '';
    return new Promise((resolveUrl, reject) => {
      const timer = setTimeout(() => reject(new Error('server did not log "listening" within 30 s:\n' + logs.join('\n'))), 30000);
      me.stdout.on('data', (chunk) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          logs.push(line);
          try {
            const rec = JSON.parse(line);
            if (rec.msg === 'listening') {
              clearTimeout(timer);
              resolveUrl('http://' + rec.addr);
            }
          } catch {
            // not JSON
          }
        }
      });
      me.stderr.on('data', (chunk) => logs.push(String(chunk)));
      me.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`server exited with ${code}:\n${logs.join('\n')}`));
      });
    });
  }

  async function halt() {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10000))]);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    }
  }

  const url = await launch();
  const server = {url, key, logs};
  server.stop = async () => {
    await halt();
    rmSync(dir, {recursive: true, force: true});
  };
  // down stops the process and leaves its database; up starts it again on the same
  // address.
  server.down = halt;
  server.up = () => launch({IRONFLOW_LISTEN_ADDR: url.replace('http://', '')});
  return server;
}

// startReceiver is a webhook endpoint: respond(effect, body) decides each answer
// ({status, body}); every request is recorded in received.
export async function startReceiver() {
  const received = [];
  const state = {respond: () => ({status: 200, body: ''})};
  const srv = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      let body = {};
      try {
        body = JSON.parse(raw);
      } catch {
        // recorded as {}
      }
      received.push({headers: req.headers, body});
      const {status, body: answer} = state.respond(body.data?.effect, body);
      res.writeHead(status, {'content-type': typeof answer === 'string' ? 'text/plain' : 'application/json'});
      res.end(typeof answer === 'string' ? answer : JSON.stringify(answer));
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${srv.address().port}/hook`,
    received,
    set respond(fn) {
      state.respond = fn;
    },
    close: () => new Promise((r) => srv.close(r)),
  };
}

// client returns call(method, path, body) against the server with its key; it
// resolves to {status, body}.
export function client(server) {
  return async (method, path, body) => {
    const res = await fetch(server.url + path, {
      method,
      headers: {authorization: 'Bearer ' + server.key, 'content-type': 'application/json'},
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // text body
    }
    return {status: res.status, body: parsed};
  };
}

// eventually polls fn until it returns a truthy value or timeoutMs passes.
export async function eventually(fn, {timeoutMs = 20000, everyMs = 100, what = 'condition'} = {}) {
  const until = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? ': ' + last.message : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

// launchBrowser starts the system's Chromium (CHROMIUM overrides its path) with a
// fresh profile. Returns {browser, page, pageErrors, close}.
export async function launchBrowser({width = 1400, height = 900} = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'ironflow-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: {width, height},
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = browser.pages()[0] || (await browser.newPage());
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  async function close() {
    await browser.close();
    rmSync(profile, {recursive: true, force: true});
  }
  return {browser, page, pageErrors, close};
}
