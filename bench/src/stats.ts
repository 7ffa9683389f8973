/** Small, dependency-free statistics for benchmark samples. */

/** The `p`-th percentile (0–100) of `values`, interpolating linearly between ranks. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new RangeError('percentile of no values');
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0–100, got ${p}`);
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  const lowValue = sorted[low] as number;
  const highValue = sorted[high] as number;
  return lowValue + (highValue - lowValue) * (rank - low);
}

/** The median of `values` (the mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Median with the full min–max range of a set of repetitions. */
export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** (max − min) / median: 0.1 means the repetitions spanned 10% of the median. */
  readonly relative: number;
  /** The raw samples, in the order they were taken. */
  readonly samples: readonly number[];
}

/** Summarizes repetitions as median and min–max. */
export function spread(values: readonly number[]): Spread {
  if (values.length === 0) throw new RangeError('spread of no values');
  const mid = median(values);
  const min = Math.min(...values);
  const max = Math.max(...values);
  return { median: mid, min, max, relative: mid === 0 ? 0 : (max - min) / mid, samples: [...values] };
}

/** Several percentiles (0–100) of `values` at once, sorting one copy. */
export function percentiles(values: readonly number[], ps: readonly number[]): number[] {
  if (values.length === 0) throw new RangeError('percentiles of no values');
  const sorted = Float64Array.from(values).sort();
  return ps.map((p) => {
    if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0–100, got ${p}`);
    const rank = (p / 100) * (sorted.length - 1);
    const low = Math.floor(rank);
    const lowValue = sorted[low] as number;
    const highValue = sorted[Math.ceil(rank)] as number;
    return lowValue + (highValue - lowValue) * (rank - low);
  });
}
