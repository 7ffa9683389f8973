import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const exampleDir = fileURLToPath(new URL('..', import.meta.url));

describe('the read model quickstart (README "Read models and projections")', () => {
  it('prints what the README says it prints', { timeout: 60_000 }, async () => {
    const output = await new Promise<string>((resolve, reject) => {
      execFile('npx', ['tsx', 'read-model-quickstart.ts'], { cwd: exampleDir }, (error, stdout, stderr) =>
        error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout),
      );
    });
    expect(output.trim().split('\n')).toEqual(['ada 7500', '0 true', "[ 'Opened@1', 'Deposited@2' ] false"]);
  });
});
