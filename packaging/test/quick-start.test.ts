import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, inject, test } from 'vitest';
import { freshFolder } from '../src/npm-project.js';
import { parseQuickStart } from '../src/quick-start.js';
import { repositoryRoot, tarballOf } from '../src/release-tarballs.js';
import { run } from '../src/run.js';

const readme = join(repositoryRoot, 'packages', 'core', 'README.md');

test("the core README's Quick start, followed as written outside the repository, prints what it says", async () => {
  const quickStart = parseQuickStart(await readFile(readme, 'utf8'), 'packages/core/README.md');
  const tarballs = inject('tarballs');
  // The commands as written, except that `npm install @timebox/x` installs the tarball that
  // will be published as @timebox/x (nothing is on the registry before the release).
  const commands = quickStart.commands.map((command) =>
    /^npm (install|i|add)\b/.test(command)
      ? command.replace(/@timebox\/[\w-]+(@[^\s]+)?/g, (spec) => tarballOf(tarballs, spec.replace(/(.)@.*$/, '$1')).file)
      : command,
  );
  expect(
    commands.some((command) => /^npm init\b/.test(command)),
    'the Quick start starts an npm project',
  ).toBe(true);
  const work = await freshFolder('quickstart');
  // One shell runs the commands, so `cd` carries over; the last line printed is where they end.
  const script = `set -euo pipefail\n${commands.join('\n')}\npwd\n`;
  const { stdout } = await run('bash', ['-c', script], work);
  const project = stdout.trim().split('\n').at(-1) ?? work;
  expect(project.startsWith(work), `the commands stay inside ${work}`).toBe(true);

  await writeFile(join(project, quickStart.fileName), quickStart.program);
  const output = await run('bash', ['-c', quickStart.runCommand], project);
  expect(output.stdout.trimEnd()).toBe(quickStart.expectedOutput.trimEnd());
});
