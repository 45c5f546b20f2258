// The web console in a real browser: playwright-core drives the system's Chromium
// against a real ironflow server built from this repository, with a webhook receiver
// that first fails (so an effect goes dead) and then succeeds (so Retry delivers it).
//
// Run: make test-ui (or `npm ci && npm test` here). CHROMIUM overrides the browser path
// (default /usr/bin/chromium). Screenshots go to test-artifacts/ui/; with
// UPDATE_README_SCREENSHOT=1 the instance page is also written to docs/img/console.png.

import {after, before, test} from 'node:test';
import assert from 'node:assert/strict';
import {copyFileSync, mkdirSync, readFileSync} from 'node:fs';
import {join} from 'node:path';

import {client, eventually, launchBrowser, repoRoot, startReceiver, startServer} from './server.js';

const artifacts = join(repoRoot, 'test-artifacts', 'ui');
const shot = (page, name) => page.screenshot({path: join(artifacts, name), fullPage: true});

const ticket = {
  description: 'Support ticket',
  initial_state: 'new',
  inputs: {open: {}, answer: {}, close: {}},
  states: {
    new: {on: {open: {to: 'open', event: 'Opened'}}},
    open: {on: {answer: {event: 'Answered'}, close: {to: 'closed', event: 'Closed'}}},
    closed: {terminal: true},
  },
};

let server;
let receiver;
let call;
let closeBrowser;
let page;
let pageErrors;
let failing = true;

before(async () => {
  mkdirSync(artifacts, {recursive: true});
  receiver = await startReceiver();
  receiver.respond = (effect) => {
    if (effect === 'reserve_stock') {
      return failing
        ? {status: 503, body: 'stock service down: maintenance window'}
        : {status: 200, body: {input: {type: 'reserved', data: {warehouse: 'east'}}}};
    }
    return {status: 200, body: 'ok'};
  };
  server = await startServer({
    IRONFLOW_WEBHOOK_ALLOW_NETS: '127.0.0.0/8',
    IRONFLOW_MAX_ATTEMPTS: '2',
    IRONFLOW_RETRY_INITIAL_INTERVAL: '50ms',
    IRONFLOW_RETRY_MAX_INTERVAL: '100ms',
  });
  call = client(server);

  ({page, pageErrors, close: closeBrowser} = await launchBrowser());
});

after(async () => {
  await closeBrowser?.();
  await server?.stop();
  await receiver?.close();
});

test('seed: definitions, a webhook and instances through the API', async () => {
  const order = JSON.parse(readFileSync(join(repoRoot, 'examples', 'order.json'), 'utf8'));
  assert.equal((await call('PUT', '/v1/workflow-types/order', order)).status, 201);
  assert.equal((await call('PUT', '/v1/workflow-types/ticket', ticket)).status, 201);
  const hook = await call('PUT', '/v1/workflow-types/order/webhook', {url: receiver.url});
  assert.ok(hook.status === 200 || hook.status === 201, JSON.stringify(hook.body));

  for (const [id, ref] of [['o-1', 'A-1'], ['o-2', 'A-2'], ['o-3', 'A-3']]) {
    const r = await call('POST', `/v1/workflows/order/${id}/inputs`, {type: 'place', data: {total: 40, order_ref: ref}});
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  const rejected = await call('POST', '/v1/workflows/order/o-1/inputs', {type: 'pay', data: {amount: 10}});
  assert.equal(rejected.status, 409);
  assert.equal(rejected.body.outcome, 'rejected');
  assert.equal((await call('POST', '/v1/workflows/order/o-2/inputs', {type: 'pay', data: {amount: 40}})).status, 200);
  for (const id of ['t-1', 't-2']) {
    assert.equal((await call('POST', `/v1/workflows/ticket/${id}/inputs`, {type: 'open', data: {}})).status, 200);
  }
  assert.equal((await call('POST', '/v1/workflows/ticket/t-2/inputs', {type: 'close', data: {}})).status, 200);

  // Every reserve_stock fails twice (IRONFLOW_MAX_ATTEMPTS=2) and dies.
  await eventually(async () => {
    const r = await call('GET', '/v1/effects?status=dead&workflow_type=order');
    return r.body.items?.length === 3;
  }, {what: 'three dead reserve_stock effects'});
});

test('API key prompt, then the live overview', async () => {
  await page.goto(server.url + '/ui');
  const key = page.getByTestId('api-key');
  await key.waitFor();
  await key.fill(server.key);
  await key.press('Enter');
  await page.getByTestId('tile-dead').getByText('3', {exact: true}).waitFor();
  await page.getByTestId('tile-ready').getByText('ready', {exact: true}).waitFor();
  // Inputs arriving while the page polls show up as a rate (deltas of /metrics).
  const sending = (async () => {
    for (let i = 0; i < 30; i++) {
      await call('POST', '/v1/workflows/ticket/t-1/inputs', {type: 'answer', data: {n: i}});
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  await page.waitForFunction(() => {
    const v = Number(document.querySelector('[data-testid="tile-inputs"] .tile-value')?.textContent);
    return v > 0;
  }, null, {timeout: 15000});
  await sending;
  await page.locator('#dead-badge').getByText('3').waitFor();
  await page.getByRole('cell', {name: 'reserve_stock', exact: true}).first().waitFor();
  await shot(page, '01-overview.png');
});

test('workflow types with the rendered diagram and versions', async () => {
  await page.getByRole('link', {name: 'Workflow types'}).click();
  await page.getByTestId('type-order').click();
  await page.locator('[data-testid="diagram"][data-rendered="true"] svg').waitFor();
  assert.ok(await page.getByRole('cell', {name: 'awaiting_payment'}).count());
  await page.getByRole('heading', {name: 'Versions'}).waitFor();
  await shot(page, '02-workflow-type.png');
});

test('instances: filters, paging and id search', async () => {
  await page.goto(server.url + '/ui/#/workflows?type=order');
  const rows = page.getByTestId('instances-table').locator('tbody tr');
  await eventually(async () => (await rows.count()) === 3, {what: 'three order instances'});
  await shot(page, '03-instances.png');

  // One a page: the cursor pager walks them, oldest first.
  await page.goto(server.url + '/ui/#/workflows?type=order&limit=1');
  await page.getByTestId('instance-o-1').waitFor();
  await page.getByTestId('next-page').click();
  await page.getByTestId('instance-o-2').waitFor();
  assert.equal(await rows.count(), 1);

  // The state filter.
  await page.goto(server.url + '/ui/#/workflows?type=order&state=paid');
  await page.getByTestId('instance-o-2').waitFor();
  assert.equal(await rows.count(), 1);

  // Id search across types (one request, by prefix) opens the instance on an exact hit.
  await page.goto(server.url + '/ui/#/workflows');
  await page.getByTestId('instances-table').waitFor();
  await page.getByTestId('id-search').fill('o-1');
  await page.getByTestId('id-search').press('Enter');
  await page.getByTestId('instance-id').getByText('o-1').waitFor();
});

test('instance page: timeline, the dead effect, and Retry delivers it', async () => {
  await page.goto(server.url + '/ui/#/workflows/order/o-1');
  const timeline = page.getByTestId('timeline');
  await timeline.getByText('payment is below the order total').waitFor();
  const transition = timeline.getByTestId('transition').first();
  assert.match((await transition.textContent()).replace(/\s+/g, ' '), /new → awaiting_payment/);
  await timeline.getByText('OrderPlaced').waitFor();
  await page.getByTestId('diagnosis').getByText('Effect reserve_stock is dead').waitFor();
  await page.getByText('current state: awaiting_payment').waitFor();
  const effects = page.getByTestId('effects');
  assert.equal(await effects.getByText('stock service down: maintenance window').count() >= 2, true,
    'both attempts show the response excerpt');
  await shot(page, '04-instance-dead-effect.png');
  if (process.env.UPDATE_README_SCREENSHOT) {
    mkdirSync(join(repoRoot, 'docs', 'img'), {recursive: true});
    copyFileSync(join(artifacts, '04-instance-dead-effect.png'), join(repoRoot, 'docs', 'img', 'console.png'));
  }

  failing = false;
  const {body} = await call('GET', '/v1/effects?status=dead&workflow_type=order');
  const effect = body.items.find((e) => e.workflow_id === 'o-1');
  await page.getByTestId(`retry-effect-${effect.id}`).click();
  await page.getByTestId(`effect-status-${effect.id}`).getByText('delivered', {exact: true}).waitFor({timeout: 30000});
  // The receiver's answer was routed back as the next input, caused by the effect.
  await timeline.getByText('from effect reserve_stock').waitFor({timeout: 10000});
  await timeline.getByText('StockReserved').waitFor();
  await page.getByTestId('diagnosis').getByText('Effect reserve_stock is dead').waitFor({state: 'detached'});
  await shot(page, '05-instance-retried.png');
});

test('dead letters across types, retried from the list', async () => {
  await page.getByRole('link', {name: 'Dead letters'}).click();
  const rows = page.getByTestId('dead-effect-row');
  await eventually(async () => (await rows.count()) === 2, {what: 'two dead effects listed'});
  await page.getByText('No dead timers.').waitFor();
  await shot(page, '06-dead-letters.png');
  await rows.first().getByRole('button', {name: 'Retry'}).click();
  await rows.first().getByText('delivered', {exact: true}).waitFor({timeout: 30000});
  const left = await call('GET', '/v1/effects?status=dead');
  assert.equal(left.body.items.length, 1);
});

test('instance page: Terminate asks for a reason, then ends it and cancels its timer', async () => {
  // o-3 waits for payment with its payment_timeout timer pending.
  await page.goto(server.url + '/ui/#/workflows/order/o-3');
  await page.getByTestId('timers').getByText('pending', {exact: true}).waitFor();
  await page.getByTestId('terminate').click();
  const dialog = page.getByTestId('terminate-dialog');
  await dialog.waitFor();
  // Confirm without a reason is refused in the dialog; nothing is sent.
  await page.getByTestId('terminate-confirm').click();
  await dialog.getByText('A reason is required.').waitFor();
  assert.equal((await call('GET', '/v1/workflows/order/o-3')).body.status, 'running');
  // Cancel closes it and changes nothing.
  await dialog.getByRole('button', {name: 'Cancel'}).click();
  await dialog.waitFor({state: 'detached'});
  assert.equal((await call('GET', '/v1/workflows/order/o-3')).body.status, 'running');

  await page.getByTestId('terminate').click();
  await page.getByTestId('terminate-reason').fill('customer cancelled by phone');
  await shot(page, '07-terminate-dialog.png');
  await page.getByTestId('terminate-confirm').click();
  await page.getByTestId('instance-id').locator('..').getByText('terminated', {exact: true}).waitFor({timeout: 10000});
  await page.getByTestId('terminate-reason-shown').getByText('customer cancelled by phone').waitFor();
  await page.getByTestId('timers').getByText('cancelled', {exact: true}).waitFor();
  await page.getByTestId('timeline').getByText('Terminated', {exact: true}).waitFor();
  assert.equal(await page.getByTestId('terminate').count(), 0, 'no Terminate on an ended instance');
  const view = await call('GET', '/v1/workflows/order/o-3');
  assert.equal(view.body.status, 'terminated');
  await shot(page, '08-instance-terminated.png');

  // The list filter takes the ended statuses.
  await page.goto(server.url + '/ui/#/workflows?status=terminated');
  await page.getByTestId('instance-o-3').waitFor();
  assert.equal(await page.getByTestId('instances-table').locator('tbody tr').count(), 1);
});

test('no script errors on any page', () => {
  assert.deepEqual(pageErrors, []);
});
