/**
 * The read side example: one process runs order commands, another keeps a read model (orders by
 * status, with totals) up to date as a durable projection of the store's log, kept in a file.
 *
 *   TIMEBOX_BACKEND=redis    npx -y pnpm@10.34.8 --filter @timebox/examples run order-projection
 *   TIMEBOX_BACKEND=postgres npx -y pnpm@10.34.8 --filter @timebox/examples run order-projection
 *
 * This process starts the projection `orders-by-status`, then starts the command process (this
 * same file with the argument `commands`) on a fresh store prefix, prints the read model as it
 * changes, and when the command process is done waits for the projection to catch up and checks the
 * read model against the store's own status index and the aggregates. On the memory and raft
 * backends (the default is memory) both sides run in this one process, since their store is not
 * shared with other processes.
 *
 * Why it survives a crash: after each batch the handler applies the events, writes the whole model
 * to its file atomically (temporary file, fsync, rename, fsync of the folder) and only then
 * resolves, and only then does the store save the projection's checkpoint. So the checkpoint never
 * runs ahead of the file; a process killed between the two gets the batch again when it restarts,
 * and the model skips what it has (each order remembers the last sequence it applied).
 *
 *   order-projection.ts project <model-file> [run]
 *
 * runs only the projection, from the model in `<model-file>` (created if missing) and the
 * projection's stored checkpoint, prints a `progress` line after each batch is on disk, and exits
 * once caught up with the log. `test/order-projection-crash.test.ts` kills it with SIGKILL in the
 * middle and starts it again.
 *
 * Environment: `TIMEBOX_BACKEND`, `TIMEBOX_PREFIX` (see backend.ts), `ORDERS` (default 40),
 * `TIMEBOX_READ_MODEL` (the model file of the demo; default a temporary one), `PROJECTION_LEASE_MS`
 * (how soon a restarted runner takes over from a dead one; default 10,000), and for `project` only
 * `PROJECTION_CRASH_AFTER_EVENTS` (fault injection: the process kills itself with SIGKILL once the
 * file holds that many events, after writing the file and before the checkpoint is stored).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Projection, Store } from '@timebox/core';
import { openStore } from './backend.js';
import { orderStoreConfig, type OrderEvents } from './order-domain.js';
import { formatCents } from './order-format.js';
import { checkReadModel } from './order-read-model-check.js';
import { OrderReadModel, type StatusRow } from './order-read-model.js';
import { runOrderTraffic, type TrafficSummary } from './order-traffic.js';

const ORDERS = Number(process.env.ORDERS ?? 40);
/** The projection's name: its checkpoint and lease are stored under it, in the store's backend. */
const PROJECTION = 'orders-by-status';
const LEASE_MS = Number(process.env.PROJECTION_LEASE_MS ?? 10_000);
/** `project` only: kill this process (SIGKILL) right after the file holds this many events, before the batch's checkpoint is stored. */
const CRASH_AFTER = Number(process.env.PROJECTION_CRASH_AFTER_EVENTS || Infinity);

function formatRows(rows: readonly StatusRow[]): string {
  return rows.map((row) => `${row.status} ${row.orders} (${formatCents(row.totalCents)})`).join(' · ');
}

/**
 * Loads the read model from `file`. A model and its projection's checkpoint belong together: when
 * the file is new but the store has a checkpoint (say the file was deleted), the projection is reset
 * to rebuild the model from the start of the log.
 */
async function loadReadModel(store: Store<OrderEvents>, file: string): Promise<{ model: OrderReadModel; rebuilt: boolean }> {
  const model = await OrderReadModel.load(file);
  const fresh = model.eventsApplied === 0 && model.statuses().size === 0;
  if (fresh && (await store.projectionStatus(PROJECTION)).checkpoint !== undefined) {
    await store.resetProjection(PROJECTION);
    return { model, rebuilt: true };
  }
  return { model, rebuilt: false };
}

/**
 * Keeps `model` as the durable projection `orders-by-status`: each batch is applied, the model is
 * saved to `file`, and only then does the handler resolve, so the checkpoint the store saves next
 * never covers an event the file does not hold.
 */
function projectOrders(
  store: Store<OrderEvents>,
  model: OrderReadModel,
  file: string,
  options: { readonly run?: string; readonly onBatch?: (events: number) => void } = {},
): Projection {
  return store.project(
    PROJECTION,
    {
      handleBatch: async (events) => {
        for (const event of events) model.apply(event);
        await model.save(file);
        options.onBatch?.(events.length);
      },
    },
    {
      aggregatePrefix: options.run === undefined ? undefined : ['order', options.run],
      leaseMs: LEASE_MS,
      onError: (error) => console.error(`  projection: ${error.message}${error.cause instanceof Error ? `: ${error.cause.message}` : ''}`),
    },
  );
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

/**
 * The projection alone: resumes from the file and the stored checkpoint, prints one line per batch
 * once it is on disk (`progress {"eventsApplied":…,"duplicatesSkipped":…}`), and exits when caught
 * up with the log as it stood at the start.
 */
async function projectOnly(file: string, run: string | undefined): Promise<void> {
  const store = await openStore(orderStoreConfig);
  try {
    const { model, rebuilt } = await loadReadModel(store, file);
    const status = await store.projectionStatus(PROJECTION);
    const report = (what: string, fields: object) => process.stdout.write(`${what} ${JSON.stringify(fields)}\n`);
    report('start', {
      eventsApplied: model.eventsApplied,
      orders: model.statuses().size,
      lag: status.lag,
      holder: status.holder ?? null,
      rebuilt,
    });
    const projection = projectOrders(store, model, file, {
      run,
      onBatch: (events) => {
        report('progress', { events, eventsApplied: model.eventsApplied, duplicatesSkipped: model.duplicatesSkipped });
        // Fault injection for the crash test: die in the worst place, with the batch in the file and its checkpoint not yet stored.
        if (model.eventsApplied >= CRASH_AFTER) process.kill(process.pid, 'SIGKILL');
      },
    });
    await projection.caughtUp();
    await projection.stop();
    report('caught-up', { eventsApplied: model.eventsApplied, duplicatesSkipped: model.duplicatesSkipped, orders: model.statuses().size });
  } finally {
    await store.close();
  }
}

async function demo(): Promise<void> {
  const backend = process.env.TIMEBOX_BACKEND ?? 'memory';
  // Redis and PostgreSQL are shared servers another process can reach; memory and raft (a cluster of this process's own) are not.
  const shared = backend === 'redis' || backend === 'postgres';
  // A fresh prefix per run, so the projection starts from nothing on a shared server.
  const prefix = process.env.TIMEBOX_PREFIX ?? `timebox-example-projection-${randomUUID().slice(0, 8)}`;
  process.env.TIMEBOX_PREFIX = prefix;
  const folder = process.env.TIMEBOX_READ_MODEL ? undefined : await mkdtemp(join(tmpdir(), 'timebox-example-read-model-'));
  const file = process.env.TIMEBOX_READ_MODEL || join(folder as string, 'orders-by-status.json');
  const run = Date.now().toString(36);
  const store = await openStore(orderStoreConfig);
  let projection: Projection | undefined;
  let ticker: NodeJS.Timeout | undefined;
  try {
    const { model } = await loadReadModel(store, file);
    projection = projectOrders(store, model, file, { run });
    let last = '';
    ticker = setInterval(() => {
      const line = formatRows(model.byStatus());
      if (line !== last) console.log(`  read model: ${line}`);
      last = line;
    }, 100);
    console.log(
      `Projection ${PROJECTION} started on ${backend} (prefix ${prefix}), keeping ${file}; ${shared ? 'starting the command process' : 'running the commands in this process'}…`,
    );
    const summary = shared ? await commandProcess(run, prefix) : await runOrderTraffic(store, run, ORDERS);
    await projection.caughtUp();
    clearInterval(ticker);
    const status = await store.projectionStatus(PROJECTION);
    console.log(
      `\nCommands appended ${summary.events} events for ${ORDERS} orders; the projection applied ${model.eventsApplied} (lag now ${status.lag}).`,
    );
    console.log('Orders by status, from the read model:');
    for (const row of model.byStatus()) {
      console.log(
        `  ${row.status.padEnd(10)} ${String(row.orders).padStart(3)} orders  ${String(row.items).padStart(4)} items  ${formatCents(row.totalCents).padStart(12)}`,
      );
    }
    // What a restart would start from: the file, not the memory of this process.
    const problems = await checkReadModel(await OrderReadModel.load(file), store, { run, summary });
    if (problems.length > 0) throw new Error(`the read model disagrees with the store:\n${problems.join('\n')}`);
    console.log(
      "Checked: the model file holds every order with the status the store's status index gives it, and the totals and event count the commands produced.",
    );
  } finally {
    clearInterval(ticker);
    await projection?.stop();
    await store.close();
    if (folder !== undefined) await rm(folder, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'commands') await commands(process.argv[3] as string);
else if (process.argv[2] === 'project') await projectOnly(process.argv[3] as string, process.argv[4]);
else await demo();
