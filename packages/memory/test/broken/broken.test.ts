import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { BROKEN_VARIANTS, type BrokenVariant } from './variants.js';

const packageDir = fileURLToPath(new URL('../..', import.meta.url));
const vitestBin = join(packageDir, 'node_modules', 'vitest', 'vitest.mjs');
const outputDir = await mkdtemp(join(tmpdir(), 'timebox-broken-'));
afterAll(() => rm(outputDir, { recursive: true, force: true }));

interface VitestJsonReport {
  numTotalTests: number;
  numFailedTests: number;
  testResults: { assertionResults: { fullName: string; status: string }[] }[];
}

/** Runs the conformance suite against one broken variant in a separate vitest process. */
async function runSuiteOn(variant: BrokenVariant): Promise<VitestJsonReport> {
  const outputFile = join(outputDir, `${variant}.json`);
  const args = [vitestBin, 'run', '--config', 'vitest.broken.config.ts', '--reporter=json', `--outputFile=${outputFile}`];
  await new Promise<void>((resolve) => {
    // vitest exits non-zero when tests fail, which is the point; the report tells what failed.
    execFile(process.execPath, args, { cwd: packageDir, env: { ...process.env, TIMEBOX_BROKEN_VARIANT: variant } }, () => resolve());
  });
  try {
    return JSON.parse(await readFile(outputFile, 'utf8')) as VitestJsonReport;
  } catch (error) {
    throw new Error(`the suite did not run against ${variant}: ${String(error)}`);
  }
}

describe.concurrent('the conformance suite has teeth', () => {
  for (const [variant, { mustFail }] of Object.entries(BROKEN_VARIANTS) as [BrokenVariant, { mustFail: string }][]) {
    it(`fails the ${variant} variant`, { timeout: 120_000 }, async () => {
      const report = await runSuiteOn(variant);
      expect(report.numTotalTests).toBeGreaterThan(50);
      expect(report.numFailedTests).toBeGreaterThan(0);
      const failed = report.testResults
        .flatMap((file) => file.assertionResults)
        .filter((test) => test.status === 'failed')
        .map((test) => test.fullName);
      expect(
        failed.some((name) => name.includes(mustFail)),
        `expected "${mustFail}" among failures: ${failed.join(' | ')}`,
      ).toBe(true);
    });
  }
});
