// The console as an operator uses it (issue: console second edition), in a real
// browser against a real server: a page that holds still while it updates, finding
// the work that needs attention, the actions (send an input, discard, retry all,
// terminate), a large diagram, and the pages at 390 px with keyboard and contrast
// checks. Screenshots at 1400 px and 390 px go to test-artifacts/ui/.

import {after, before, test} from 'node:test';
import assert from 'node:assert/strict';
import {mkdirSync, readFileSync} from 'node:fs';
import {join} from 'node:path';

import {client, eventually, launchBrowser, repoRoot, startReceiver, startServer} from './server.js';

const artifacts = join(repoRoot, 'test-artifacts', 'ui');
const shot = (page, name) => page.screenshot({path: join(artifacts, name), fullPage: true});

// pipeline: 20 states in a chain (the diagram must stay readable), an effect on
// leaving the first state, a state timer, a failed ending and an input schema with
// typed properties (the send form is built from it).
const STEPS = 20;
function pipeline() {
  const states = {
    new: {on: {start: {to: 's1', event: 'Started', effects: [{name: 'notify'}]}}},
    broken: {terminal: 'failed'},
    [`s${STEPS}`]: {terminal: true},
  };
  for (let i = 1; i < STEPS; i++) {
    states[`s${i}`] = {
      on: {
        advance: {to: `s${i + 1}`, event: `Advanced${i}`},
        note: {event: 'Noted'},
        fail: {to: 'broken', event: 'Broke'},
      },
    };
  }
  states.s1.timers = [{key: 'remind', after: '1h', input: {type: 'note'}}];
  return {
    description: 'A long chain',
    initial_state: 'new',
    inputs: {
      start: {schema: {type: 'object', required: ['name'], properties: {
        name: {type: 'string'}, priority: {type: 'integer'}, urgent: {type: 'boolean'}, kind: {enum: ['a', 'b']},
      }}},
      note: {}, advance: {}, fail: {},
    },
    states,
  };
}

let server;
let receiver;
let call;
let browser;
let page;
let pageErrors;
const longName = 'n'.repeat(120); // the payload is folded into a <details>
const longId = 'x'.repeat(200);

before(async () => {
  mkdirSync(artifacts, {recursive: true});
  receiver = await startReceiver();
  receiver.respond = (effect) => (effect === 'notify' ? {status: 503, body: 'notifier down'} : {status: 200, body: 'ok'});
  server = await startServer({
    IRONFLOW_WEBHOOK_ALLOW_NETS: '127.0.0.0/8',
    IRONFLOW_MAX_ATTEMPTS: '2',
    IRONFLOW_RETRY_INITIAL_INTERVAL: '50ms',
    IRONFLOW_RETRY_MAX_INTERVAL: '100ms',
  });
  call = client(server);
  browser = await launchBrowser();
  ({page, pageErrors} = browser);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await receiver?.close();
});

const send = async (id, type, data = {}) => {
  const r = await call('POST', `/v1/workflows/pipeline/${encodeURIComponent(id)}/inputs`, {type, data});
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
};

test('seed: a 20-state type, instances with dead effects, a failed one and a long id', async () => {
  assert.equal((await call('PUT', '/v1/workflow-types/pipeline', pipeline())).status, 201);
  const hook = await call('PUT', '/v1/workflow-types/pipeline/webhook', {url: receiver.url});
  assert.ok(hook.status === 200 || hook.status === 201);
  await send('p-1', 'start', {name: longName});
  await send('p-2', 'start', {name: 'two'});
  await send('p-2', 'fail');
  await send(longId, 'start', {name: 'long'});
  await send('p-4', 'start', {name: 'four'});
  for (let i = 0; i < 4; i++) await send('p-4', 'advance');
  await eventually(async () => (await call('GET', '/v1/effects?status=dead&workflow_type=pipeline')).body.items?.length === 4,
    {what: 'four dead notify effects'});
  await page.goto(server.url + '/ui');
  await page.getByTestId('api-key').fill(server.key);
  await page.getByTestId('api-key').press('Enter');
  await page.getByTestId('tile-ready').waitFor();
});

test('1. the instance page updates in place: open blocks, focus and alerts survive a redraw', async () => {
  await page.goto(server.url + '/ui/#/workflows/pipeline/p-1');
  const alert = page.getByTestId('diagnosis').getByRole('alert');
  await alert.getByText('Effect notify is dead').waitFor();
  const effects = page.getByTestId('effects');
  // The reader opens the folded payload, closes the attempts and focuses Retry.
  const payload = effects.locator('details.json').first();
  await payload.locator('summary').click();
  const attempts = effects.locator('tr.sub details').first();
  await attempts.locator('summary').click();
  const {body} = await call('GET', '/v1/effects?status=dead&workflow_id=p-1');
  const retry = page.getByTestId(`retry-effect-${body.items[0].id}`);
  await retry.focus();
  // The reader has selected the state data and scrolled down a little.
  const selected = await page.evaluate(() => {
    const pre = document.querySelector('[data-testid="state-data"]');
    const range = document.createRange();
    range.selectNodeContents(pre);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    window.scrollTo(0, 200);
    return getSelection().toString();
  });
  // Marks as properties, not attributes: a redraw may rewrite attributes.
  await page.evaluate(() => {
    document.querySelector('[data-testid="diagnosis"] [role="alert"]').ironflowMark = 'before';
    document.activeElement.ironflowMark = 'focused';
  });
  const drawn = await page.getByTestId('updated').textContent();

  await send('p-1', 'note');
  await page.getByTestId('timeline').getByText('Noted', {exact: true}).waitFor();
  await eventually(async () => (await page.getByTestId('updated').textContent()) !== drawn, {what: 'a redraw'});
  assert.equal(await payload.evaluate((d) => d.open), true, 'the opened payload stays open');
  assert.equal(await attempts.evaluate((d) => d.open), false, 'the closed attempts stay closed');
  assert.equal(await page.evaluate(() => document.activeElement?.ironflowMark), 'focused', 'focus stays on Retry');
  assert.equal(await alert.evaluate((a) => a.ironflowMark), 'before', 'the alert is the same node: not announced again');
  assert.equal(await page.locator('main[aria-live]').count(), 0, 'the page is not one big live region');
  assert.equal(await page.evaluate(() => getSelection().toString()), selected, 'the selection stays');
  assert.equal(await page.evaluate(() => window.scrollY), 200, 'the scroll position stays');
  await shot(page, '10-stable-1400.png');
});

test('1. an ended instance stops asking; the page recovers when the server comes back', async () => {
  const streams = [];
  const onRequest = (r) => r.url().includes('/v1/events/stream') && streams.push({r, done: false});
  const onDone = (r) => streams.forEach((s) => s.r === r && (s.done = true));
  page.on('request', onRequest);
  page.on('requestfailed', onDone);
  page.on('requestfinished', onDone);
  await page.goto(server.url + '/ui/#/workflows/pipeline/p-2');
  await page.getByTestId('instance-status').getByText('failed').waitFor();
  await page.getByTestId('diagnosis').getByText('Failed in state broken').waitFor();
  await page.getByText('ended: no more updates').waitFor();
  // No stream stays open and no read repeats for an instance that cannot change.
  await eventually(() => streams.every((s) => s.done), {what: 'no open event stream', timeoutMs: 5000});
  const reads = [];
  const count = (r) => r.url().includes('/v1/workflows/pipeline/p-2') && reads.push(r.url());
  page.on('request', count);
  await new Promise((r) => setTimeout(r, 3000));
  page.off('request', count);
  page.off('request', onRequest);
  page.off('requestfailed', onDone);
  page.off('requestfinished', onDone);
  assert.deepEqual(reads, []);

  // The server restarts: the page says so, then comes back on its own.
  await page.goto(server.url + '/ui/#/workflows/pipeline/p-1');
  await page.getByTestId('instance-id').waitFor();
  await server.down();
  await page.getByRole('button', {name: 'Refresh'}).click();
  await page.getByTestId('reconnecting').waitFor({timeout: 15000});
  await server.up();
  await page.getByTestId('instance-id').getByText('p-1').waitFor({timeout: 20000});
});

test('2. finding work: needs attention, counts, filters, prefix search, pending lists, tiles', async () => {
  await page.goto(server.url + '/ui/#/attention');
  const rows = page.getByTestId('attention-row');
  await eventually(async () => (await rows.count()) === 4, {what: 'four instances needing attention'});
  await page.getByTestId('attention-table').getByText('in state broken').waitFor();
  await shot(page, '11-attention-1400.png');

  await page.goto(server.url + '/ui/#/workflows?type=pipeline');
  await page.getByTestId('count-failed').getByText('1').waitFor();
  await page.getByTestId('count-running').getByText('3').waitFor();
  await page.getByTestId('count-failed').click();
  await page.getByTestId('instance-p-2').waitFor();
  assert.equal(await page.getByTestId('instances-table').locator('tbody tr').count(), 1);

  // Id prefix search: one request, every type.
  await page.goto(server.url + '/ui/#/workflows');
  await page.getByTestId('instances-table').waitFor();
  const lists = [];
  const onList = (r) => /\/v1\/workflows\?/.test(r.url()) && lists.push(r.url());
  page.on('request', onList);
  await page.getByTestId('id-search').fill('p-');
  await page.getByTestId('filter').click();
  await page.getByTestId('instance-p-4').waitFor();
  page.off('request', onList);
  assert.equal(lists.length, 1, lists.join('\n'));
  assert.match(lists[0], /id_prefix=p-/);
  assert.equal(await page.getByTestId('instances-table').locator('tbody tr').count(), 3);

  // A time range that ends before anything was created shows nothing.
  await page.goto(server.url + '/ui/#/workflows?type=pipeline&created_before=2000-01-01T00:00:00.000Z');
  await page.getByText('No instance matches.').waitFor();

  // The overview's tiles open the lists behind them.
  await page.goto(server.url + '/ui/');
  await page.getByTestId('tile-timers').click();
  await page.getByTestId('timers-table').getByText('remind').first().waitFor();
  await page.goto(server.url + '/ui/');
  await page.getByTestId('tile-dead').click();
  await page.getByTestId('dead-effect-row').first().waitFor();
});

test('3. actions: send an input from a form, discard, retry all with a count', async () => {
  await page.goto(server.url + '/ui/#/workflows/pipeline/p-4');
  await page.getByTestId('send-input').click();
  const dialog = page.getByTestId('send-dialog');
  await dialog.waitFor();
  await page.getByTestId('send-type').selectOption('note');
  await page.getByTestId('send-confirm').click();
  await page.getByTestId('send-result').getByText('accepted').waitFor();
  await dialog.getByRole('button', {name: 'Close'}).click();
  await page.getByTestId('timeline').getByText('Noted', {exact: true}).waitFor();

  // Another input: it ends the instance failed.
  await page.goto(server.url + '/ui/#/workflows/pipeline/p-4');
  await page.getByTestId('send-input').click();
  await page.getByTestId('send-type').selectOption('fail');
  await page.getByTestId('send-confirm').click();
  await page.getByTestId('send-result').getByText('accepted').waitFor();
  await page.getByTestId('send-dialog').getByRole('button', {name: 'Close'}).click();
  await page.getByTestId('instance-status').getByText('failed').waitFor();

  // The form of a typed schema: fields, not a JSON box.
  await page.goto(server.url + '/ui/#/workflows/pipeline/p-1');
  await page.getByTestId('send-input').click();
  await page.getByTestId('send-type').selectOption('start');
  const fields = page.getByTestId('send-fields');
  await fields.getByLabel('name').waitFor();
  assert.equal(await fields.getAttribute('data-mode'), 'form');
  await fields.getByLabel('priority').fill('3');
  await fields.getByLabel('name').fill('again');
  await page.getByTestId('send-confirm').click();
  await page.getByTestId('send-result').getByText('rejected').waitFor(); // s1 does not take start
  await shot(page, '12-send-input-1400.png');
  await page.getByTestId('send-dialog').getByRole('button', {name: 'Close'}).click();

  // Discard p-1's dead effect, after the confirmation.
  const dead = (await call('GET', '/v1/effects?status=dead&workflow_id=p-1')).body.items[0];
  page.once('dialog', (d) => d.accept());
  await page.getByTestId(`discard-effect-${dead.id}`).click();
  await page.getByTestId(`effect-status-${dead.id}`).getByText('cancelled').waitFor();
  assert.equal((await call('GET', `/v1/effects/${dead.id}`)).body.status, 'cancelled');

  // Retry all: the confirmation names the count; the receiver now answers.
  receiver.respond = () => ({status: 200, body: 'ok'});
  const left = (await call('GET', '/v1/effects?status=dead&workflow_type=pipeline')).body.items.length;
  await page.goto(server.url + '/ui/#/dead?type=pipeline');
  await page.getByTestId('dead-effect-row').first().waitFor();
  let asked = '';
  page.once('dialog', (d) => {
    asked = d.message();
    d.accept();
  });
  await page.getByTestId('retry-all').click();
  await page.getByTestId('retry-all-progress').getByText(`${left} of ${left} retried.`).waitFor();
  assert.match(asked, new RegExp(`Retry ${left} dead effect`));
  await eventually(async () => (await call('GET', '/v1/effects?status=dead&workflow_type=pipeline')).body.items.length === 0,
    {what: 'every dead effect delivered'});
});

test('4. the diagram: visited path, full screen with zoom, whole labels, no emoji', async () => {
  await page.goto(server.url + '/ui/#/workflows/pipeline/p-4');
  const box = page.locator('[data-testid="diagram"][data-rendered="true"]');
  await box.locator('svg').waitFor();
  const source = await box.locator('details.source pre').textContent();
  assert.doesNotMatch(source, /[\u{1F300}-\u{1FAFF}\u2600-\u27BF\u23E9-\u23FA]/u, 'no glyph that needs an emoji font');
  for (const st of ['new', 's1', 's2', 's3', 's4']) assert.match(source, new RegExp(`class ${st} visited`));
  const now = (await call('GET', '/v1/workflows/pipeline/p-4')).body.state.name;
  assert.match(source, new RegExp(`class ${now} current`));
  assert.ok(await box.locator('svg g.visited, svg .visited').count() >= 4, 'visited states are drawn highlighted');
  await box.getByTestId('diagram-full').click();
  const dialog = page.getByTestId('diagram-dialog');
  const svg = dialog.locator('svg');
  await svg.waitFor();
  const w1 = Number(await svg.getAttribute('width'));
  await page.getByTestId('zoom-in').click();
  const w2 = Number(await svg.getAttribute('width'));
  assert.ok(w2 > w1, `zoom in widens the picture (${w1} → ${w2})`);
  // At 100 % a state label is at least 12 px tall on screen.
  await page.keyboard.press('-');
  const labelHeight = await dialog.evaluate((d) => {
    const t = [...d.querySelectorAll('svg .nodeLabel, svg text')].find((x) => x.textContent.trim() === 's10');
    return t ? t.getBoundingClientRect().height : 0;
  });
  assert.ok(labelHeight >= 12, `state labels are readable at 100% (${labelHeight}px)`);
  // No label sticks out of the picture.
  const cut = await dialog.evaluate((d) => {
    const s = d.querySelector('svg').getBoundingClientRect();
    return [...d.querySelectorAll('svg .edgeLabel, svg .nodeLabel')].filter((l) => {
      const r = l.getBoundingClientRect();
      return r.width && (r.left < s.left - 1 || r.right > s.right + 1 || r.top < s.top - 1 || r.bottom > s.bottom + 1);
    }).map((l) => l.textContent);
  });
  assert.deepEqual(cut, []);
  await page.screenshot({path: join(artifacts, '13-diagram-full-1400.png')});
  await page.getByTestId('diagram-close').click();
  await dialog.waitFor({state: 'detached'});
});

test('5. 390 px: no sideways scrolling, long ids wrap, actions in reach, skip link, contrast', async () => {
  await page.setViewportSize({width: 390, height: 844});
  const pages = [
    ['/ui/', 'tile-ready', '20-overview-390.png'],
    ['/ui/#/workflows', 'instances-table', '21-instances-390.png'],
    ['/ui/#/workflows/pipeline/' + encodeURIComponent(longId), 'instance-id', '22-long-id-390.png'],
    ['/ui/#/attention', 'attention-table', '23-attention-390.png'],
    ['/ui/#/workflows/pipeline/p-1', 'effects', '24-instance-390.png'],
  ];
  for (const [path, testid, name] of pages) {
    await page.goto(server.url + path);
    await page.getByTestId(testid).first().waitFor();
    await page.waitForTimeout(300);
    await shot(page, name);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    const wide = await page.evaluate(() => [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > 391).slice(0, 3).map((e) => `${e.tagName}.${e.className}`));
    assert.ok(width <= 390, `${path} is ${width}px wide at 390px: ${wide.join(', ')}`);
  }
  // The instance page's actions are on screen without scrolling sideways.
  for (const testid of ['send-input', 'terminate']) {
    const b = await page.getByTestId(testid).boundingBox();
    assert.ok(b && b.x >= 0 && b.x + b.width <= 390, `${testid} is within the screen`);
  }
  // Keyboard: the first Tab reaches the skip link, which moves focus to the content.
  await page.evaluate(() => document.activeElement?.blur());
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'main');
  assert.match(page.url(), /#\/workflows\/pipeline\/p-1$/, 'the skip link does not navigate');
  // Contrast AA for the console's own text (the diagram picture aside).
  const low = await page.evaluate(contrastProblems);
  assert.deepEqual(low, []);
  await page.setViewportSize({width: 1400, height: 900});
});

test('6. parents and children: links both ways, children paged and filtered, a send shows its target', async () => {
  for (const name of ['batch_item', 'batch']) {
    const def = JSON.parse(readFileSync(join(repoRoot, 'examples', name + '.json'), 'utf8'));
    assert.equal((await call('PUT', `/v1/workflow-types/${name}`, def)).status, 201);
  }
  const hook = await call('PUT', '/v1/workflow-types/batch_item/webhook', {url: receiver.url});
  assert.ok(hook.status === 200 || hook.status === 201);
  receiver.respond = (effect, body) => {
    if (effect === 'work') return {status: 200, body: {input: {type: 'done', data: {result: {square: body.data.payload.item ** 2}}}}};
    return effect === 'notify' ? {status: 503, body: 'notifier down'} : {status: 200, body: 'ok'};
  };
  const n = 60; // more than one page of children
  const items = [...Array(n).keys()];
  const r = await call('POST', '/v1/workflows/batch/b-ui/inputs', {type: 'start', data: {items}});
  assert.equal(r.status, 200, JSON.stringify(r.body));
  await eventually(async () => (await call('GET', '/v1/workflows/batch/b-ui')).body.status === 'completed',
    {timeoutMs: 60000, what: 'the batch to complete'});

  await page.goto(server.url + '/ui/#/workflows/batch/b-ui');
  const children = page.getByTestId('children');
  await children.getByTestId('child-row').first().waitFor();
  assert.equal(await children.getByTestId('child-row').count(), 50, 'one page of children');
  assert.equal(await page.getByTestId('parent-link').count(), 0, 'a parent has no parent');
  await page.getByTestId('children-more').click();
  await eventually(async () => (await children.getByTestId('child-row').count()) === n, {what: 'the second page of children'});
  const statuses = await children.locator('td.status-cell').allTextContents();
  assert.deepEqual([...new Set(statuses)], ['completed']);
  // Each send effect names its target, a link to the child.
  const target = page.getByTestId('effects').getByTestId('send-target');
  assert.equal(await target.count(), n);
  const hrefs = await target.evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  assert.ok(hrefs.includes('#/workflows/batch_item/b-ui-0') && hrefs.includes(`#/workflows/batch_item/b-ui-${n - 1}`), hrefs.slice(0, 3).join(' '));
  await page.locator('section.card', {has: children}).screenshot({path: join(artifacts, '60-children-1400.png')});
  // The filter asks the server for children of one status.
  await page.getByTestId('children-status').selectOption('running');
  await children.getByText('No running children.').waitFor();
  await page.getByTestId('children-status').selectOption('completed');
  await children.getByTestId('child-row').nth(49).waitFor();

  // Down to a child, and back up through its parent link.
  await children.getByTestId('child-link').filter({hasText: 'batch_item / b-ui-7'}).click();
  await page.waitForURL(/#\/workflows\/batch_item\/b-ui-7$/);
  await page.getByTestId('instance-status').getByText('completed').waitFor();
  assert.equal(await page.getByTestId('state-data').textContent(), JSON.stringify({item: 7, result: {square: 49}}, null, 2));
  const up = page.getByTestId('parent-link');
  assert.equal(await up.textContent(), 'batch / b-ui');
  assert.equal(await page.locator('[data-testid="children"]').count(), 0, 'a child without children shows no Children section');
  await up.click();
  await page.waitForURL(/#\/workflows\/batch\/b-ui$/);
  await page.getByTestId('children').getByTestId('child-row').first().waitFor();
});

test('no script errors on any page', () => {
  assert.deepEqual(pageErrors, []);
});

// contrastProblems runs in the page: every visible text node's colour against the
// background behind it must reach WCAG AA (4.5:1, 3:1 for large text).
function contrastProblems() {
  const parse = (c) => {
    const m = c.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const [r, g, b, a = 1] = m[1].split(',').map((x) => parseFloat(x));
    return {r, g, b, a};
  };
  const lum = ({r, g, b}) => {
    const f = (v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0.5) return c;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim() || !el || el.closest('svg, .diagram .svg, button:disabled, noscript, dialog:not([open])')) continue;
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height || getComputedStyle(el).visibility === 'hidden') continue;
    if (el.closest('.skip') && r.bottom < 0) continue;
    const st = getComputedStyle(el);
    const fg = parse(st.color);
    const bg = background(el);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    const size = parseFloat(st.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(st.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) out.push(`${n.textContent.trim().slice(0, 30)}: ${ratio.toFixed(2)} (${st.color} on rgb(${bg.r}, ${bg.g}, ${bg.b}))`);
  }
  return [...new Set(out)];
}
