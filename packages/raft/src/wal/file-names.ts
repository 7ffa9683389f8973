import * as fs from 'node:fs/promises';

/**
 * Segment files are `<seq>-<first index>.wal`: `seq` (16 digits) counts segments in the order
 * they were created, so sorting names sorts by write order, which is also first-index order;
 * the first index (20 digits) is that of the first entry the segment was opened for.
 * Snapshot files are `snapshot-<index>.snap` (20 digits), written as `….snap.tmp` first.
 */
const SEGMENT = /^(\d{16})-(\d{20})\.wal$/;
const SNAPSHOT = /^snapshot-(\d{20})\.snap$/;
const TEMP = /\.tmp$/;

export function segmentName(seq: number, firstIndex: number): string {
  return `${String(seq).padStart(16, '0')}-${String(firstIndex).padStart(20, '0')}.wal`;
}

export function snapshotName(index: number): string {
  return `snapshot-${String(index).padStart(20, '0')}.snap`;
}

/** What a data directory holds, each list sorted oldest first. */
export interface DirListing {
  readonly segments: { readonly name: string; readonly seq: number; readonly firstIndex: number }[];
  readonly snapshots: { readonly name: string; readonly index: number }[];
  readonly temps: string[];
}

export async function listDir(dir: string): Promise<DirListing> {
  const listing: DirListing = { segments: [], snapshots: [], temps: [] };
  for (const name of await fs.readdir(dir)) {
    const segment = SEGMENT.exec(name);
    if (segment) listing.segments.push({ name, seq: Number(segment[1]), firstIndex: Number(segment[2]) });
    const snapshot = SNAPSHOT.exec(name);
    if (snapshot) listing.snapshots.push({ name, index: Number(snapshot[1]) });
    if (TEMP.test(name)) listing.temps.push(name);
  }
  listing.segments.sort((a, b) => a.seq - b.seq);
  listing.snapshots.sort((a, b) => a.index - b.index);
  return listing;
}

/** Makes renames, creations and deletions in `dir` durable. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
