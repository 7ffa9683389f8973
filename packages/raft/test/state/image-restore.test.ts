import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { RaftProtocolError } from '../../src/consensus/errors.js';
import type { CommittedEntry } from '../../src/node/ports.js';
import { MaterializedState } from '../../src/state/materialized-state.js';
import { append, entries, T0, tempStates } from './temp-state.js';

const states = tempStates();
const here = fileURLToPath(new URL('.', import.meta.url));
const packageRoot = join(here, '..', '..');

/** Entries from `firstIndex` creating `count` aggregates named `${prefix}<n>`, each with a status and a label. */
function aggregates(firstIndex: number, prefix: string, count: number): CommittedEntry[] {
  return entries(
    firstIndex,
    Array.from({ length: count }, (_, n) =>
      append([prefix, `${n}`], 0, 2, { status: n % 2 === 0 ? 'open' : 'done', statusTime: T0 + n, labels: { region: `r${n % 5}` } }),
    ),
  );
}

/** A state of `count` aggregates under ["a"], its image and the index the image is at. */
async function source(count: number): Promise<{ image: Uint8Array; index: number }> {
  const state = states.open();
  await state.apply(aggregates(1, 'a', count));
  return { image: await state.exportSnapshot(), index: state.appliedIndex() };
}

/** A state holding 300 other aggregates (under ["z"]), which a restore must replace. */
async function occupied(options: Parameters<typeof states.open>[0] = {}, dir?: string): Promise<MaterializedState> {
  const state = states.open(options, dir);
  await state.apply(aggregates(1, 'z', 300));
  return state;
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('the stepped snapshot restore', () => {
  it('replaces the whole state in many small steps, with the image exactly', async () => {
    const { image, index } = await source(2000);
    let steps = 0;
    const target = await occupied({ restoreChunking: { budgetMs: 0, onStep: () => steps++ } });
    await target.restoreSnapshot(image, index);
    // A step every 256 pairs at most: many commits, not one.
    expect(steps).toBeGreaterThan(20);
    expect(target.appliedIndex()).toBe(index);
    expect(target.listAggregates(['z'], { limit: 10 })).toEqual({ items: [] });
    expect(target.listAggregates(['a'], { limit: 5000 }).items).toHaveLength(2000);
    expect(Buffer.from(await target.exportSnapshot()).equals(Buffer.from(image))).toBe(true);
    // It goes on from there like the state it copies.
    const later = aggregates(index + 1, 'b', 3);
    await target.apply(later);
    expect(target.listAggregates(['b'], { limit: 10 }).items).toHaveLength(3);
    // The proposals the image remembers (2000 IDs over many buckets, reloaded in steps too) are
    // answered from the table when they come again, not applied twice.
    const retried = await target.apply(
      entries(index + 4, [
        { command: append(['a', '1500'], 0, 2), proposalId: 'p1501' },
        { command: append(['c'], 0, 1), proposalId: 'p100' },
        { command: append(['c'], 0, 1), proposalId: 'never-seen' },
      ]),
    );
    expect(retried.get('p1501')).toEqual({ type: 'appended', firstPosition: 3001, count: 2 });
    expect(retried.get('p100')).toEqual({ type: 'appended', firstPosition: 199, count: 2 });
    expect(retried.get('never-seen')).toMatchObject({ type: 'appended', count: 1 });
    expect(target.loadEvents(['a', '1500'], 0)).toHaveLength(2);
    expect(target.loadEvents(['c'], 0)).toHaveLength(1);
  });

  it('reads wait while it runs: they see the state before it or after it, never part of it', async () => {
    const { image, index } = await source(2000);
    let exported: ReturnType<MaterializedState['exportImage']> | undefined;
    // An export asked for once the restore has written its first step.
    const target = await occupied({ restoreChunking: { budgetMs: 0, onStep: () => void (exported ??= target.exportImage()) } });
    let finished = false;
    const restoring = target.restoreSnapshot(image, index).finally(() => {
      finished = true;
    });
    const seen = new Set<string>();
    let turns = 0;
    while (!finished) {
      await target.whenCommitted();
      // What a backend read does after its read point: one synchronous read of the state.
      const a = target.listAggregates(['a'], { limit: 5000 }).items.length;
      const z = target.listAggregates(['z'], { limit: 5000 }).items.length;
      seen.add(`${a}/${z}`);
      turns++;
      await nextTurn();
    }
    await restoring;
    // The restore spanned many turns of the event loop, and every read saw a whole state.
    expect(turns).toBeGreaterThan(5);
    expect(
      [...seen].every((shape) => shape === '0/300' || shape === '2000/0'),
      [...seen].join(', '),
    ).toBe(true);
    expect(target.listAggregates(['a'], { limit: 5000 }).items).toHaveLength(2000);
    // An export asked for meanwhile is of the restored state, at the restored index.
    expect(exported).toBeDefined();
    const image2 = await exported!;
    expect(image2.index).toBe(index);
    expect(Buffer.from(image2.data).equals(Buffer.from(image))).toBe(true);
  });

  it('a corrupt image is refused before anything is touched', async () => {
    const { image, index } = await source(200);
    const target = await occupied();
    const before = Buffer.from(await target.exportSnapshot());
    const truncated = image.subarray(0, image.length - 1);
    await expect(target.restoreSnapshot(truncated, index)).rejects.toBeInstanceOf(RaftProtocolError);
    await expect(target.restoreSnapshot(truncated, index)).rejects.toThrow(/corrupt raft state snapshot image/);
    await expect(target.restoreSnapshot(Uint8Array.from([1, 2, 3, 4]), index)).rejects.toThrow(/bad header/);
    expect(target.appliedIndex()).toBe(300);
    expect(Buffer.from(await target.exportSnapshot()).equals(before)).toBe(true);
  });

  it('a process SIGKILLed midway leaves a state that reopens below the snapshot, and restores again', { timeout: 120_000 }, async () => {
    const { image, index } = await source(3000);
    const dir = states.dir();
    const prior = await occupied({}, dir);
    await prior.close();
    const imageFile = join(states.dir(), 'image.bin');
    writeFileSync(imageFile, image);

    const output = await killMidway(dir, imageFile, index, 5);
    expect(output).not.toContain('restored');

    // Opens (no layout error), and says it is behind the snapshot: a member restores it again.
    const reopened = states.open({}, dir);
    expect(reopened.appliedIndex()).toBeLessThan(index);
    await reopened.restoreSnapshot(image, index);
    expect(reopened.appliedIndex()).toBe(index);
    expect(reopened.listAggregates(['z'], { limit: 10 })).toEqual({ items: [] });
    expect(Buffer.from(await reopened.exportSnapshot()).equals(Buffer.from(image))).toBe(true);
  });
});

/** Runs the restore in a child process and SIGKILLs its process group once it reported `afterSteps` steps; resolves with its output. */
function killMidway(dir: string, imageFile: string, index: number, afterSteps: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('npx', ['tsx', join(here, 'restore-crash-child.ts'), dir, imageFile, String(index)], {
      cwd: packageRoot,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const steps = output.split('\n').filter((line) => line.startsWith('step ')).length;
      if (!killed && steps >= afterSteps) {
        killed = true;
        process.kill(-child.pid!, 'SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('exit', () => {
      if (!killed) reject(new Error(`the restoring process ended before it was killed: ${output} ${stderr}`));
      else resolve(output);
    });
  });
}
