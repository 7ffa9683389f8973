/**
 * Append throughput of a raft cluster on loopback (backend issue 6): `concurrency` appends in
 * flight, each worker appending to its own aggregates (so every expected sequence is known and no
 * append conflicts), `aggregates` aggregates in all. Prints appends/s and p50/p99 latency.
 *
 * Not a test: run it by hand from packages/raft.
 *
 *   npx tsx bench/append-throughput.ts                       # 3 members in this process, stores on the leader
 *   npx tsx bench/append-throughput.ts --members 1           # a single member
 *   npx tsx bench/append-throughput.ts --spread              # stores on every member, workers dealt round-robin
 *   npx tsx bench/append-throughput.ts --processes           # 3 members as 3 OS processes (load runs in the leader's)
 *   npx tsx bench/append-throughput.ts --processes --spread  # ... load spread over the 3 processes
 *   npx tsx bench/append-throughput.ts --tls                 # mutual TLS between the members (certificates made by openssl)
 *
 * Options: --ops N (default 20000), --concurrency N (64), --aggregates N (1000), --warmup N (2000),
 * --tick-ms N (member tickMs, default the member default), --rounds N (1; every round is printed),
 * --phases (WAL save and state apply timings per member), --memory (this process's memory after each round).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { createStore, type AggregateId, type Store } from '@timebox/core';
import { freeLoopbackPort } from '../src/local-cluster.js';
import { RaftMember } from '../src/raft-member.js';
import type { RaftMemberOptions, RaftServerAddress } from '../src/options.js';
import type { RaftTlsOptions } from '../src/transport/tls-credentials.js';
import { TestCa } from '../test/support/certificates.js';

interface Args {
  members: number;
  spread: boolean;
  processes: boolean;
  ops: number;
  concurrency: number;
  aggregates: number;
  warmup: number;
  tickMs: number | undefined;
  rounds: number;
  phases: boolean;
  memory: boolean;
  tls: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = {
    members: 3,
    spread: false,
    processes: false,
    ops: 20_000,
    concurrency: 64,
    aggregates: 1_000,
    warmup: 2_000,
    tickMs: undefined,
    rounds: 1,
    phases: false,
    memory: false,
    tls: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const number = (): number => {
      const value = Number(argv[++i]);
      if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${flag} needs a non-negative integer`);
      return value;
    };
    switch (flag) {
      case '--members':
        args.members = number();
        break;
      case '--spread':
        args.spread = true;
        break;
      case '--processes':
        args.processes = true;
        break;
      case '--ops':
        args.ops = number();
        break;
      case '--concurrency':
        args.concurrency = number();
        break;
      case '--aggregates':
        args.aggregates = number();
        break;
      case '--warmup':
        args.warmup = number();
        break;
      case '--tick-ms':
        args.tickMs = number();
        break;
      case '--rounds':
        args.rounds = number();
        break;
      case '--phases':
        args.phases = true;
        break;
      case '--memory':
        args.memory = true;
        break;
      case '--tls':
        args.tls = true;
        break;
      default:
        throw new Error(`unknown flag ${flag}`);
    }
  }
  if (args.aggregates < args.concurrency) throw new Error('--aggregates must be at least --concurrency (each worker owns its aggregates)');
  if (args.processes && args.members < 2) args.processes = false;
  return args;
}

/** Per-member TLS options (a CA and one certificate per member, files in `dir`), or none without `--tls`. */
async function tlsFor(args: Args, dir: string, servers: readonly RaftServerAddress[]): Promise<Map<string, RaftTlsOptions>> {
  const tls = new Map<string, RaftTlsOptions>();
  if (!args.tls) return tls;
  const ca = await TestCa.create('bench-ca', dir);
  for (const server of servers) {
    const files = await ca.issue(server.id);
    tls.set(server.id, { key: files.keyFile, cert: files.certFile, ca: ca.certFile });
  }
  return tls;
}

// ------------------------------------------------------------------ the load

/** What one load run measured. */
interface LoadResult {
  readonly ops: number;
  readonly ms: number;
  readonly latencies: number[];
  /** CPU time (user + system) this process used during the run, in ms. */
  readonly cpuMs: number;
}

/**
 * Runs `workers` of the `concurrency` workers over `stores` (worker w uses store w % stores.length):
 * worker w owns aggregates a ≡ w (mod concurrency) and appends to them in turn. `next` holds each
 * aggregate's next sequence, carried over between runs.
 */
async function runLoad(
  stores: readonly Store[],
  workers: readonly number[],
  concurrency: number,
  ids: readonly AggregateId[],
  next: number[],
  opsTotal: number,
): Promise<LoadResult> {
  const latencies: number[] = [];
  const perWorker = Math.ceil(opsTotal / concurrency);
  let ops = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    workers.map(async (w) => {
      const store = stores[w % stores.length] as Store;
      const mine: number[] = [];
      for (let a = w; a < ids.length; a += concurrency) mine.push(a);
      for (let k = 0; k < perWorker; k++) {
        const a = mine[k % mine.length] as number;
        const t0 = performance.now();
        // A conflict (VersionConflictError) would mean the bench's sequences are wrong: it ends the run.
        await store.appendEvents(ids[a] as AggregateId, next[a] as number, [{ type: 'Incremented', data: { by: 1 } }]);
        latencies.push(performance.now() - t0);
        next[a] = (next[a] as number) + 1;
        ops++;
      }
    }),
  );
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return { ops, ms, latencies, cpuMs: (used.user + used.system) / 1000 };
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

function summarize(label: string, results: readonly LoadResult[], clusterCpuMs?: number): string {
  const ops = results.reduce((sum, r) => sum + r.ops, 0);
  const ms = Math.max(...results.map((r) => r.ms));
  const latencies = results.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const rate = Math.round((ops / ms) * 1000);
  // CPU per append, over every process of the cluster: steadier than the rate on a busy machine.
  const cpuUs = ((clusterCpuMs ?? results.reduce((sum, r) => sum + r.cpuMs, 0)) * 1000) / ops;
  return `${label}: ${rate.toLocaleString('en-US')} appends/s (${ops} in ${Math.round(ms)} ms), p50 ${quantile(latencies, 0.5).toFixed(2)} ms, p99 ${quantile(latencies, 0.99).toFixed(2)} ms, CPU ${Math.round(cpuUs)} µs/append`;
}

// ------------------------------------------------------------------ phase timing (--phases)

interface PhaseStat {
  calls: number;
  ms: number;
  items: number;
}

const phaseStats = new Map<string, PhaseStat>();

/** Wraps `target[method]` (an async method) to add its calls, time and batch size to `phaseStats[key]`. */
function timePhase<T extends object>(target: T, method: string, key: string, items: (args: unknown[]) => number): void {
  const record = target as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const original = (record[method] as (...args: unknown[]) => Promise<unknown>).bind(target);
  record[method] = async (...args: unknown[]) => {
    const started = performance.now();
    try {
      return await original(...args);
    } finally {
      const stat = phaseStats.get(key) ?? { calls: 0, ms: 0, items: 0 };
      stat.calls++;
      stat.ms += performance.now() - started;
      stat.items += items(args);
      phaseStats.set(key, stat);
    }
  };
}

/** Times the member's WAL saves and state applies (reaching into the server's options: a bench-only peek). */
function instrument(member: RaftMember): void {
  const log = (member.server as unknown as { options: { log: object } }).options.log;
  timePhase(log, 'save', `${member.id} wal save`, (args) => (args[0] as { entries: unknown[] }).entries.length);
  timePhase(member.state, 'apply', `${member.id} state apply`, (args) => (args[0] as unknown[]).length);
}

function printPhases(): void {
  for (const [key, stat] of [...phaseStats].sort()) {
    console.log(
      `  ${key}: ${stat.calls} calls, ${(stat.ms / stat.calls).toFixed(2)} ms each, ${(stat.items / stat.calls).toFixed(1)} entries each`,
    );
  }
  phaseStats.clear();
}

/** This process's memory: resident, V8 heap, and buffers outside it. */
function printMemory(): void {
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
  const memory = process.memoryUsage();
  console.log(`  memory: rss ${mib(memory.rss)}, heap used ${mib(memory.heapUsed)}, array buffers ${mib(memory.arrayBuffers)}`);
}

// ------------------------------------------------------------------ one process

async function waitForLeader(members: readonly RaftMember[]): Promise<number> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const i = members.findIndex((member) => member.status().role === 'leader');
    if (i >= 0) return i;
    if (Date.now() > deadline) throw new Error('no leader within 30 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function inProcess(args: Args): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'timebox-raft-bench-'));
  const servers: RaftServerAddress[] = [];
  for (let i = 0; i < args.members; i++) servers.push({ id: `n${i + 1}`, address: `127.0.0.1:${await freeLoopbackPort()}` });
  const members: RaftMember[] = [];
  const tls = await tlsFor(args, dir, servers);
  try {
    for (const server of servers) {
      const options: RaftMemberOptions = {
        localId: server.id,
        address: server.address,
        dataDir: join(dir, server.id),
        servers,
        ...(args.tickMs === undefined ? {} : { tickMs: args.tickMs }),
        tls: tls.get(server.id),
      };
      members.push(await RaftMember.open(options));
      if (args.phases) instrument(members.at(-1) as RaftMember);
    }
    const leader = await waitForLeader(members);
    const storeMembers = args.spread ? members : [members[leader] as RaftMember];
    const stores = storeMembers.map((member) => createStore(member.backend()));
    await Promise.all(stores.map((store) => store.ready()));
    const ids: AggregateId[] = Array.from({ length: args.aggregates }, (_, i) => ['bench', String(i)]);
    const next = ids.map(() => 0);
    const workers = Array.from({ length: args.concurrency }, (_, w) => w);
    const label = `${args.members} member${args.members === 1 ? '' : 's'} in one process, stores on ${args.spread ? 'every member' : 'the leader'}, ${args.concurrency} in flight over ${args.aggregates} aggregates${args.tls ? ', mutual TLS' : ''}`;
    if (args.warmup > 0) await runLoad(stores, workers, args.concurrency, ids, next, args.warmup);
    phaseStats.clear();
    for (let round = 0; round < args.rounds; round++) {
      console.log(summarize(label, [await runLoad(stores, workers, args.concurrency, ids, next, args.ops)]));
      if (args.memory) printMemory();
      if (args.phases) printPhases();
    }
    await Promise.all(stores.map((store) => store.close()));
  } finally {
    await Promise.all(members.map((member) => member.close()));
    await rm(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ several processes

type ToChild =
  | { type: 'run'; workers: number[]; concurrency: number; aggregates: number; ops: number; warmup: boolean }
  | { type: 'reset-phases' }
  | { type: 'close' };
type FromChild = { type: 'ready'; role: string } | { type: 'done'; result: LoadResult } | { type: 'error'; message: string };

interface ChildConfig {
  readonly options: RaftMemberOptions;
  readonly phases: boolean;
}

/** A member process: opens its member and a store, runs the loads it is sent, reports back. */
async function childMain(config: ChildConfig): Promise<void> {
  const send = (message: FromChild): void => void process.send?.(message);
  const member = await RaftMember.open(config.options);
  if (config.phases) instrument(member);
  const store = createStore(member.backend());
  await store.ready();
  send({ type: 'ready', role: member.status().role });
  let next: number[] = [];
  let ids: AggregateId[] = [];
  process.on('message', (message: ToChild) => {
    void (async () => {
      try {
        if (message.type === 'reset-phases') {
          phaseStats.clear();
          return;
        }
        if (message.type === 'close') {
          if (config.phases) printPhases();
          await store.close();
          await member.close();
          process.exit(0);
        }
        if (ids.length !== message.aggregates) {
          ids = Array.from({ length: message.aggregates }, (_, i) => ['bench', String(i)]);
          next = ids.map(() => 0);
        }
        const result = await runLoad([store], message.workers, message.concurrency, ids, next, message.ops);
        send({ type: 'done', result });
      } catch (error) {
        send({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
      }
    })();
  });
}

function nextMessage(child: ChildProcess, type: FromChild['type']): Promise<FromChild> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: FromChild): void => {
      if (message.type === 'error') {
        cleanup();
        reject(new Error(`member process failed: ${message.message}`));
      } else if (message.type === type) {
        cleanup();
        resolve(message);
      }
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`member process exited with ${code}`));
    };
    const cleanup = (): void => {
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

/** CPU time (user + system) process `pid` used so far, in ms, from /proc (Linux; 0 elsewhere). */
function processCpuMs(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the line, in clock ticks (100 per second on Linux).
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

async function multiProcess(args: Args): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'timebox-raft-bench-'));
  const servers: RaftServerAddress[] = [];
  for (let i = 0; i < args.members; i++) servers.push({ id: `n${i + 1}`, address: `127.0.0.1:${await freeLoopbackPort()}` });
  const script = fileURLToPath(import.meta.url);
  const children: ChildProcess[] = [];
  const tls = await tlsFor(args, dir, servers);
  try {
    for (const server of servers) {
      const options: RaftMemberOptions = {
        localId: server.id,
        address: server.address,
        dataDir: join(dir, server.id),
        servers,
        ...(args.tickMs === undefined ? {} : { tickMs: args.tickMs }),
        tls: tls.get(server.id),
      };
      const config: ChildConfig = { options, phases: args.phases };
      const extra = process.env.BENCH_CHILD_NODE_OPTIONS?.split(' ').filter((s) => s !== '') ?? [];
      children.push(fork(script, ['--child', JSON.stringify(config)], { execArgv: ['--import', 'tsx', ...extra], stdio: 'inherit' }));
    }
    const ready = await Promise.all(children.map((child) => nextMessage(child, 'ready')));
    let leader = ready.findIndex((message) => message.type === 'ready' && message.role === 'leader');
    if (leader < 0) leader = 0;
    const label = `${args.members} members as ${args.members} processes, load ${args.spread ? 'spread over every process' : "in the leader's process"}, ${args.concurrency} in flight over ${args.aggregates} aggregates${args.tls ? ', mutual TLS' : ''}`;
    const round = async (ops: number, warmup: boolean): Promise<LoadResult[]> => {
      const targets = args.spread ? children.map((_, i) => i) : [leader];
      const waits = targets.map((t, k) => {
        const child = children[t] as ChildProcess;
        const workers = Array.from({ length: args.concurrency }, (_, w) => w).filter((w) => w % targets.length === k);
        const done = nextMessage(child, 'done');
        child.send({ type: 'run', workers, concurrency: args.concurrency, aggregates: args.aggregates, ops, warmup } satisfies ToChild);
        return done;
      });
      return (await Promise.all(waits)).map((message) => (message as { result: LoadResult }).result);
    };
    if (args.warmup > 0) await round(args.warmup, true);
    for (const child of children) child.send({ type: 'reset-phases' } satisfies ToChild);
    for (let r = 0; r < args.rounds; r++) {
      const cpuBefore = children.map((child) => processCpuMs(child.pid));
      const results = await round(args.ops, false);
      const cpuMs = children.reduce((sum, child, i) => sum + processCpuMs(child.pid) - (cpuBefore[i] as number), 0);
      console.log(summarize(label, results, cpuMs));
    }
  } finally {
    for (const child of children) child.send({ type: 'close' } satisfies ToChild);
    await Promise.all(
      children.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)))),
    );
    await rm(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ main

const argv = process.argv.slice(2);
if (argv[0] === '--child') {
  await childMain(JSON.parse(argv[1] as string) as ChildConfig);
} else {
  const args = parseArgs(argv);
  if (args.processes) await multiProcess(args);
  else await inProcess(args);
}
