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

/**
 * Bytes of the image checksummed and handed to the file in one step: a large image is written in
 * pieces, each its own turn of the event loop, so a member writing a snapshot of a large state
 * goes on heartbeating (the whole image at once held the loop for about half a second at 94 MB).
 */
const WRITE_PIECE_BYTES = 4 << 20;

/** The body's parts in order: what precedes the data, the data itself (not copied), what follows it. */
function bodyParts(snapshot: Snapshot): Uint8Array[] {
  const head = new ByteWriter(64);
  head.u64le(snapshot.meta.index).u64le(snapshot.meta.term).u32le(snapshot.meta.voters.length);
  for (const voter of snapshot.meta.voters) head.nullableString32(voter);
  head.u32le(snapshot.data.byteLength);
  const tail = new ByteWriter(64);
  const learners = snapshot.meta.learners ?? [];
  const addresses = Object.entries(snapshot.meta.addresses ?? {});
  if (learners.length > 0 || addresses.length > 0) {
    tail.u32le(learners.length);
    for (const learner of learners) tail.nullableString32(learner);
    tail.u32le(addresses.length);
    for (const [id, address] of addresses) tail.nullableString32(id).nullableString32(address);
  }
  return [head.view(), snapshot.data, tail.view()];
}

/**
 * Writes the snapshot under a temporary name, fsyncs it, renames it into place and fsyncs `dir`.
 * The body goes first, piece by piece, its checksum computed as it goes; the header, which holds
 * the checksum, last. A crash at any point leaves only the temporary file, which recovery ignores.
 */
export async function writeSnapshotFile(dir: string, snapshot: Snapshot): Promise<void> {
  const final = path.join(dir, snapshotName(snapshot.meta.index));
  const temp = `${final}.tmp`;
  const handle = await fs.open(temp, 'w');
  try {
    let offset = HEADER_BYTES;
    let checksum = 0;
    for (const part of bodyParts(snapshot)) {
      for (let start = 0; start < part.byteLength; start += WRITE_PIECE_BYTES) {
        const piece = part.subarray(start, start + WRITE_PIECE_BYTES);
        checksum = crc32(piece, checksum);
        await writeAll(handle, piece, offset);
        offset += piece.byteLength;
      }
    }
    const header = Buffer.allocUnsafe(HEADER_BYTES);
    header.writeUInt32LE(SNAPSHOT_MAGIC, 0);
    header.writeUInt32LE(offset - HEADER_BYTES, 4);
    header.writeUInt32LE(checksum, 8);
    await writeAll(handle, header, 0);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(temp, final);
  await syncDir(dir);
}

async function writeAll(handle: fs.FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let written = 0;
  while (written < bytes.byteLength) {
    written += (await handle.write(bytes, written, bytes.byteLength - written, position + written)).bytesWritten;
  }
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
