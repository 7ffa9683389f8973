import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { minVersion, validRange } from 'semver';
import { describe, expect, inject, test } from 'vitest';
import { freshNpmProject, npmInstall } from '../src/npm-project.js';
import { tarballOf, type ReleaseTarball } from '../src/release-tarballs.js';
import { run } from '../src/run.js';

// A backend's peer range on core must start at a core that has every export the backend
// imports: install the backend beside the core at the range's lower bound and import it. An ES
// module importing a name its dependency lacks fails to link, so a range that admits such a
// core fails here.
//
// The core at the lower bound comes from the workspace when that is the version the workspace
// core will be released as, else from the registry. TIMEBOX_PACKAGING_CORES ("version=tarball,
// …") supplies other versions from files, to try a range against an older core by hand.

const tarballs = inject('tarballs');
const core = tarballOf(tarballs, '@timebox/core');
const backends = tarballs.filter((tarball) => tarball.manifest.peerDependencies?.['@timebox/core'] !== undefined);

/** Where to install core `version` from: a tarball path, or name@version for the registry. */
function coreSource(version: string): string {
  if (version === core.version) return core.file;
  for (const pair of (process.env.TIMEBOX_PACKAGING_CORES ?? '').split(',')) {
    const [given, file] = pair.split('=');
    if (given?.trim() === version && file !== undefined) return file.trim();
  }
  return `@timebox/core@${version}`;
}

/** The backend's entry points: every exports key but ./package.json, as import specifiers. */
function entryPoints(backend: ReleaseTarball): string[] {
  return Object.keys(backend.manifest.exports ?? { '.': null })
    .filter((subpath) => subpath !== './package.json')
    .map((subpath) => (subpath === '.' ? backend.name : `${backend.name}/${subpath.slice(2)}`));
}

test('every package with a peer range on core was packed', () => {
  expect(backends.map((backend) => backend.name)).toContain('@timebox/memory');
});

describe.each(backends.map((backend) => [backend.name, backend] as const))('%s', (_name, backend) => {
  test('installs beside the core at the lower bound of its peer range and imports', async () => {
    const range = backend.manifest.peerDependencies?.['@timebox/core'] ?? '';
    expect(validRange(range), `the packed peer range on @timebox/core, ${JSON.stringify(range)}, is a semver range`).not.toBeNull();
    const lowest = minVersion(range)?.version ?? '';
    const folder = await freshNpmProject(`peer-${backend.name.replace('@timebox/', '')}`);
    await run('npm', ['pkg', 'set', 'type=module'], folder);
    await npmInstall(folder, [backend.file, coreSource(lowest)]);
    const installed = JSON.parse(await readFile(join(folder, 'node_modules', '@timebox', 'core', 'package.json'), 'utf8')) as {
      version: string;
    };
    expect(installed.version, 'npm installed the core at the lower bound').toBe(lowest);
    const program = entryPoints(backend)
      .map((specifier) => `await import(${JSON.stringify(specifier)});`)
      .join('\n');
    await writeFile(join(folder, 'imports.js'), `${program}\nconsole.log('imported');\n`);
    const { stdout } = await run('node', ['imports.js'], folder);
    expect(stdout.trim()).toBe('imported');
  });
});
