/**
 * The read side example: one process runs order commands, another keeps a read model (orders by
 * status, with totals) up to date as a durable projection of the store's log, kept in a file (or,
 * on PostgreSQL with `READ_MODEL=postgres`, in tables of the store's database).
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
 * With `READ_MODEL=postgres` (on `TIMEBOX_BACKEND=postgres`) the model lives in two tables instead,
 * written through the batch's own transaction (`transactional: true`), in which the store then
 * stores the checkpoint: the two commit together, so no event is handed twice.
 *
 *   order-projection.ts project <model-file> [run]
 *
 * runs only the projection, from the model in `<model-file>` (created if missing) and the
 * projection's stored checkpoint, prints a `progress` line after each batch is on disk, and exits
 * once caught up with the log. `test/order-projection-crash.test.ts` kills it with SIGKILL in the
 * middle and starts it again.
 *
 * Environment: `TIMEBOX_BACKEND`, `TIMEBOX_PREFIX` (see backend.ts), `ORDERS` (default 40),
 * `READ_MODEL` (`file`, the default, or `postgres`), `READ_MODEL_FILE` (the demo's model file;
 * default a temporary one), `PROJECTION_LEASE_MS` (how soon a restarted runner takes over from a
 * dead one; default 10,000), and for `project` only `PROJECTION_CRASH_AFTER_EVENTS` (fault
 * injection: the process kills itself with SIGKILL once the model holds that many events, after
 * the batch was written and before its checkpoint is stored).
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
import { FileReadModel, PostgresReadModel, type BatchReport, type ReadModelKeeper } from './order-read-model-keepers.js';
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

/** Where the read model is kept: `READ_MODEL=file` (default, any backend) or `postgres` (tables in the store's database). */
async function openKeeper(file: string): Promise<ReadModelKeeper> {
  const kind = process.env.READ_MODEL || 'file';
  if (kind === 'file') return new FileReadModel(file);
  if (kind === 'postgres' && process.env.TIMEBOX_BACKEND === 'postgres') {
    // The same server and prefix as the store (see backend.ts), so the model commits with the checkpoint.
    return PostgresReadModel.open(
      process.env.TIMEBOX_POSTGRES_URL || 'postgres://localhost:5432/postgres',
      process.env.TIMEBOX_PREFIX as string,
    );
  }
  throw new Error(`READ_MODEL=${kind}: supported are file (any backend) and postgres (with TIMEBOX_BACKEND=postgres)`);
}

/**
 * A read model and its projection's checkpoint belong together: when the kept model is empty but
 * the store has a checkpoint (say the file was deleted), the projection is reset so that it
 * rebuilds the model from the start of the log. Says whether it did.
 */
async function matchCheckpoint(store: Store<OrderEvents>, keeper: ReadModelKeeper): Promise<boolean> {
  const model = await keeper.load();
  const empty = model.eventsApplied === 0 && model.statuses().size === 0;
  if (empty && (await store.projectionStatus(PROJECTION)).checkpoint !== undefined) {
    await store.resetProjection(PROJECTION);
    return true;
  }
  return false;
}

/**
 * Runs the durable projection `orders-by-status` into `keeper`: each batch is applied and written
 * before the handler resolves (file), or in the transaction the checkpoint then commits in
 * (PostgreSQL), so the stored checkpoint never covers an event the model does not hold.
 */
function projectOrders(
  store: Store<OrderEvents>,
  keeper: ReadModelKeeper,
  options: { readonly run?: string; readonly onBatch?: (events: number, report: BatchReport) => void } = {},
): Projection {
  return store.project(
    PROJECTION,
    {
      handleBatch: async (events, context) => {
        const report = await keeper.handleBatch(events, context);
        options.onBatch?.(events.length, report);
      },
    },
    {
      aggregatePrefix: options.run === undefined ? undefined : ['order', options.run],
      leaseMs: LEASE_MS,
      transactional: keeper.transactional,
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
 * The projection alone: resumes from the kept model and the stored checkpoint, prints one line per
 * batch once it is written (`progress {"events":…,"eventsApplied":…,"duplicatesSkipped":…}`), and
 * exits when caught up with the log as it stood at the start.
 */
async function projectOnly(file: string, run: string | undefined): Promise<void> {
  const store = await openStore(orderStoreConfig);
  const keeper = await openKeeper(file);
  try {
    const rebuilt = await matchCheckpoint(store, keeper);
    const model = await keeper.load();
    const status = await store.projectionStatus(PROJECTION);
    const report = (what: string, fields: object) => process.stdout.write(`${what} ${JSON.stringify(fields)}\n`);
    report('start', {
      eventsApplied: model.eventsApplied,
      orders: model.statuses().size,
      lag: status.lag,
      holder: status.holder ?? null,
      rebuilt,
    });
    let last: BatchReport = { eventsApplied: model.eventsApplied, duplicatesSkipped: 0 };
    const projection = projectOrders(store, keeper, {
      run,
      onBatch: (events, counts) => {
        last = counts;
        report('progress', { events, ...counts });
        // Fault injection for the crash test: die in the worst place, with the batch written and its checkpoint not yet stored.
        if (counts.eventsApplied >= CRASH_AFTER) process.kill(process.pid, 'SIGKILL');
      },
    });
    // A handler that keeps failing is reported on stderr (onError); give up on it eventually.
    await projection.caughtUp({ signal: AbortSignal.timeout(300_000) });
    await projection.stop();
    report('caught-up', { ...last, orders: (await keeper.load()).statuses().size });
  } finally {
    await keeper.close();
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
  const folder = process.env.READ_MODEL_FILE ? undefined : await mkdtemp(join(tmpdir(), 'timebox-example-read-model-'));
  const file = process.env.READ_MODEL_FILE || join(folder as string, 'orders-by-status.json');
  const run = Date.now().toString(36);
  const store = await openStore(orderStoreConfig);
  const keeper = await openKeeper(file).catch(async (error: unknown) => {
    await store.close();
    throw error;
  });
  let projection: Projection | undefined;
  let ticker: NodeJS.Timeout | undefined;
  try {
    await matchCheckpoint(store, keeper);
    projection = projectOrders(store, keeper, { run });
    let last = '';
    let showing = false;
    ticker = setInterval(() => {
      if (showing) return;
      showing = true;
      void keeper
        .load()
        .then((model) => {
          const line = formatRows(model.byStatus());
          if (line !== last) console.log(`  read model: ${line}`);
          last = line;
        })
        .catch(() => undefined)
        .finally(() => (showing = false));
    }, 100);
    console.log(
      `Projection ${PROJECTION} started on ${backend} (prefix ${prefix}), keeping the read model in ${keeper.where}; ${shared ? 'starting the command process' : 'running the commands in this process'}…`,
    );
    const summary = shared ? await commandProcess(run, prefix) : await runOrderTraffic(store, run, ORDERS);
    await projection.caughtUp({ signal: AbortSignal.timeout(60_000) });
    clearInterval(ticker);
    // What a restart would start from: what the file or the tables hold, not this process's memory.
    const model = keeper instanceof FileReadModel ? await OrderReadModel.load(file) : await keeper.load();
    const status = await store.projectionStatus(PROJECTION);
    console.log(
      `\nCommands appended ${summary.events} events for ${ORDERS} orders; the read model applied ${model.eventsApplied} (lag now ${status.lag}).`,
    );
    console.log('Orders by status, from the read model:');
    for (const row of model.byStatus()) {
      console.log(
        `  ${row.status.padEnd(10)} ${String(row.orders).padStart(3)} orders  ${String(row.items).padStart(4)} items  ${formatCents(row.totalCents).padStart(12)}`,
      );
    }
    const problems = await checkReadModel(model, store, { run, summary });
    if (problems.length > 0) throw new Error(`the read model disagrees with the store:\n${problems.join('\n')}`);
    console.log(
      "Checked: the kept read model holds every order with the status the store's status index gives it, and the totals and event count the commands produced.",
    );
  } finally {
    clearInterval(ticker);
    await projection?.stop();
    await keeper.close();
    await store.close();
    if (folder !== undefined) await rm(folder, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'commands') await commands(process.argv[3] as string);
else if (process.argv[2] === 'project') await projectOnly(process.argv[3] as string, process.argv[4]);
else await demo();
