import type { TestProject } from 'vitest/node';
import { packRelease, type ReleaseTarball } from '../src/release-tarballs.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Every public package, packed once for all test files, at its release version. */
    tarballs: ReleaseTarball[];
  }
}

/** Packs the packages once before the test files run. */
export default async function setup(project: TestProject): Promise<void> {
  project.provide('tarballs', await packRelease());
}
