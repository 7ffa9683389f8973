/**
 * What the parent test and its member processes say to each other, and what a member process
 * writes into its history file.
 *
 * Control (parent → child, one line each on stdin): `stop` ends the workload and answers `@idle`
 * once every operation in flight has settled; `close` closes store and member cleanly (so does
 * SIGTERM), answering `@closing {CloseReport}` before and `@closed {CloseReport}` after, then
 * exits 0; `call <n> <verb> <args…>` runs one `CallVerb` and answers `@answer <n> {CallAnswer}`.
 *
 * Reports (child → parent, one line each on stdout, prefixed with `@` so stray output is
 * ignored): `@open`, `@ready`, `@idle`, `@closing`, `@closed`, `@answer`, and `@status {json}`
 * every `statusEveryMs`.
 */

/** The JSON-able subset of `RaftMemberOptions` a member process is started with. */
export interface MemberSpec {
  readonly localId: string;
  readonly address: string;
  readonly dataDir: string;
  readonly servers: readonly { readonly id: string; readonly address: string }[];
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly proposalTimeoutMs: number;
  readonly snapshotEvery: number;
  readonly compactionMargin: number;
}

/** How a member process drives appends; absent for a quiet member (the verification restart). */
export interface WorkloadSpec {
  /** Concurrent exec loops in the process. */
  readonly workers: number;
  /** How many shared aggregates (`["crash", "0"]` …) the loops pick from at random. */
  readonly aggregates: number;
}

/** Everything a member process needs, passed as one JSON argument. */
export interface ProcessSpec {
  readonly member: MemberSpec;
  /** Names this run of the process; payload IDs are `<client>.<n>`, unique across restarts. */
  readonly client: string;
  /** Where the process appends its history lines (created if needed). */
  readonly historyFile: string;
  readonly workload: WorkloadSpec | null;
  readonly statusEveryMs: number;
  /** Starts the member with `RaftMember.join` (a new member of a running cluster) instead of `open`. */
  readonly join?: boolean;
  /** Whether a clean close (SIGTERM or `close`) hands leadership over first; default true. */
  readonly transferLeadershipOnClose?: boolean;
}

/**
 * What `call <n> <verb> <args…>` can ask of a member process:
 *
 * - `write <k>`: appends one event (payload `w.<k>`) to the fresh aggregate `["w", k]` at
 *   expected sequence 0, through the process's store (forwarded to the leader when it follows);
 * - `add-learner <id> <address>`, `promote <id>`, `remove <id>`: the membership calls, on the leader;
 * - `transfer [<id>]`: `transferLeadership`, answering the new leader's ID.
 */
export type CallVerb = 'write' | 'add-learner' | 'promote' | 'remove' | 'transfer';

/** The `@answer` report: the call's value, or the error it failed with (`name: message`). */
export type CallAnswer = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: string };

/** The aggregate a `write <k>` call appends to. */
export function writeId(k: number): [string, string] {
  return ['w', String(k)];
}

/** The payload ID a `write <k>` call stores. */
export function writeOp(k: number): string {
  return `w.${k}`;
}

/** The `@closing` and `@closed` reports: the member's view just before and just after its close. */
export interface CloseReport {
  readonly role: string;
  readonly term: number;
  readonly leader: string | null;
}

/** The `@status` report. */
export interface StatusReport {
  readonly role: string;
  readonly term: number;
  readonly leader: string | null;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly snapshotIndex: number;
  readonly lifecycle: string;
  /** Appends this process answered `ok` so far. */
  readonly oks: number;
  /** State snapshots this process installed from the leader (InstallSnapshot) since it opened. */
  readonly restores: number;
  /** The configuration as this member knows it (`RaftMember.members()`). */
  readonly voters: readonly string[];
  readonly learners: readonly string[];
}

/**
 * One history line. `call` is written (synchronously) before the append goes to the backend;
 * its answer follows as `ok`, `conflict` or `error`. A call without an answer line (the process
 * was killed first) is indeterminate, and so is `error`: the append may still commit.
 */
export type HistoryLine =
  | {
      readonly t: 'call';
      readonly op: string;
      readonly client: string;
      readonly aggregate: string;
      readonly expected: number;
      readonly at: number;
    }
  | { readonly t: 'ok'; readonly op: string; readonly at: number }
  | { readonly t: 'conflict'; readonly op: string; readonly actual: number; readonly at: number }
  | { readonly t: 'error'; readonly op: string; readonly error: string; readonly at: number };

/** The one event type the workload raises; its payload names the operation. */
export const EVENT_TYPE = 'Appended';

/** The payload of every workload event: the operation (payload) ID, unique in the whole run. */
export interface AppendedPayload {
  readonly op: string;
}

/** The workload's aggregate number `k`. */
export function aggregateId(k: number): [string, string] {
  return ['crash', String(k)];
}

/** A stable key for an aggregate ID, as the history and the checker name it. */
export function aggregateKey(id: readonly string[]): string {
  return JSON.stringify(id);
}
