import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Comparison, Trial, Workload } from '../harness.js';
import type { ChildConfig, ChildResult } from './child.js';

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url));
const BENCH_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Runs the child with `config`; resolves with what it printed. */
function runChild(config: ChildConfig): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', CHILD, JSON.stringify(config)], {
      cwd: BENCH_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`memory child (${config.kind}) exited with ${code}: ${err.trim()}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '') as ChildResult);
      } catch {
        reject(new Error(`memory child (${config.kind}) printed no result: ${out.trim()} ${err.trim()}`));
      }
    });
  });
}

/**
 * One child process per trial (and the harness runs one trial per repetition for memory
 * comparisons); `cleanup(prefix)` deletes what a store-backed child wrote.
 */
function childWorkload(label: string, base: Omit<ChildConfig, 'prefix'>, cleanup: (prefix: string) => Promise<void>): Workload {
  return {
    label,
    ops: base.count,
    async prepare(): Promise<Trial> {
      const prefix = `bench-rss-${randomUUID()}`;
      let result: ChildResult | undefined;
      return {
        async run() {
          result = await runChild({ ...base, prefix });
        },
        async verify() {
          if (result?.cached !== base.count)
            throw new Error(`${label}: the child held ${result?.cached} projections, expected ${base.count}`);
        },
        close: () => (base.kind === 'plain' || base.kind === 'emmett-memory' ? Promise.resolve() : cleanup(prefix)),
        counters: () => ({ rssBytes: result?.rssBytes ?? 0, heapBytes: result?.heapBytes ?? 0 }),
      };
    },
  };
}

/**
 * Resident memory of a process whose executor holds `count` projections (`cacheSize` = count),
 * against a process holding the same states as plain objects in a Map (and, with `emmett`,
 * Emmett's in-memory store holding the same streams).
 */
export function rssComparison(
  kind: 'memory' | 'redis' | 'postgres',
  options: { count: number; url?: string; cleanup?: (prefix: string) => Promise<void>; emmett?: boolean },
): Comparison {
  const { count } = options;
  const cleanup = options.cleanup ?? (async () => undefined);
  const base = { count, concurrency: 64, ...(options.url === undefined ? {} : { url: options.url }) };
  return {
    key: 'memory-rss',
    title: `resident memory of a full projection cache (${count.toLocaleString('en-US')} aggregates, cacheSize ${count.toLocaleString('en-US')})`,
    kind: 'memory',
    params: { aggregates: count, cacheSize: count },
    subject: childWorkload('executor cache', { ...base, kind }, cleanup),
    baselines: [
      childWorkload('plain Map of states', { ...base, kind: 'plain' }, cleanup),
      ...(options.emmett === true ? [childWorkload('Emmett in-memory store', { ...base, kind: 'emmett-memory' }, cleanup)] : []),
    ],
  };
}
