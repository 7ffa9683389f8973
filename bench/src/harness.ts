import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { spread, type Spread } from './stats.js';

/** One timed run of a workload, prepared outside the timing. */
export interface Trial {
  /** The timed part: performs exactly the workload's operations. */
  run(): Promise<void>;
  /** Checks, untimed, that the run did what it claims (throws otherwise). */
  verify(): Promise<void>;
  /** Releases what `prepare` created. */
  close(): Promise<void>;
}

/** A measurable workload: a fresh, isolated trial per repetition. */
export interface Workload {
  /** Short label for tables, e.g. `exec`, `backend.append`. */
  readonly label: string;
  /** How many operations one trial performs. */
  readonly ops: number;
  prepare(): Promise<Trial>;
}

/** A workload measured against the baseline a user would otherwise pick, in the same run. */
export interface Comparison {
  /** Stable key, used in the JSON output. */
  readonly key: string;
  /** Human description of the access pattern. */
  readonly title: string;
  /** Parameters of the pattern (aggregates, concurrency…), copied to the JSON output. */
  readonly params: Readonly<Record<string, number | string>>;
  readonly subject: Workload;
  readonly baseline: Workload;
}

export interface RunOptions {
  /** Measured repetitions per workload (the median is reported). */
  readonly reps: number;
  /** Unmeasured repetitions of each workload before the measured ones, to let the JIT settle. */
  readonly warmups: number;
  /** Least timed duration of one warm-up repetition. */
  readonly warmupMs: number;
  /**
   * Least timed duration of one repetition: a repetition runs fresh trials back to back until
   * their summed run time reaches this, so short trials are not lost in timer and GC noise.
   */
  readonly minSampleMs: number;
  /** Progress lines go here (stderr). */
  readonly progress: (line: string) => void;
}

export interface ComparisonResult {
  readonly key: string;
  readonly title: string;
  readonly params: Readonly<Record<string, number | string>>;
  readonly subject: WorkloadResult;
  readonly baseline: WorkloadResult;
  /** subject ops/s ÷ baseline ops/s, paired per repetition. */
  readonly ratio: Spread;
}

export interface WorkloadResult {
  readonly label: string;
  readonly ops: number;
  /** Operations per second, one sample per repetition. */
  readonly opsPerSec: Spread;
}

/** Runs `total` tasks with at most `concurrency` in flight, in index order. */
export async function runPool(total: number, concurrency: number, task: (index: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const index = next++;
      if (index >= total) return;
      await task(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
}

/** Prepares, times and verifies one trial; returns its run time in nanoseconds. */
async function timeTrial(workload: Workload): Promise<number> {
  const trial = await workload.prepare();
  try {
    // No forced GC here: measured, a full collection right before a short trial made the exec
    // path ~3× slower in that trial, which is not how an application runs.
    await yieldToLoop();
    const start = process.hrtime.bigint();
    await trial.run();
    const elapsedNs = Number(process.hrtime.bigint() - start);
    await trial.verify();
    return elapsedNs;
  } finally {
    await trial.close();
  }
}

/**
 * One repetition: fresh trials (each exactly the workload's pattern, from an empty store) until
 * their timed parts add up to `minSampleMs`; returns operations per second over all of them.
 */
async function measure(workload: Workload, minSampleMs: number): Promise<number> {
  let totalNs = 0;
  let trials = 0;
  do {
    totalNs += await timeTrial(workload);
    trials++;
  } while (totalNs < minSampleMs * 1e6);
  return (workload.ops * trials) / (totalNs / 1e9);
}

function formatRate(opsPerSec: number): string {
  return `${Math.round(opsPerSec).toLocaleString('en-US')} ops/s`;
}

/**
 * Measures each comparison: warm-ups first, then `reps` repetitions that alternate which of
 * subject and baseline goes first, so slow drift of the machine hits both alike.
 */
export async function runComparisons(comparisons: readonly Comparison[], options: RunOptions): Promise<ComparisonResult[]> {
  const results: ComparisonResult[] = [];
  for (const comparison of comparisons) {
    const { subject, baseline } = comparison;
    for (let w = 1; w <= options.warmups; w++) {
      options.progress(`${comparison.key}: warm-up ${w}/${options.warmups}`);
      await measure(baseline, options.warmupMs);
      await measure(subject, options.warmupMs);
    }
    const subjectRates: number[] = [];
    const baselineRates: number[] = [];
    const ratios: number[] = [];
    for (let rep = 1; rep <= options.reps; rep++) {
      let subjectRate: number;
      let baselineRate: number;
      if (rep % 2 === 1) {
        baselineRate = await measure(baseline, options.minSampleMs);
        subjectRate = await measure(subject, options.minSampleMs);
      } else {
        subjectRate = await measure(subject, options.minSampleMs);
        baselineRate = await measure(baseline, options.minSampleMs);
      }
      subjectRates.push(subjectRate);
      baselineRates.push(baselineRate);
      ratios.push(subjectRate / baselineRate);
      options.progress(
        `${comparison.key}: rep ${rep}/${options.reps}  ${subject.label} ${formatRate(subjectRate)}, ` +
          `${baseline.label} ${formatRate(baselineRate)}, ratio ${(subjectRate / baselineRate).toFixed(3)}`,
      );
    }
    results.push({
      key: comparison.key,
      title: comparison.title,
      params: comparison.params,
      subject: { label: subject.label, ops: subject.ops, opsPerSec: spread(subjectRates) },
      baseline: { label: baseline.label, ops: baseline.ops, opsPerSec: spread(baselineRates) },
      ratio: spread(ratios),
    });
  }
  return results;
}
