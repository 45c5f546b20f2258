// The README walk-through through a client generated from openapi/openapi.json
// (openapi-typescript types, openapi-fetch calls), compiled with tsc --strict: every
// outcome, state and problem type is read through the generated types, with no cast
// and no hand-written type.
import { readFileSync } from "node:fs";
import createClient from "openapi-fetch";
import type { paths } from "./api.js";

const baseUrl = process.env.IRONFLOW_URL ?? "http://127.0.0.1:8080";
const key = process.env.IRONFLOW_API_KEY ?? "";
const client = createClient<paths>({ baseUrl, headers: key ? { Authorization: `Bearer ${key}` } : {} });

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`walk-through: ${what}`);
}

const id = `ts-${Date.now()}`;
const order = JSON.parse(readFileSync("../../../examples/order.json", "utf8"));

// Define the order type (201, or 200 when the same definition is already there).
const put = await client.PUT("/v1/workflow-types/{type}", { params: { path: { type: "order" } }, body: order });
check(put.data !== undefined && put.data.version >= 1, `define: ${put.response.status}`);

async function send(type: string, data: Record<string, unknown>, to: string = id) {
  const r = await client.POST("/v1/workflows/{type}/{id}/inputs", {
    params: { path: { type: "order", id: to } },
    body: { type, data },
  });
  // 200 is a decision, 202 a scheduled input: tell them apart by their fields.
  const decision = r.data !== undefined && "workflow" in r.data ? r.data : undefined;
  return { ...r, data: decision };
}

// Place: accepted, the workflow waits for payment.
const placed = await send("place", { total: 40, order_ref: `A-${id}` });
check(placed.data?.outcome === "accepted", `place: ${placed.response.status}`);
check(placed.data?.workflow?.state.name === "awaiting_payment", "place: state");
check(placed.data?.workflow?.completed_at === null, "place: completed_at is null");

// Underpay: rejected (409 JSON, a decision): the reason is typed.
const under = await send("pay", { amount: 30 });
check(under.response.status === 409, `underpay: ${under.response.status}`);
const rejected = under.error;
check(rejected !== undefined && "outcome" in rejected && rejected.outcome === "rejected", "underpay: outcome");
if (rejected !== undefined && "outcome" in rejected) {
  check(rejected.rejection?.reason === "payment is below the order total", "underpay: reason");
}

// Another order with the same order_ref while this one runs: a 409 problem, not a
// decision; its type is narrowed from the same 409.
const dup = await send("place", { total: 1, order_ref: `A-${id}` }, `dup-${id}`);
check(dup.response.status === 409, `duplicate: ${dup.response.status}`);
const conflict = dup.error;
check(conflict !== undefined && "type" in conflict && conflict.type === "unique_key_conflict", "duplicate: problem type");

// Pay, ship: accepted, the workflow is done and completed.
const paid = await send("pay", { amount: 40 });
check(paid.data?.workflow?.state.name === "paid", "pay: state");
const shipped = await send("shipped", {});
check(shipped.data?.workflow?.status === "completed", "ship: status");
check(typeof shipped.data?.workflow?.completed_at === "string", "ship: completed_at");

// Anything later: already_completed.
const late = await send("pay", { amount: 40 });
const lateBody = late.error;
check(lateBody !== undefined && "outcome" in lateBody && lateBody.outcome === "already_completed", "late: outcome");

// Read the workflow, its history and the state at version 1.
const wf = await client.GET("/v1/workflows/{type}/{id}", { params: { path: { type: "order", id } } });
check(wf.data?.version === 3 && wf.data.state.name === "done", "get: version 3, done");
// The history a page of one event at a time, following next_cursor.
const seen: string[] = [];
let cursor: string | undefined;
for (let pages = 0; ; pages++) {
  check(pages < 10, "events: next_cursor does not end");
  const page = await client.GET("/v1/workflows/{type}/{id}/events", {
    params: { path: { type: "order", id }, query: { limit: 1, cursor } },
  });
  check(page.data !== undefined, `events: ${page.response.status}`);
  seen.push(...(page.data?.items.map((e) => e.type) ?? []));
  cursor = page.data?.next_cursor;
  if (cursor === undefined) break;
}
check(seen.join(",") === "OrderPlaced,PaymentReceived,Shipped", `events: ${seen}`);
const v1 = await client.GET("/v1/workflows/{type}/{id}", { params: { path: { type: "order", id }, query: { at_version: 1 } } });
check(v1.data?.state.name === "awaiting_payment", "at_version=1");

// Terminate another order: terminated; terminating it again is already_completed.
const other = `t-${id}`;
await send("place", { total: 5, order_ref: `B-${id}` }, other);
const terminate = () =>
  client.POST("/v1/workflows/{type}/{id}/terminate", {
    params: { path: { type: "order", id: other } },
    body: { reason: "customer cancelled by phone" },
  });
const ended = await terminate();
check(ended.data?.workflow?.status === "terminated", `terminate: ${ended.response.status}`);
const again = await terminate();
const againBody = again.error;
check(againBody !== undefined && "outcome" in againBody && againBody.outcome === "already_completed", "terminate again");

// A problem: its type is one of the documented problem types.
const missing = await client.GET("/v1/workflows/{type}/{id}", { params: { path: { type: "order", id: "no-such-order" } } });
check(missing.error?.type === "workflow_not_found", `missing: ${missing.error?.type}`);

console.log("typescript (openapi-typescript + openapi-fetch): walk-through passed");
