/**
 * The order read model as a durable projection survives a SIGKILL: a few thousand orders are in
 * the store, the projection process (order-projection.ts `project`) is killed in the middle of
 * catching up, started again, and its model file must end equal to the store's own status index,
 * with every event applied exactly once. Run 1 is killed from outside; run 2 kills itself in the
 * worst place (its batch written, the checkpoint not stored); run 3 catches up. On PostgreSQL the
 * model is also kept in tables written in the batch transaction, where nothing is handed twice.
 *
 * Redis and PostgreSQL come from TIMEBOX_REDIS_URL / TIMEBOX_POSTGRES_URL, else the default local
 * ports, else throwaway servers, through the packages' own test helpers. Raft needs no server: the
 * cluster (three members) lives in whichever process opens its data folder, so the commands run in
 * this test process first, then the projection process opens the same folder, and after the kill
 * its next incarnation recovers the cluster from what the members had on disk.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Store } from '@timebox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findServer as findPostgres } from '../../packages/postgres/test/server.js';
import { findRedis } from '../../packages/redis/test/server.js';
import { openStore } from '../backend.js';
import { ORDER_STATUSES, orderStoreConfig, type OrderEvents } from '../order-domain.js';
import { checkReadModel } from '../order-read-model-check.js';
import { PostgresReadModel } from '../order-read-model-keepers.js';
import { OrderReadModel } from '../order-read-model.js';
import { runOrderTraffic, type TrafficSummary } from '../order-traffic.js';

const exampleDir = fileURLToPath(new URL('..', import.meta.url));
const ORDERS = Number(process.env.CRASH_TEST_ORDERS ?? 2_500);
const PROJECTION = 'orders-by-status';
/** A short lease, so the restarted runner takes over from the killed one within a second. */
const LEASE_MS = 1_000;

type Report = Record<string, number | boolean | string | null>;

/** One run of the projection process: its report lines as they come, and how it ended. */
class ProjectionProcess {
  readonly lines: { kind: string; fields: Report }[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly #child;
  #stderr = '';
  #waiters: (() => void)[] = [];

  constructor(file: string, env: NodeJS.ProcessEnv) {
    // node itself (not npx), so that the PID we kill is the process running the projection.
    this.#child = spawn(process.execPath, ['--import', 'tsx', 'order-projection.ts', 'project', file], {
      cwd: exampleDir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child.stderr.on('data', (chunk: Buffer) => (this.#stderr = (this.#stderr + chunk.toString()).slice(-4000)));
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      const space = line.indexOf(' ');
      if (space > 0) this.lines.push({ kind: line.slice(0, space), fields: JSON.parse(line.slice(space + 1)) as Report });
      for (const wake of this.#waiters.splice(0)) wake();
    });
    this.exited = new Promise((resolve, reject) => {
      this.#child.on('error', reject);
      this.#child.on('exit', (code, signal) => resolve({ code, signal }));
    });
    this.exited.finally(() => this.#waiters.splice(0).forEach((wake) => wake())).catch(() => undefined);
  }

  get stderr(): string {
    return this.#stderr;
  }

  line(kind: string): Report | undefined {
    return this.lines.find((line) => line.kind === kind)?.fields;
  }

  /** Waits (up to `timeoutMs`) for a report line satisfying `test`; fails if the process ends first. */
  async waitFor(what: string, test: (kind: string, fields: Report) => boolean, timeoutMs: number): Promise<Report> {
    const deadline = Date.now() + timeoutMs;
    let ended = false;
    void this.exited.then(() => (ended = true));
    for (;;) {
      const found = this.lines.find((line) => test(line.kind, line.fields));
      if (found !== undefined) return found.fields;
      if (ended) throw new Error(`the projection process ended before ${what}; stderr:\n${this.#stderr}`);
      if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms; stderr:\n${this.#stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  kill(): void {
    this.#child.kill('SIGKILL');
  }
}

/** Opens the store the projection process uses (same backend, prefix, server or raft folder), runs `use`, closes it. */
async function withStore<T>(env: NodeJS.ProcessEnv, use: (store: Store<OrderEvents>) => Promise<T>): Promise<T> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const store = await openStore(orderStoreConfig);
    try {
      return await use(store);
    } finally {
      await store.close();
    }
  } finally {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  }
}

const BACKENDS: Record<string, () => Promise<{ env: NodeJS.ProcessEnv; stop: () => Promise<void> }>> = {
  redis: async () => {
    const { url, server } = await findRedis();
    return { env: { TIMEBOX_REDIS_URL: url }, stop: async () => server?.stop() };
  },
  postgres: async () => {
    const server = await findPostgres();
    return { env: { TIMEBOX_POSTGRES_URL: server.url }, stop: () => server.stop() };
  },
  raft: async () => ({ env: {}, stop: async () => undefined }),
};

/** The cases: each backend with the file model; PostgreSQL also with the model in its tables, written in the batch transaction. */
const CASES = [
  { backend: 'redis', readModel: 'file' },
  { backend: 'postgres', readModel: 'file' },
  { backend: 'postgres', readModel: 'postgres' },
  { backend: 'raft', readModel: 'file' },
] as const;

describe.each(CASES)('the order projection killed while catching up, on $backend, read model in $readModel', ({ backend, readModel }) => {
  let server: { env: NodeJS.ProcessEnv; stop: () => Promise<void> } | undefined;
  let folder: string;
  const children: ProjectionProcess[] = [];

  beforeAll(async () => {
    server = await (BACKENDS[backend] as () => Promise<{ env: NodeJS.ProcessEnv; stop: () => Promise<void> }>)();
    folder = await mkdtemp(join(tmpdir(), `timebox-example-crash-${backend}-`));
  }, 60_000);

  afterAll(async () => {
    // A run left behind by a failed assertion must not outlive the test.
    for (const child of children) child.kill();
    await Promise.all(children.map((child) => child.exited.catch(() => undefined)));
    await server?.stop();
    if (folder !== undefined) await rm(folder, { recursive: true, force: true });
  }, 60_000);

  it(`ends with the read model equal to the status index after two SIGKILLs (${ORDERS} orders)`, { timeout: 120_000 }, async () => {
    const transactional = readModel === 'postgres';
    const started = Date.now();
    const lap = (what: string) => console.log(`[${backend}, ${readModel}] ${what} at ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const prefix = `timebox-example-crash-${randomUUID().slice(0, 8)}`;
    const env: NodeJS.ProcessEnv = {
      ...server?.env,
      TIMEBOX_BACKEND: backend,
      TIMEBOX_PREFIX: prefix,
      READ_MODEL: readModel,
      PROJECTION_LEASE_MS: String(LEASE_MS),
      ...(backend === 'raft' ? { TIMEBOX_RAFT_DIR: join(folder, 'raft') } : {}),
    };
    const runEnv = { ...process.env, ...env };
    const file = join(folder, 'orders-by-status.json');
    const start = (extra: NodeJS.ProcessEnv = {}) => {
      const child = new ProjectionProcess(file, { ...runEnv, ...extra });
      children.push(child);
      return child;
    };
    /** The model as kept (the file, or the committed rows), read afresh. */
    const kept = async () => {
      if (!transactional) return OrderReadModel.load(file);
      const keeper = await PostgresReadModel.open(server?.env.TIMEBOX_POSTGRES_URL as string, prefix);
      try {
        return await keeper.load();
      } finally {
        await keeper.close();
      }
    };
    const left = async () => ({ status: await withStore(env, (store) => store.projectionStatus(PROJECTION)), model: await kept() });
    /** Checks what a restarted run says it resumed from: the model and checkpoint left behind, not the start. */
    const expectResumed = (run: ProjectionProcess, before: Awaited<ReturnType<typeof left>>) => {
      const report = run.line('start') as Report;
      expect(report.rebuilt).toBe(false);
      expect(report.eventsApplied).toBe(before.model.eventsApplied);
      expect(report.lag).toBe(before.status.lag);
      return report;
    };

    // The commands first, from this process; the projection has not started.
    const summary: TrafficSummary = await withStore(env, (store) => runOrderTraffic(store, 'crash', ORDERS, 16));
    const total = summary.events;
    lap(`${total} events appended for ${ORDERS} orders`);

    // Run 1, killed by this test once its model holds a third of the events: the kill lands just
    // after a batch was written, while (or after) its checkpoint is stored.
    const first = start();
    await first.waitFor('progress past a third', (kind, f) => kind === 'progress' && (f.eventsApplied as number) >= total / 3, 60_000);
    first.kill();
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(first.line('caught-up')).toBeUndefined();
    const afterFirst = await left();
    lap(`run 1 killed: the model holds ${afterFirst.model.eventsApplied} events, ${afterFirst.status.lag} lie after the stored checkpoint`);
    // Killed in the middle: the checkpoint moved and events remain after it.
    expect(afterFirst.status.checkpoint).toBeDefined();
    expect(afterFirst.status.lag).toBeGreaterThan(0);
    expect(afterFirst.model.eventsApplied).toBeLessThan(total);
    // The model holds what the checkpoint covers: exactly (transactional), or possibly one batch more (file).
    if (transactional) expect(afterFirst.model.eventsApplied).toBe(total - afterFirst.status.lag);
    else expect(afterFirst.model.eventsApplied).toBeGreaterThanOrEqual(total - afterFirst.status.lag);

    // Run 2 takes over once the dead runner's lease ran out, and kills itself past two thirds in the
    // worst place: its batch written, its checkpoint not stored.
    const twoThirds = Math.ceil((total * 2) / 3);
    const second = start({ PROJECTION_CRASH_AFTER_EVENTS: String(twoThirds) });
    expect(await second.exited, second.stderr).toEqual({ code: null, signal: 'SIGKILL' });
    expectResumed(second, afterFirst);
    const afterSecond = await left();
    lap(
      `run 2 killed itself: the model holds ${afterSecond.model.eventsApplied} events, ${afterSecond.status.lag} lie after the checkpoint`,
    );
    if (transactional) {
      // The last batch died with its transaction: neither it nor its checkpoint was committed.
      expect(afterSecond.model.eventsApplied).toBe(total - afterSecond.status.lag);
      expect(afterSecond.model.eventsApplied).toBeLessThan(twoThirds);
    } else {
      // The last batch is in the file but not under the checkpoint.
      expect(afterSecond.model.eventsApplied).toBeGreaterThanOrEqual(twoThirds);
      expect(afterSecond.model.eventsApplied).toBeGreaterThan(total - afterSecond.status.lag);
    }

    // Run 3 resumes and stops when caught up.
    const third = start();
    const caughtUp = await third.waitFor('caught-up', (kind) => kind === 'caught-up', 60_000);
    expect((await third.exited).code, third.stderr).toBe(0);
    const resumed = expectResumed(third, afterSecond);
    lap(`run 3 caught up: ${JSON.stringify({ start: resumed, caughtUp })}`);
    // Exactly the events the model held beyond the stored checkpoint were handed again, and skipped:
    // a batch in the file's case, none in the transactional one.
    expect(caughtUp.duplicatesSkipped).toBe(afterSecond.model.eventsApplied + afterSecond.status.lag - total);
    if (transactional) expect(caughtUp.duplicatesSkipped).toBe(0);
    else expect(caughtUp.duplicatesSkipped).toBeGreaterThan(0);
    expect(caughtUp.eventsApplied).toBe(total);

    // The model now agrees with the store's status index, the aggregates' totals and the event count.
    const final = await kept();
    await withStore(env, async (store) => {
      expect(await checkReadModel(final, store, { summary })).toEqual([]);
      expect((await store.projectionStatus(PROJECTION)).lag).toBe(0);
      const counts = Object.fromEntries(final.byStatus().map((row) => [row.status, row.orders]));
      // Order i stops at status i mod 4 (see order-traffic.ts).
      const expected = Object.fromEntries(ORDER_STATUSES.map((status, k) => [status, Math.floor((ORDERS - k + 3) / 4)]));
      expect(counts).toEqual(expected);
    });
    lap('checked');
  });
});
