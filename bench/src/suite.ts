import type { Comparison } from './harness.js';

/** What a backend's benchmark module hands the runner. */
export interface BackendSuite {
  /** The comparisons to measure, in order. */
  readonly comparisons: readonly Comparison[];
  /**
   * Overrides the run's warm-up repetitions for this suite. Networked suites skip them in quick
   * runs: their per-operation JavaScript is small next to the round trip, the pools are connected
   * by each trial's setup, and a smoke run must stay short.
   */
  readonly warmups?: number;
  /** Lines printed under the backend's table (what was not measured and why, caveats). */
  readonly notes?: readonly string[];
  /** Releases what `open` set up (server connections, throwaway servers). */
  close(): Promise<void>;
}

export interface SuiteOptions {
  /** A smoke run: smaller sizes. */
  readonly quick: boolean;
  /** Progress lines (stderr). */
  readonly progress: (line: string) => void;
}

/**
 * One backend's benchmarks. `open` connects (or starts a throwaway server) and returns the
 * comparisons; it throws a `SuiteUnavailableError` when the backend cannot be reached, so the
 * runner can skip it with the reason rather than fail the whole run.
 */
export interface BackendBench {
  readonly name: string;
  open(options: SuiteOptions): Promise<BackendSuite>;
}

/** The backend's server or tool is missing; the message says what to install or set. */
export class SuiteUnavailableError extends Error {
  override readonly name = 'SuiteUnavailableError';
}

/** The message of any thrown value. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
