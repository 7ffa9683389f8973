/**
 * The long crash soak (outside `vitest run`): many rounds of `kill -9` with random targets —
 * the leader, a follower, all three, two at once (the survivor alone has no quorum), or a
 * follower killed again while it installs the leader's snapshot after a restart — at
 * random points of the stream, on fresh 3-process clusters of `CRASH_ROUNDS_PER_CLUSTER` rounds
 * each, every cluster checked like the crash tests.
 *
 *   CRASH_ROUNDS=50 npx vitest run --config vitest.crash-soak.config.ts
 *
 * Env: CRASH_ROUNDS (default 10), CRASH_ROUNDS_PER_CLUSTER (default 4, at most 8: see below), CRASH_SEED (picks the
 * targets and pauses; process timing is not replayable), CRASH_KEEP=1 keeps passing folders.
 */
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../src/consensus/random.js';
import { crashRun, type KillTarget } from './crash-run.js';

const TARGETS: readonly KillTarget[] = ['leader', 'follower', 'all', 'two', 'installing'];

function positive(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return value;
}

const rounds = positive('CRASH_ROUNDS', 10);
const perCluster = positive('CRASH_ROUNDS_PER_CLUSTER', 4);
// A cluster's state grows with every round, and a member snapshots only once the writes since its
// last snapshot add up to that snapshot's size (SnapshotPolicy): an 'installing' round waits for
// the survivors to compact, longer the later the round. 8 rounds per cluster stay within the wait.
if (perCluster > 8)
  throw new Error(
    `CRASH_ROUNDS_PER_CLUSTER must be at most 8 (a cluster's state grows with its rounds, and late rounds wait too long for a snapshot), got ${perCluster}`,
  );
const seed = positive('CRASH_SEED', Date.now() % 1_000_000_007);
const random = new SeededRandom(seed);
const next = () => random.nextFloat();

describe(`crash soak: ${rounds} rounds, seed ${seed}`, () => {
  for (let first = 0; first < rounds; first += perCluster) {
    const targets = Array.from(
      { length: Math.min(perCluster, rounds - first) },
      () => TARGETS[Math.floor(next() * TARGETS.length)] as KillTarget,
    );
    it(
      `rounds ${first + 1}–${first + targets.length}: ${targets.join(', ')}`,
      { timeout: 120_000 * targets.length + 120_000 },
      async () => {
        const result = await crashRun({
          rounds: targets,
          progress: 30,
          random: next,
          maxKillDelayMs: 500,
          keep: process.env.CRASH_KEEP === '1',
          log: (line) => process.stdout.write(`${line}\n`),
        });
        const { verdict } = result;
        process.stdout.write(
          `rounds ${first + 1}–${first + targets.length}: ${result.ms} ms; kills ${result.kills.join('; ')}; installed snapshots: ${result.installedSnapshots.join(', ') || 'none'}; ${JSON.stringify(verdict.stats)}\n`,
        );
        const context = `seed ${seed}; kills ${result.kills.join('; ')}; folder ${result.dir}`;
        expect(result.crashed, context).toEqual([]);
        expect(verdict.problems, context).toEqual([]);
        expect(verdict.linearizability, context).toMatchObject({ linearizable: true });
      },
    );
  }
});
