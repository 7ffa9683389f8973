import type { Comparison } from './harness.js';

/** What a backend's benchmark module hands the runner. */
export interface BackendSuite {
  /** The comparisons to measure, in order. */
  readonly comparisons: readonly Comparison[];
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
