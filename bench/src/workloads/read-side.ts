import { randomUUID } from 'node:crypto';
import type { Backend, Store } from '@timebox/core';
import type { Comparison, Unavailable, Workload } from '../harness.js';
import { messageOf } from '../suite.js';
import type { CounterEvents } from './counter.js';

/**
 * Why `store.project` and `store.readAll` cannot run on `backend`, or undefined when they can:
 * core gives a backend the read side only when it declares `capabilities.readSide` and has `log`,
 * `readLog`, `logHead` and `projections`; otherwise they reject with `ReadSideUnavailableError`.
 * Each backend gains it on its own read-side branch.
 */
export function readSideGap(backend: Backend, name: string): string | undefined {
  const missing = (['log', 'readLog', 'logHead', 'projections'] as const).filter((member) => backend[member] === undefined);
  if (backend.capabilities.readSide === true && missing.length === 0) return undefined;
  const lacks = [...(backend.capabilities.readSide === true ? [] : ['capabilities.readSide']), ...missing].join(', ');
  return `this build's ${name} backend has no read side yet (no ${lacks}): store.project and readAll reject until its read-side branch lands`;
}

/**
 * Appends one event to a fresh aggregate of `store` and returns why that failed, or undefined.
 * Core's store places every appended event in the log; a backend from before the read side
 * returns no positions from `append`, and then every Timebox append fails with a TypeError.
 */
export async function appendGap(store: Store<CounterEvents>, name: string): Promise<string | undefined> {
  try {
    await store.appendEvents(['bench-probe', randomUUID()], 0, [{ type: 'Incremented', data: { by: 1 } }]);
    return undefined;
  } catch (error) {
    return `an append through this build's ${name} backend fails (${messageOf(error)}): it returns no log positions, which core's store now requires, until its read-side branch lands`;
  }
}

/** Replaces a Timebox side by an unavailable one carrying `gap`, when there is a gap. */
export function timeboxGate(gap: string | undefined): (side: Workload | Unavailable) => Workload | Unavailable {
  return (side) => (gap === undefined || 'unavailable' in side ? side : { label: side.label, unavailable: gap });
}

/** `comparison` with its subject, and every baseline when `allTimebox`, gated by `gap`. */
export function gateComparison(comparison: Comparison, gap: string | undefined, allTimebox: boolean): Comparison {
  if (gap === undefined) return comparison;
  const gate = timeboxGate(gap);
  return {
    ...comparison,
    subject: gate(comparison.subject),
    baselines: allTimebox ? comparison.baselines.map(gate) : comparison.baselines,
  };
}
