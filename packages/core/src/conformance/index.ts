/**
 * The backend conformance suite. Call `describeConformance` from a vitest test file to run every
 * case of the Timebox backend contract against your backend; every project backend runs it too.
 *
 * @packageDocumentation
 */
import { describe } from 'vitest';
import { appendSuite } from './append.js';
import { archiveSuite } from './archive.js';
import { badInputSuite } from './bad-input.js';
import { concurrencySuite } from './concurrency.js';
import { executorSuite } from './executor.js';
import { Harness, type ConformanceTarget } from './harness.js';
import { hubSuite } from './hub.js';
import { indexingSuite } from './indexing.js';
import { lifecycleSuite } from './lifecycle.js';
import { modelSuite } from './model.js';
import { projectionSuite } from './projections.js';
import { readSideSuite } from './read-side.js';
import { listingSuite } from './listing.js';
import { pagingSuite } from './paging.js';
import { snapshotSuite } from './snapshots.js';
import { volumeSuite } from './volume.js';

export type { ConformanceCapabilities, ConformanceNamespace, ConformanceTarget } from './harness.js';
export { TRICKY_IDS, TRICKY_VALUES } from './tricky.js';
export { expectHubPattern } from './cross-process.js';

/**
 * Registers the whole conformance suite for a backend, as vitest `describe` blocks.
 *
 * @example
 * ```ts
 * describeConformance({
 *   name: 'my-backend',
 *   capabilities: { archive: true },
 *   namespace: async () => {
 *     const prefix = `test-${crypto.randomUUID()}`;
 *     return { connect: () => new MyBackend({ prefix }), dispose: () => dropPrefix(prefix) };
 *   },
 * });
 * ```
 */
export function describeConformance(target: ConformanceTarget): void {
  describe(`Timebox conformance: ${target.name}`, { timeout: target.timeoutMs ?? 20_000 }, () => {
    const harness = new Harness(target);
    lifecycleSuite(harness);
    appendSuite(harness);
    listingSuite(harness);
    pagingSuite(harness);
    indexingSuite(harness);
    volumeSuite(harness);
    snapshotSuite(harness);
    archiveSuite(harness);
    modelSuite(harness);
    concurrencySuite(harness);
    executorSuite(harness);
    hubSuite(harness);
    readSideSuite(harness);
    if (target.capabilities.readSide === true) projectionSuite(harness);
    badInputSuite(harness);
  });
}
