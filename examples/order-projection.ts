/**
 * The event hub example: one process runs order commands, another keeps a read model (orders by
 * status, with totals) up to date from the events the first one appends, delivered by the hub.
 *
 *   TIMEBOX_BACKEND=redis    npx -y pnpm@10.34.8 --filter @timebox/examples run order-projection
 *   TIMEBOX_BACKEND=postgres npx -y pnpm@10.34.8 --filter @timebox/examples run order-projection
 *
 * This process subscribes, then starts the command process (this same file with the argument
 * `commands`) on a fresh store prefix, prints the read model as it changes, and when the command
 * process is done checks the read model against the store's own status index. On the memory
 * backend (the default) both sides run in this one process, since memory is not shared.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Store } from '@timebox/core';
import { openStore } from './backend.js';
import { ORDER_STATUSES, orderStoreConfig, type OrderEvents } from './order-domain.js';
import { formatCents } from './order-format.js';
import { OrderReadModel, type StatusRow } from './order-read-model.js';
import { runOrderTraffic, type TrafficSummary } from './order-traffic.js';

const ORDERS = Number(process.env.ORDERS ?? 40);

function formatRows(rows: readonly StatusRow[]): string {
  return rows.map((row) => `${row.status} ${row.orders} (${formatCents(row.totalCents)})`).join(' · ');
}

/** The command side: runs the traffic and reports what it did as one JSON line on stdout. */
async function commands(run: string): Promise<void> {
  const store = await openStore(orderStoreConfig);
  try {
    const summary = await runOrderTraffic(store, run, ORDERS);
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    await store.close();
  }
}

/** Starts the command side as another OS process on the same store prefix; resolves with its report. */
function commandProcess(run: string, prefix: string): Promise<TrafficSummary> {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), 'commands', run], {
    env: { ...process.env, TIMEBOX_PREFIX: prefix },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`the command process exited with code ${code}`));
      else resolve(JSON.parse(output.trim().split('\n').at(-1) as string) as TrafficSummary);
    });
  });
}

/** Waits until the read model has folded `events` events. */
async function caughtUp(model: OrderReadModel, events: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (model.eventsSeen < events) {
    if (Date.now() > deadline) throw new Error(`the read model saw ${model.eventsSeen} of ${events} events within 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Checks the read model against the commands' final states and the store's status index. */
async function verify(model: OrderReadModel, summary: TrafficSummary, store: Store<OrderEvents>, run: string): Promise<string[]> {
  const problems: string[] = [];
  for (const [key, state] of Object.entries(summary.orders)) {
    const held = model.statusOf(key.split('/'));
    if (held !== state.status) problems.push(`${key}: read model says ${String(held)}, the aggregate is ${state.status}`);
  }
  for (const status of ORDER_STATUSES) {
    const indexed = (await store.listAggregatesByStatus(status)).filter((entry) => entry.id[1] === run).length;
    const row = model.byStatus().find((r) => r.status === status) as StatusRow;
    if (indexed !== row.orders) problems.push(`${status}: read model counts ${row.orders}, the status index ${indexed}`);
  }
  return problems;
}

async function projection(): Promise<void> {
  const backend = process.env.TIMEBOX_BACKEND ?? 'memory';
  // Redis and PostgreSQL are shared servers another process can reach; memory and raft (a cluster of this process's own) are not.
  const shared = backend === 'redis' || backend === 'postgres';
  // A fresh prefix per run, so the read model starts from nothing on a shared server.
  const prefix = process.env.TIMEBOX_PREFIX ?? `timebox-example-projection-${randomUUID().slice(0, 8)}`;
  process.env.TIMEBOX_PREFIX = prefix;
  const run = Date.now().toString(36);
  const store = await openStore(orderStoreConfig);
  const model = new OrderReadModel();
  let last = '';
  const ticker = setInterval(() => {
    const line = formatRows(model.byStatus());
    if (line !== last) console.log(`  read model: ${line}`);
    last = line;
  }, 100);
  try {
    await store.subscribe(model.handler, { aggregatePrefix: ['order', run], onError: (error) => console.error(`  hub: ${error.message}`) });
    console.log(
      `Read model subscribed on ${backend} (prefix ${prefix}); ${shared ? 'starting the command process' : 'running the commands in this process'}…`,
    );
    const summary = shared ? await commandProcess(run, prefix) : await runOrderTraffic(store, run, ORDERS);
    await caughtUp(model, summary.events);
    clearInterval(ticker);
    console.log(`\nCommands appended ${summary.events} events for ${ORDERS} orders; the read model folded ${model.eventsSeen}.`);
    console.log('Orders by status, from the read model:');
    for (const row of model.byStatus()) {
      console.log(
        `  ${row.status.padEnd(10)} ${String(row.orders).padStart(3)} orders  ${String(row.items).padStart(4)} items  ${formatCents(row.totalCents).padStart(12)}`,
      );
    }
    const problems = await verify(model, summary, store, run);
    if (problems.length > 0) throw new Error(`the read model disagrees with the store:\n${problems.join('\n')}`);
    console.log("Checked: every order's status matches its aggregate, and every count matches the store's status index.");
  } finally {
    clearInterval(ticker);
    await store.close();
  }
}

if (process.argv[2] === 'commands') await commands(process.argv[3] as string);
else await projection();
