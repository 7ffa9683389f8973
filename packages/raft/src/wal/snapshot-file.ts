import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Snapshot } from '../consensus/types.js';
import { ByteReader } from '../bytes/byte-reader.js';
import { ByteWriter } from '../bytes/byte-writer.js';
import { crc32 } from './crc32.js';
import { malformedRecord, MalformedRecordError, WalCorruptionError } from './errors.js';
import { snapshotName, syncDir } from './file-names.js';

/**
 * A snapshot file: magic "TBS1" u32 | body length u32 | crc32(body) u32 | body, where body is
 * index u64 | term u64 | voter count u32 | voters (length-prefixed UTF-8) | data (length-prefixed),
 * then, only when the configuration has learners or addresses: learner count u32 | learners |
 * address count u32 | (id, address) pairs. A file without them reads as it did before membership
 * changes existed.
 */
const SNAPSHOT_MAGIC = 0x31534254;
const HEADER_BYTES = 12;

function encodeSnapshot(snapshot: Snapshot): Buffer {
  const body = new ByteWriter(snapshot.data.byteLength + 64);
  body.u64le(snapshot.meta.index).u64le(snapshot.meta.term).u32le(snapshot.meta.voters.length);
  for (const voter of snapshot.meta.voters) body.nullableString32(voter);
  body.bytes32(snapshot.data);
  const learners = snapshot.meta.learners ?? [];
  const addresses = Object.entries(snapshot.meta.addresses ?? {});
  if (learners.length > 0 || addresses.length > 0) {
    body.u32le(learners.length);
    for (const learner of learners) body.nullableString32(learner);
    body.u32le(addresses.length);
    for (const [id, address] of addresses) body.nullableString32(id).nullableString32(address);
  }
  const content = body.view();
  const out = Buffer.allocUnsafe(HEADER_BYTES + content.length);
  out.writeUInt32LE(SNAPSHOT_MAGIC, 0);
  out.writeUInt32LE(content.length, 4);
  out.writeUInt32LE(crc32(content), 8);
  content.copy(out, HEADER_BYTES);
  return out;
}

/** Writes the snapshot under a temporary name, fsyncs it, renames it into place and fsyncs `dir`. */
export async function writeSnapshotFile(dir: string, snapshot: Snapshot): Promise<void> {
  const final = path.join(dir, snapshotName(snapshot.meta.index));
  const temp = `${final}.tmp`;
  const handle = await fs.open(temp, 'w');
  try {
    const bytes = encodeSnapshot(snapshot);
    let written = 0;
    while (written < bytes.length) written += (await handle.write(bytes, written, bytes.length - written, written)).bytesWritten;
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(temp, final);
  await syncDir(dir);
}

/** Reads and verifies a snapshot file; damage is a {@link WalCorruptionError} (it was renamed into place whole). */
export async function readSnapshotFile(file: string): Promise<Snapshot> {
  const bytes = await fs.readFile(file);
  if (bytes.length < HEADER_BYTES) throw new WalCorruptionError(file, 0, 'truncated snapshot header');
  if (bytes.readUInt32LE(0) !== SNAPSHOT_MAGIC) throw new WalCorruptionError(file, 0, 'bad magic');
  const length = bytes.readUInt32LE(4);
  if (HEADER_BYTES + length !== bytes.length) throw new WalCorruptionError(file, 4, 'length does not match the file size');
  const content = bytes.subarray(HEADER_BYTES);
  if (crc32(content) !== bytes.readUInt32LE(8)) throw new WalCorruptionError(file, HEADER_BYTES, 'checksum mismatch');
  try {
    const input = new ByteReader(content, malformedRecord);
    const index = input.u64le();
    const term = input.u64le();
    const count = input.u32le();
    const voters: string[] = [];
    for (let i = 0; i < count; i++) {
      const voter = input.nullableString32();
      if (voter === null) throw new MalformedRecordError('null voter');
      voters.push(voter);
    }
    const data = input.bytes32();
    if (input.remaining === 0) return { meta: { index, term, voters }, data };
    const learners: string[] = [];
    for (let i = 0, n = input.u32le(); i < n; i++) learners.push(requiredString(input.nullableString32(), 'learner'));
    const pairs: [string, string][] = [];
    for (let i = 0, n = input.u32le(); i < n; i++) {
      pairs.push([requiredString(input.nullableString32(), 'address id'), requiredString(input.nullableString32(), 'address')]);
    }
    const addresses = Object.fromEntries(pairs);
    input.end();
    return { meta: { index, term, voters, learners, addresses }, data };
  } catch (error) {
    if (error instanceof MalformedRecordError) throw new WalCorruptionError(file, HEADER_BYTES, `malformed snapshot: ${error.message}`);
    throw error;
  }
}

function requiredString(value: string | null, what: string): string {
  if (value === null) throw new MalformedRecordError(`null ${what}`);
  return value;
}
