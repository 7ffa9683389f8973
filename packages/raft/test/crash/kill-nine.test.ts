import { describe, expect, it } from 'vitest';
import { crashRun, type CrashRunResult, type KillTarget } from './crash-run.js';

/**
 * Three member processes on loopback run concurrent execs on shared aggregates; `kill -9` hits
 * the leader, a follower, or all three in the middle of the stream; the victims restart and the
 * stream goes on. Afterwards every acknowledged append must be stored exactly once, at the
 * sequence its writer was told, on every member; sequences have no gap; the members' states are
 * byte-identical at one applied index; and the history of every process is linearizable.
 */
function expectSound(result: CrashRunResult): void {
  const { verdict } = result;
  const context = `kills ${result.kills.join('; ')}; stats ${JSON.stringify(verdict.stats)}; folder ${result.dir}`;
  expect(result.crashed, `member processes that died on their own; ${context}`).toEqual([]);
  expect(verdict.problems, context).toEqual([]);
  expect(verdict.linearizability, context).toMatchObject({ linearizable: true });
  // The run must have exercised what it claims: acknowledged writes, real conflicts, and all three members writing.
  expect(verdict.stats.ok, context).toBeGreaterThan(0);
  expect(verdict.stats.conflict, context).toBeGreaterThan(0);
}

async function run(rounds: KillTarget[], outlastVictimLogs = false): Promise<CrashRunResult> {
  const result = await crashRun({ rounds, progress: 40, outlastVictimLogs, log: (line) => console.log(line) });
  console.log(
    `${rounds.join(', ')}: ${result.ms} ms, installed snapshots: ${result.installedSnapshots.join(', ') || 'none'}, ${JSON.stringify(result.verdict.stats)}`,
  );
  return result;
}

describe('raft members under kill -9 (separate OS processes)', () => {
  it('kill -9 of the leader during concurrent execs; it restarts and the stream goes on', { timeout: 180_000 }, async () => {
    expectSound(await run(['leader']));
  });

  it('kill -9 of a follower during concurrent execs; it restarts and catches up by InstallSnapshot', { timeout: 180_000 }, async () => {
    // The survivors compact their logs past the victim's before it restarts: only a snapshot can catch it up.
    const result = await run(['follower'], true);
    expectSound(result);
    const victim = result.victims[0] as string;
    expect(
      result.installedSnapshots.filter((run) => run.startsWith(`${victim}-`)),
      `kills ${result.kills.join('; ')}`,
    ).toHaveLength(1);
  });

  it('kill -9 of all three at once; all restart from disk', { timeout: 180_000 }, async () => {
    expectSound(await run(['all']));
  });
});
