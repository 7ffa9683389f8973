import { ByteWriter } from '../bytes/byte-writer.js';
import { crc32 } from './crc32.js';

/**
 * Frames and batches, the unit of atomicity on disk.
 *
 * frame  = length u32 | crc32(content) u32 | content (record type byte + body)
 * batch  = magic u32 | payload length u32 | frame count u32 | crc32(payload) u32
 *          | crc32(previous 16 header bytes) u32 | payload (the frames)
 *
 * All integers little-endian. A batch is valid only as a whole: a reader that finds any part of
 * it missing or failing a checksum treats the whole batch as absent (or as corruption, see
 * recovery).
 */
export const BATCH_MAGIC = 0x31574254; // "TBW1"
export const BATCH_HEADER_BYTES = 20;
export const FRAME_HEADER_BYTES = 8;

/** Where a frame landed inside an encoded batch. */
export interface FramePlacement {
  /** Offset of the frame's first byte from the batch start. */
  readonly offset: number;
  /** Frame header plus content. */
  readonly length: number;
}

/** Builds one batch from record contents; also reports where each frame sits. */
export function encodeBatch(contents: readonly Buffer[]): { bytes: Buffer; frames: FramePlacement[] } {
  const out = new ByteWriter(BATCH_HEADER_BYTES + contents.reduce((sum, content) => sum + FRAME_HEADER_BYTES + content.length, 0));
  const frames = writeBatch(out, contents.length, (writer, i) => void writer.raw(contents[i] as Buffer));
  return { bytes: Buffer.from(out.view()), frames };
}

/**
 * Writes one batch into `out` (from its start: it is reset first), the content of frame `i`
 * written in place by `writeContent(out, i)`, so no frame is built on its own and copied.
 * Returns where each frame sits; the bytes are `out.view()`.
 */
export function writeBatch(out: ByteWriter, count: number, writeContent: (out: ByteWriter, i: number) => void): FramePlacement[] {
  out.reset();
  for (let i = 0; i < BATCH_HEADER_BYTES; i++) out.u8(0);
  const frames: FramePlacement[] = new Array<FramePlacement>(count);
  for (let i = 0; i < count; i++) {
    const offset = out.length;
    out.u32le(0).u32le(0);
    writeContent(out, i);
    const length = out.length - offset - FRAME_HEADER_BYTES;
    out.patchU32le(offset, length);
    out.patchU32le(offset + 4, crc32(out.view().subarray(offset + FRAME_HEADER_BYTES)));
    frames[i] = { offset, length: FRAME_HEADER_BYTES + length };
  }
  const bytes = out.view();
  out.patchU32le(0, BATCH_MAGIC);
  out.patchU32le(4, bytes.length - BATCH_HEADER_BYTES);
  out.patchU32le(8, count);
  out.patchU32le(12, crc32(bytes.subarray(BATCH_HEADER_BYTES)));
  out.patchU32le(16, crc32(bytes.subarray(0, 16)));
  return frames;
}

/** A frame found in a valid batch. */
export interface ScannedFrame {
  /** File offset of the frame's first byte. */
  readonly offset: number;
  readonly length: number;
  readonly content: Buffer;
}

/** A batch that parsed and passed every checksum. */
export interface ScannedBatch {
  readonly offset: number;
  readonly end: number;
  readonly frames: readonly ScannedFrame[];
}

/** Why the bytes at `offset` are not a valid batch. */
export interface BatchFailure {
  readonly offset: number;
  readonly reason: string;
}

/** Parses the batch starting at `offset` of `file`, or says why there is none. */
export function readBatch(file: Buffer, offset: number): ScannedBatch | BatchFailure {
  if (file.length - offset < BATCH_HEADER_BYTES) return { offset, reason: 'truncated batch header' };
  if (crc32(file.subarray(offset, offset + 16)) !== file.readUInt32LE(offset + 16)) {
    return { offset, reason: 'header checksum mismatch' };
  }
  if (file.readUInt32LE(offset) !== BATCH_MAGIC) return { offset, reason: 'bad magic' };
  const payloadLength = file.readUInt32LE(offset + 4);
  const count = file.readUInt32LE(offset + 8);
  const start = offset + BATCH_HEADER_BYTES;
  const end = start + payloadLength;
  if (end > file.length) return { offset, reason: `length beyond end (batch needs ${end - offset} bytes, ${file.length - offset} remain)` };
  if (crc32(file.subarray(start, end)) !== file.readUInt32LE(offset + 12)) return { offset, reason: 'checksum mismatch' };
  const frames: ScannedFrame[] = [];
  let pos = start;
  while (pos < end) {
    if (end - pos < FRAME_HEADER_BYTES) return { offset: pos, reason: 'truncated frame header' };
    const length = file.readUInt32LE(pos);
    const contentEnd = pos + FRAME_HEADER_BYTES + length;
    if (contentEnd > end) return { offset: pos, reason: 'frame length beyond end of batch' };
    const content = file.subarray(pos + FRAME_HEADER_BYTES, contentEnd);
    if (crc32(content) !== file.readUInt32LE(pos + 4)) return { offset: pos, reason: 'frame checksum mismatch' };
    frames.push({ offset: pos, length: FRAME_HEADER_BYTES + length, content });
    pos = contentEnd;
  }
  if (frames.length !== count) return { offset, reason: `frame count mismatch (header says ${count}, found ${frames.length})` };
  return { offset, end, frames };
}

/** Whether a fully valid batch starts anywhere after `from`: then damage at `from` is not a torn tail. */
export function validBatchAfter(file: Buffer, from: number): number | null {
  for (let pos = from; pos + BATCH_HEADER_BYTES <= file.length; pos++) {
    if (file.readUInt32LE(pos) !== BATCH_MAGIC) continue;
    if ('frames' in readBatch(file, pos)) return pos;
  }
  return null;
}

/** Checks one frame read back from disk on its own; returns its content or a reason. */
export function readFrame(frame: Buffer): Buffer | string {
  if (frame.length < FRAME_HEADER_BYTES) return 'truncated frame header';
  const length = frame.readUInt32LE(0);
  if (length !== frame.length - FRAME_HEADER_BYTES) return 'frame length mismatch';
  const content = frame.subarray(FRAME_HEADER_BYTES);
  if (crc32(content) !== frame.readUInt32LE(4)) return 'frame checksum mismatch';
  return content;
}
