import { freeLoopbackPort, LocalRaftCluster } from '../../src/local-cluster.js';
import type { RaftMember } from '../../src/raft-member.js';
import type { RaftMemberOptions } from '../../src/options.js';

/** A free TCP port on 127.0.0.1 (bound and released; fine for tests on one machine). */
export const freePort = freeLoopbackPort;

/** Fast timings for loopback tests: elections in a few hundred ms. */
export const FAST = { tickMs: 20, electionTicks: 10 } as const;

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `check` until it returns true; fails naming `what` after `timeoutMs` (generous: the
 * machine is shared, so tests wait on conditions, never on fixed times).
 */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** A cluster of members in this process on loopback ports, in a fresh temporary folder (the package's `LocalRaftCluster` plus test helpers). */
export class LocalCluster {
  private constructor(readonly cluster: LocalRaftCluster) {}

  static async start(size: number, extra: Partial<RaftMemberOptions> = {}): Promise<LocalCluster> {
    return new LocalCluster(await LocalRaftCluster.start({ size, member: { ...FAST, ...extra } }));
  }

  get dir(): string {
    return this.cluster.dir;
  }

  get options(): readonly RaftMemberOptions[] {
    return this.cluster.options;
  }

  get members(): (RaftMember | undefined)[] {
    return this.cluster.members;
  }

  /** (Re)opens member `i` from its data folder. */
  restart(i: number): Promise<RaftMember> {
    return this.cluster.restart(i);
  }

  member(i: number): RaftMember {
    return this.cluster.member(i);
  }

  /** Stops member `i` cleanly (its data stays). */
  stop(i: number): Promise<void> {
    return this.cluster.stop(i);
  }

  /** The index of a running member that is leader (of the highest term seen), waiting for one. */
  async leader(timeoutMs = 20_000, among?: readonly number[]): Promise<number> {
    let found = -1;
    await waitFor(
      'a leader',
      () => {
        let term = -1;
        found = -1;
        this.members.forEach((member, i) => {
          if (member === undefined || (among !== undefined && !among.includes(i))) return;
          const status = member.status();
          if (status.role === 'leader' && status.term > term) {
            term = status.term;
            found = i;
          }
        });
        return found >= 0;
      },
      timeoutMs,
    );
    return found;
  }

  /** Waits until every running member has applied the same index, at least `index`; returns it. */
  async converged(index = 0, timeoutMs = 30_000): Promise<number> {
    let applied = 0;
    await waitFor(
      `every running member to apply the same index ≥ ${index}`,
      () => {
        const running = this.members.filter((member): member is RaftMember => member !== undefined);
        const statuses = running.map((member) => member.status());
        applied = statuses[0]?.applied ?? 0;
        return applied >= index && statuses.every((status) => status.applied === applied && status.commit === applied);
      },
      timeoutMs,
    );
    return applied;
  }

  async close(): Promise<void> {
    await this.cluster.close();
  }
}
