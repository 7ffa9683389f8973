import { readHistoryDir } from './history-file.js';
import { checkRun, type RunVerdict } from './check-run.js';
import { readMemberState } from './member-state.js';
import { ProcessCluster } from './process-cluster.js';
import type { WorkloadSpec } from './protocol.js';

/**
 * Whom a round SIGKILLs: the leader, one follower, all three at once, two (quorum lost), or a
 * follower that, restarted behind the survivors' compacted logs, is killed again while it
 * installs their snapshot (`installing`).
 */
export type KillTarget = 'leader' | 'follower' | 'all' | 'two' | 'installing';

export interface CrashRunOptions {
  /** The target of each round, in order. */
  readonly rounds: readonly KillTarget[];
  /** Acknowledged appends to wait for before a kill, and after it on each side. */
  readonly progress: number;
  readonly workload?: WorkloadSpec;
  /** Picks followers and extra delays; `Math.random` unless a test wants a replayable run. */
  readonly random?: () => number;
  /** Longest extra pause (ms) before a kill, so kills land at varied points of the stream. */
  readonly maxKillDelayMs?: number;
  /**
   * Before restarting a victim, waits until the survivors compacted their logs past the victim's
   * last reported index (plus headroom for a stale report), so it must catch up by InstallSnapshot.
   */
  readonly outlastVictimLogs?: boolean;
  /** Leaves the folder in place (else removed when the run passes). */
  readonly keep?: boolean;
  /** Progress lines (who was killed when). */
  readonly log?: (line: string) => void;
}

export interface CrashRunResult {
  readonly verdict: RunVerdict;
  /** Member runs that exited without being asked to. */
  readonly crashed: readonly string[];
  /** Per round, `target: runs killed`, for messages. */
  readonly kills: readonly string[];
  /** The IDs of the members killed, round after round. */
  readonly victims: readonly string[];
  /** Member runs (current at the end) that installed a snapshot from the leader. */
  readonly installedSnapshots: readonly string[];
  readonly dir: string;
  readonly ms: number;
}

const STALE_REPORT_HEADROOM = 100;
const START_MS = 60_000;
const DEFAULT_WORKLOAD: WorkloadSpec = { workers: 3, aggregates: 3 };

/**
 * A fresh 3-member cluster of OS processes running concurrent execs; each round SIGKILLs its
 * target in the middle of the stream, waits for the survivors to go on (when they hold a
 * quorum), restarts the victims and waits for them to write again. Then the workloads stop, the
 * members close, restart quietly to agree on one applied index, close again, and their states
 * and the whole history are checked (`checkRun`).
 */
export async function crashRun(options: CrashRunOptions): Promise<CrashRunResult> {
  const started = Date.now();
  const random = options.random ?? Math.random;
  const log = options.log ?? (() => undefined);
  const cluster = await ProcessCluster.create(3, options.workload ?? DEFAULT_WORKLOAD);
  const all = [0, 1, 2];
  const kills: string[] = [];
  const victimIds: string[] = [];
  let passed = false;
  try {
    await cluster.startAll();
    await cluster.progress(options.progress, all);
    for (const [round, target] of options.rounds.entries()) {
      const pause = Math.floor(random() * (options.maxKillDelayMs ?? 0));
      if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause));
      const victims = await pickVictims(cluster, target, random);
      const names = victims.map((i) => cluster.handle(i).spec.client);
      kills.push(`${target}: ${names.join('+')}`);
      victimIds.push(...victims.map((i) => cluster.handle(i).id));
      log(`round ${round + 1}: SIGKILL ${target} ${names.join(', ')} (${cluster.describe()})`);
      const victimsLast = Math.max(...victims.map((i) => cluster.handle(i).status?.lastIndex ?? 0));
      await cluster.kill(victims);
      const survivors = all.filter((i) => !victims.includes(i));
      // Two survivors hold a quorum and must go on writing without the victim.
      if (survivors.length >= 2) {
        await cluster.progress(options.progress, survivors);
        // Reports are up to 100 ms old: the headroom covers what the victim wrote since.
        if (options.outlastVictimLogs === true || target === 'installing')
          await cluster.compactedPast(victimsLast + STALE_REPORT_HEADROOM, survivors);
      }
      if (target === 'installing') {
        for (const i of victims) await cluster.start(i).waitFor('open', START_MS);
        // Open means connected: the leader's snapshot is on its way or being restored within a few hundred ms.
        await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 400)));
        log(
          `round ${round + 1}: SIGKILL again ${victims.map((i) => cluster.handle(i).spec.client).join(', ')} while it catches up (${cluster.describe()})`,
        );
        await cluster.kill(victims);
      }
      await cluster.restart(victims);
      await cluster.progress(options.progress, victims);
    }
    await cluster.stopWorkloads();
    const installedSnapshots = cluster.installedSnapshots();
    await cluster.closeAll();
    await cluster.settle();
    const endedAt = Date.now();
    const states = await Promise.all(cluster.members.map((member) => readMemberState(member.localId, member.dataDir)));
    const verdict = checkRun(states, readHistoryDir(cluster.historyDir), endedAt);
    passed = verdict.problems.length === 0 && verdict.linearizability.linearizable === true && cluster.crashed().length === 0;
    return {
      verdict,
      crashed: cluster.crashed(),
      kills,
      victims: victimIds,
      installedSnapshots,
      dir: cluster.dir,
      ms: Date.now() - started,
    };
  } catch (error) {
    throw new Error(
      `crash run failed (folder kept: ${cluster.dir}; kills: ${kills.join('; ')}): ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  } finally {
    await cluster.killAll();
    if (passed && options.keep !== true) cluster.remove();
  }
}

async function pickVictims(cluster: ProcessCluster, target: KillTarget, random: () => number): Promise<number[]> {
  if (target === 'all') return [0, 1, 2];
  const leader = await cluster.leader();
  const followers = [0, 1, 2].filter((i) => i !== leader);
  const follower = followers[Math.floor(random() * followers.length)] as number;
  if (target === 'leader') return [leader];
  if (target === 'follower' || target === 'installing') return [follower];
  return [leader, follower];
}
