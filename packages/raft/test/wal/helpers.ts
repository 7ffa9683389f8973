import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Entry } from '../../src/consensus/types.js';

/** A fresh temporary directory; `cleanup` removes every one made so far. */
export function tempDirs(): { make(): string; cleanup(): void } {
  const made: string[] = [];
  return {
    make() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'timebox-wal-'));
      made.push(dir);
      return dir;
    },
    cleanup() {
      for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Payload bytes that depend on index and term only, so a reader can check an entry is intact. */
export function payload(index: number, term: number, size = 16 + (index % 50)): Uint8Array {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (index * 31 + term * 7 + i) & 0xff;
  return data;
}

export function entry(index: number, term: number, size?: number): Entry {
  return index % 5 === 0
    ? { index, term, kind: 'empty', proposalId: null, data: new Uint8Array(0) }
    : { index, term, kind: 'command', proposalId: `p-${index}-${term}`, data: payload(index, term, size) };
}

/** Entries `from`..`to` inclusive, all in `term`. */
export function run(from: number, to: number, term: number, size?: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term, size));
  return out;
}

/** Segment files of `dir`, oldest first. */
export function segmentFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((name) => name.endsWith('.wal'))
    .sort()
    .map((name) => path.join(dir, name));
}

export function snapshotFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((name) => name.endsWith('.snap'))
    .sort();
}
