import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './run.js';

/** Flags for every npm install here: no audit or funding calls, the cache first. */
export const npmInstallFlags = ['--no-audit', '--no-fund', '--prefer-offline'] as const;

/** A fresh folder outside the repository, so nothing resolves from the workspace. */
export async function freshFolder(label: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `timebox-${label}-`));
}

/** A fresh folder with `npm init -y` run in it. */
export async function freshNpmProject(label: string): Promise<string> {
  const folder = await freshFolder(label);
  await run('npm', ['init', '-y'], folder);
  return folder;
}

/** `npm install` the given specs (tarball paths or name@version) into `folder`. */
export async function npmInstall(folder: string, specs: readonly string[], dev = false): Promise<void> {
  await run('npm', ['install', ...(dev ? ['--save-dev'] : []), ...npmInstallFlags, ...specs], folder);
}
