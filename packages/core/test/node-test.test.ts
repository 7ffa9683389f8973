import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const packageDir = fileURLToPath(new URL('..', import.meta.url));

describe('@timebox/core/testing under node:test', () => {
  // Runs the built package (dist), as a user's node:test suite would import it: the test script
  // builds first.
  it('passes a right expectation and fails a wrong one with a readable message', { timeout: 60_000 }, async () => {
    const output = await new Promise<string>((resolve) => {
      // node --test exits non-zero when a test fails, which one must; the output tells which.
      execFile(
        process.execPath,
        ['--test', '--test-reporter=tap', 'test/node-test/cart-spec.js'],
        { cwd: packageDir },
        (_error, stdout, stderr) => resolve(`${stdout}\n${stderr}`),
      );
    });
    expect(output).toMatch(/^# pass 1$/m);
    expect(output).toMatch(/^# fail 1$/m);
    expect(output).toMatch(/^ok \d+ - passes on the right events$/m);
    expect(output).toMatch(/^not ok \d+ - fails on the wrong events$/m);
    expect(output).toContain('the command stored other events than expected');
    expect(output).toContain("code: 'ERR_ASSERTION'");
  });
});
