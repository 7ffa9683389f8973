import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import getReleasePlan from '@changesets/get-release-plan';
import { run } from './run.js';

/** A package packed as it will be published. */
export interface ReleaseTarball {
  readonly name: string;
  /** The version it will be published as: the pending changesets' new version, else its own. */
  readonly version: string;
  /** The tarball, in a folder outside the repository. */
  readonly file: string;
  /** The packed package.json (workspace: ranges already rewritten by pnpm pack). */
  readonly manifest: PackedManifest;
}

/** The fields of a packed package.json these checks read. */
export interface PackedManifest {
  readonly name: string;
  readonly version: string;
  readonly private?: boolean;
  readonly exports?: Record<string, unknown>;
  readonly peerDependencies?: Record<string, string>;
  readonly dependencies?: Record<string, string>;
}

/** The repository root (this file is packaging/src/release-tarballs.ts). */
export const repositoryRoot = resolve(import.meta.dirname, '..', '..');

const pnpm = ['-y', 'pnpm@10.34.8'];

/**
 * Packs every public package under packages/ with `pnpm pack` (which rewrites `workspace:`
 * ranges) and sets each tarball's version to the one the pending changesets will release it as,
 * which is what `changeset version` would write before publishing. The packages must be built.
 */
export async function packRelease(): Promise<ReleaseTarball[]> {
  const plan = await getReleasePlan(repositoryRoot);
  const releaseVersions = new Map(plan.releases.map((release) => [release.name, release.newVersion]));
  const folder = await mkdtemp(join(tmpdir(), 'timebox-release-'));
  const tarballs: ReleaseTarball[] = [];
  for (const entry of await readdir(join(repositoryRoot, 'packages'), { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const packageDir = join(repositoryRoot, 'packages', entry.name);
    const source = JSON.parse(await readFile(join(packageDir, 'package.json'), 'utf8')) as PackedManifest;
    if (source.private === true) continue;
    const packed = join(folder, 'packed', entry.name);
    await mkdir(packed, { recursive: true });
    await run('npx', [...pnpm, 'pack', '--pack-destination', packed], packageDir);
    const [file] = await readdir(packed);
    if (file === undefined) throw new Error(`pnpm pack left no tarball for ${source.name}`);
    const unpacked = join(folder, 'unpacked', entry.name);
    await mkdir(unpacked, { recursive: true });
    await run('tar', ['-xzf', join(packed, file), '-C', unpacked], folder);
    const manifestFile = join(unpacked, 'package', 'package.json');
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as PackedManifest;
    const version = releaseVersions.get(manifest.name) ?? manifest.version;
    const released: PackedManifest = { ...manifest, version };
    await writeFile(manifestFile, `${JSON.stringify(released, null, 2)}\n`);
    const tarball = join(folder, `${entry.name}-${version}.tgz`);
    await run('tar', ['-czf', tarball, '-C', unpacked, 'package'], folder);
    tarballs.push({ name: manifest.name, version, file: tarball, manifest: released });
  }
  return tarballs;
}

/** The tarball of `name`, or an error naming the packages that were packed. */
export function tarballOf(tarballs: readonly ReleaseTarball[], name: string): ReleaseTarball {
  const found = tarballs.find((tarball) => tarball.name === name);
  if (found === undefined) {
    throw new Error(`no tarball for ${name}; packed: ${tarballs.map((tarball) => tarball.name).join(', ')}`);
  }
  return found;
}
