import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../member/support.js';
import { MemberHandle, waitFor } from './member-handle.js';
import type { CallVerb, MemberSpec, ProcessSpec, WorkloadSpec } from './protocol.js';

/** Timings of the crash runs: fast elections on loopback, small snapshots so compaction and InstallSnapshot happen. */
export interface CrashTimings {
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly proposalTimeoutMs: number;
  readonly snapshotEvery: number;
  readonly compactionMargin: number;
}

export const CRASH_TIMINGS: CrashTimings = {
  tickMs: 20,
  electionTicks: 10,
  proposalTimeoutMs: 5_000,
  snapshotEvery: 200,
  compactionMargin: 50,
};

/**
 * The verification restart uses a long election timeout: closing the three members one after
 * the other must not give the last two time to elect a leader and commit one more entry than
 * the first holds, or their states could not be compared byte for byte.
 */
const QUIET_ELECTION_TICKS = 50;

/** Generous waits: a 2-core machine shared with other test runs. */
const START_MS = 60_000;
const CLOSE_MS = 60_000;

/**
 * A cluster of member processes on loopback in a fresh temporary folder: `data/<id>` per
 * member, `history/` with one history file per process run, `log/` with each member's stderr.
 */
export class ProcessCluster {
  readonly dir: string;
  readonly members: MemberSpec[];
  readonly handles: (MemberHandle | undefined)[];
  /** Whether a clean close of a member process (SIGTERM, `close`) hands leadership over first. */
  transferLeadershipOnClose = true;
  readonly #workload: WorkloadSpec | null;
  readonly #timings: CrashTimings;
  /** Members added with `join`: their processes start with `RaftMember.join`. */
  readonly #joiners = new Set<number>();
  #runs = 0;

  private constructor(dir: string, members: MemberSpec[], workload: WorkloadSpec | null, timings: CrashTimings) {
    this.dir = dir;
    this.members = members;
    this.handles = members.map(() => undefined);
    this.#workload = workload;
    this.#timings = timings;
  }

  /** `size` members `n1`…; with a null workload the processes only do what the test calls on them. */
  static async create(size: number, workload: WorkloadSpec | null, timings: CrashTimings = CRASH_TIMINGS): Promise<ProcessCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'timebox-raft-crash-'));
    for (const sub of ['data', 'history', 'log']) mkdirSync(join(dir, sub));
    const servers: { id: string; address: string }[] = [];
    for (let i = 0; i < size; i++) servers.push({ id: `n${i + 1}`, address: `127.0.0.1:${await freePort()}` });
    const members = servers.map((server) => ({
      ...timings,
      localId: server.id,
      address: server.address,
      dataDir: join(dir, 'data', server.id),
      servers,
    }));
    return new ProcessCluster(dir, members, workload, timings);
  }

  /**
   * Adds brand-new member `id` on a fresh port, knowing the addresses of the running members,
   * and returns its index; `start` then runs it with `RaftMember.join` (the leader must still
   * `addLearner` it).
   */
  async join(id: string): Promise<number> {
    const address = `127.0.0.1:${await freePort()}`;
    const running = this.members.filter((_, i) => this.handles[i]?.alive === true);
    const servers = [...running.map((m) => ({ id: m.localId, address: m.address })), { id, address }];
    this.members.push({ ...this.#timings, localId: id, address, dataDir: join(this.dir, 'data', id), servers });
    this.handles.push(undefined);
    this.#joiners.add(this.members.length - 1);
    return this.members.length - 1;
  }

  /** The index of member `id`. */
  indexOf(id: string): number {
    const i = this.members.findIndex((m) => m.localId === id);
    if (i < 0) throw new Error(`no member ${id}`);
    return i;
  }

  get historyDir(): string {
    return join(this.dir, 'history');
  }

  /** Member `i`'s process, which must be running. */
  handle(i: number): MemberHandle {
    const handle = this.handles[i];
    if (handle === undefined) throw new Error(`member ${i} is not running`);
    return handle;
  }

  /** Starts member `i` as a new process run; with `quiet` it runs no workload (and elects slowly). */
  start(i: number, quiet = false): MemberHandle {
    if (this.handles[i]?.alive) throw new Error(`member ${i} is still running`);
    const member = this.members[i] as MemberSpec;
    const client = `${member.localId}-r${++this.#runs}`;
    const spec: ProcessSpec = {
      member: quiet ? { ...member, electionTicks: QUIET_ELECTION_TICKS } : member,
      client,
      historyFile: join(this.historyDir, `${client}.jsonl`),
      workload: quiet ? null : this.#workload,
      statusEveryMs: 100,
      join: this.#joiners.has(i),
      transferLeadershipOnClose: this.transferLeadershipOnClose,
    };
    const handle = MemberHandle.start(spec, join(this.dir, 'log', `${member.localId}.log`));
    this.handles[i] = handle;
    return handle;
  }

  async startAll(quiet = false): Promise<void> {
    const started = this.members.map((_, i) => this.start(i, quiet));
    await Promise.all(started.map((handle) => handle.waitFor('ready', START_MS)));
  }

  /** SIGKILLs the given members at once (as close together as the calls go). */
  async kill(indexes: readonly number[]): Promise<void> {
    await Promise.all(indexes.map((i) => this.handle(i).kill()));
  }

  /** Restarts the given (killed) members with the workload and waits until each is ready. */
  async restart(indexes: readonly number[]): Promise<void> {
    const started = indexes.map((i) => this.start(i));
    await Promise.all(started.map((handle) => handle.waitFor('ready', START_MS)));
  }

  /** Appends answered `ok` by the current runs of the members, from their latest reports. */
  oks(indexes: readonly number[] = this.members.map((_, i) => i)): number {
    return indexes.reduce((sum, i) => sum + (this.handles[i]?.status?.oks ?? 0), 0);
  }

  /** Waits until the given running members have together answered `more` further appends ok. */
  async progress(more: number, indexes: readonly number[], timeoutMs = 60_000): Promise<void> {
    const target = this.oks(indexes) + more;
    await waitFor(
      () => this.oks(indexes) >= target,
      timeoutMs,
      () => `${more} more acknowledged appends on members ${indexes.join(', ')} (at ${this.oks(indexes)} of ${target}); ${this.describe()}`,
    );
  }

  /**
   * Waits until every given member has compacted its log past `index` (its snapshot index minus
   * the compaction margin beyond it), so a member whose log ends at `index` can only catch up
   * from them by InstallSnapshot. The wait is long: a member snapshots once the writes since its
   * last snapshot add up to that image (SnapshotPolicy), so in a cluster that has been written to
   * for a while the next snapshot can be a minute of writes away.
   */
  async compactedPast(index: number, indexes: readonly number[], timeoutMs = 180_000): Promise<void> {
    const compacted = (i: number) => (this.handles[i]?.status?.snapshotIndex ?? 0) - (this.members[i]?.compactionMargin ?? 0);
    await waitFor(
      () => indexes.every((i) => compacted(i) > index),
      timeoutMs,
      () => `members ${indexes.join(', ')} to compact past ${index}; ${this.describe()}`,
    );
  }

  /**
   * The index of the member that a status report shows as leader, agreed by every running member
   * (or every running member among `among`: a joining member knows no leader until it is added).
   */
  async leader(timeoutMs = 30_000, among?: readonly number[]): Promise<number> {
    let found = -1;
    await waitFor(
      () => {
        const running = this.handles.filter(
          (h, i): h is MemberHandle => h?.alive === true && h.status !== undefined && (among === undefined || among.includes(i)),
        );
        const leaders = running.filter((h) => h.status?.role === 'leader');
        if (leaders.length !== 1) return false;
        const leader = leaders[0] as MemberHandle;
        const term = leader.status?.term;
        if (!running.every((h) => h.status?.leader === leader.id && h.status.term === term)) return false;
        found = this.handles.indexOf(leader);
        return true;
      },
      timeoutMs,
      () => `one leader agreed by every running member; ${this.describe()}`,
    );
    return found;
  }

  /**
   * Runs `verb` on the leader (found among `among`, see `leader`); a leader that lost leadership
   * meanwhile answers NotLeaderError, and the call goes to the next leader.
   */
  async callLeader(verb: CallVerb, args: readonly (string | number)[], among?: readonly number[], timeoutMs = 60_000): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const leader = this.handle(await this.leader(timeoutMs, among));
      try {
        return await leader.call(verb, args, timeoutMs);
      } catch (error) {
        if (!String(error).includes('NotLeaderError') || Date.now() > deadline) throw error;
        // A timer, not a microtask: let the reports that name the next leader arrive.
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  /**
   * Waits until the given running members, in reports sent after this call, agree on one commit
   * index that each has applied, and one leader; returns that index. Call it once writes stopped:
   * the leader's commit then covers every acknowledged write.
   */
  async converged(indexes: readonly number[], timeoutMs = 60_000): Promise<number> {
    const seen = indexes.map((i) => this.handle(i).statusCount);
    let commit = -1;
    await waitFor(
      () => {
        const handles = indexes.map((i) => this.handle(i));
        if (!handles.every((h, k) => h.statusCount > (seen[k] as number))) return false;
        const statuses = handles.map((h) => h.status);
        commit = statuses[0]?.commit ?? -1;
        const leader = statuses[0]?.leader ?? null;
        return (
          leader !== null && statuses.every((s) => s !== undefined && s.commit === commit && s.applied === commit && s.leader === leader)
        );
      },
      timeoutMs,
      () => `members ${indexes.join(', ')} to agree on one applied commit index and leader; ${this.describe()}`,
    );
    return commit;
  }

  /** Current runs that installed a state snapshot from the leader, from their latest reports. */
  installedSnapshots(): string[] {
    return this.handles.filter((h) => (h?.status?.restores ?? 0) > 0).map((h) => (h as MemberHandle).spec.client);
  }

  /** Ends every workload and waits until each member's operations in flight settled. */
  async stopWorkloads(): Promise<void> {
    const running = this.handles.filter((h): h is MemberHandle => h?.alive === true);
    for (const handle of running) handle.send('stop');
    await Promise.all(running.map((handle) => handle.waitFor('idle', CLOSE_MS)));
  }

  /** Closes every running member cleanly. */
  async closeAll(): Promise<void> {
    await Promise.all(this.handles.filter((h): h is MemberHandle => h?.alive === true).map((handle) => handle.close(CLOSE_MS)));
  }

  /**
   * Restarts every member without workload, waits until all report the same commit index with
   * everything applied and no further entries (fresh reports, twice in a row), then closes them.
   * Their states on disk then sit at one applied index.
   */
  async settle(timeoutMs = 60_000): Promise<void> {
    await this.startAll(true);
    let agreedAt = -1;
    let agreedTimes = 0;
    let seen = this.handles.map((h) => h?.statusCount ?? 0);
    await waitFor(
      () => {
        const handles = this.handles as MemberHandle[];
        if (!handles.every((h, i) => h.statusCount > (seen[i] as number))) return false;
        seen = handles.map((h) => h.statusCount);
        const statuses = handles.map((h) => h.status);
        const commit = statuses[0]?.commit ?? -1;
        const agreed = statuses.every(
          (s) => s !== undefined && s.commit === commit && s.applied === commit && s.lastIndex === commit && s.leader !== null,
        );
        if (!agreed) {
          agreedTimes = 0;
          return false;
        }
        agreedTimes = agreedAt === commit ? agreedTimes + 1 : 1;
        agreedAt = commit;
        return agreedTimes >= 2;
      },
      timeoutMs,
      () => `the restarted members to agree on one fully applied commit index; ${this.describe()}`,
    );
    await this.closeAll();
  }

  /** SIGKILLs whatever still runs (after a failure). */
  async killAll(): Promise<void> {
    await Promise.all(this.handles.map((handle) => Promise.resolve(handle?.kill())));
  }

  /** Members that exited without being asked to (a crash of the member code itself). */
  crashed(): string[] {
    return this.handles.filter((h) => h?.crashed === true).map((h) => (h as MemberHandle).spec.client);
  }

  /** One line per member: its run and latest report, for failure messages. */
  describe(): string {
    return this.handles
      .map(
        (h, i) =>
          `${this.members[i]?.localId}: ${h === undefined ? 'never started' : `${h.spec.client} ${h.alive ? 'up' : 'down'} ${JSON.stringify(h.status)}`}`,
      )
      .join('; ');
  }

  /** Removes the folder (data, histories, logs). */
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
