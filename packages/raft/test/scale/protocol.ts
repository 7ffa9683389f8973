/**
 * What the paged-query test's parent and its member processes (`query-member.ts`) say to each
 * other: the spec a process starts with, the commands it takes and the report it answers.
 */

/** The JSON-able subset of `RaftMemberOptions` a member process is started with. */
export interface QueryMemberSpec {
  readonly member: {
    readonly localId: string;
    readonly address: string;
    readonly dataDir: string;
    readonly servers: readonly { readonly id: string; readonly address: string }[];
  };
  readonly statusEveryMs: number;
}

export type QueryCommand =
  | { readonly do: 'fill'; readonly count: number; readonly inFlight: number }
  | { readonly do: 'query'; readonly count: number; readonly rounds: number; readonly writers: number }
  | { readonly do: 'close' };

/** The `@status` report. */
export interface MemberStatus {
  readonly role: string;
  readonly term: number;
  readonly leader: string | null;
  readonly applied: number;
}

/** One full iteration of one query over the filled aggregates. */
export interface QueryRun {
  readonly query: 'prefix' | 'status' | 'label';
  /** Items the iterator yielded. */
  readonly items: number;
  /** Filled aggregates yielded more than once (counted beyond the first). */
  readonly duplicates: number;
  /** Items that are not filled aggregates (the writers' aggregates must never match). */
  readonly foreign: number;
  /** Filled aggregates never yielded. */
  readonly missing: number;
  readonly ms: number;
}

/** The `@queried` report. */
export interface QueryReport {
  readonly runs: readonly QueryRun[];
  /** Appends the writer loops got acknowledged while the queries ran. */
  readonly writes: number;
  readonly writeErrors: number;
  /** The longest event-loop delay in the process while the queries ran (`monitorEventLoopDelay`, 1 ms resolution). */
  readonly maxLoopDelayMs: number;
  readonly p99LoopDelayMs: number;
  readonly before: { readonly role: string; readonly term: number };
  readonly after: { readonly role: string; readonly term: number };
}

export type ScaleEvents = { Opened: { n: number }; Touched: Record<string, never> };

export const PREFIX = 'page';
export const STATUS = 'open';
export const LABEL = 'tier';

/** Filled aggregate `n`: zero-padded, so key order is number order. */
export function pageId(n: number): [string, string] {
  return [PREFIX, String(n).padStart(8, '0')];
}
