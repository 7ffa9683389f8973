/**
 * Framing. Every frame is `u32 length (big-endian) | u8 kind | body`, where `length` counts the
 * kind byte and the body. A connection opens with a hello frame; see the package README for the
 * whole exchange.
 */
import type { NodeId } from '../consensus/types.js';
import { ByteReader } from '../bytes/byte-reader.js';
import { ByteWriter } from '../bytes/byte-writer.js';
import { codecError, CodecError, HandshakeError } from './errors.js';

/** Bumped on any incompatible change of the wire format; peers of another version are refused. */
export const PROTOCOL_VERSION = 1;

/** "TBRF": a connection that does not start with it is not a Timebox Raft peer. */
const MAGIC = 0x54425246;

export const FrameKind = {
  /** Opens every connection: magic, version, channel, cluster ID, sender, intended receiver. */
  hello: 1,
  /** One consensus message (message channel). */
  message: 2,
  /** Receiver → sender before closing: why the hello was refused (a string). */
  reject: 3,
  /** Snapshot channel: total data length, then the snapshot message with empty data. */
  snapshotHeader: 4,
  /** Snapshot channel: the next raw bytes of the snapshot data. */
  snapshotChunk: 5,
  /** Receiver → sender on the snapshot channel: the whole snapshot arrived and was delivered. */
  snapshotAck: 6,
  /**
   * Message channel: the next bytes of a message too large for one frame (a log entry larger than
   * the frame limit); the `message` frame that follows carries its last bytes and completes it.
   */
  messagePart: 7,
} as const;

/** What a connection carries after its hello. */
export type Channel = 'messages' | 'snapshot';

const CHANNEL_CODES: Record<Channel, number> = { messages: 1, snapshot: 2 };

export const FRAME_HEADER_BYTES = 5;

/** Starts a frame in `writer`; returns the offset to pass to {@link endFrame}. */
export function beginFrame(writer: ByteWriter, kind: number): number {
  const start = writer.reserve(4);
  writer.u8(kind);
  return start;
}

/** Patches the frame's length; throws `CodecError` (the caller rolls back) when it exceeds `maxFrameBytes`. */
export function endFrame(writer: ByteWriter, start: number, maxFrameBytes: number): number {
  const length = writer.length - start - 4;
  if (length > maxFrameBytes) throw new CodecError(`a frame of ${length} bytes exceeds maxFrameBytes (${maxFrameBytes})`);
  writer.patchU32be(start, length);
  return length;
}

/**
 * The largest message reassembled from parts. Beyond every entry a member would propose
 * (`maxEntryBytes` is at most 256 MiB): it only stops a broken peer from growing a buffer forever.
 */
export const MAX_ASSEMBLED_MESSAGE_BYTES = 1 << 30;

/**
 * Ends the message frame begun at `start`. A message that does not fit one frame (an entry larger
 * than the frame limit, which can be in a log however it got there) is cut into `messagePart`
 * frames and a closing `message` frame instead of being refused: refusing it would stop
 * replication at that entry for good. Throws `CodecError` (the caller rolls back) only beyond
 * {@link MAX_ASSEMBLED_MESSAGE_BYTES}.
 */
export function endMessageFrames(writer: ByteWriter, start: number, maxFrameBytes: number): void {
  const length = writer.length - start - 4;
  if (length <= maxFrameBytes) {
    writer.patchU32be(start, length);
    return;
  }
  const bodyBytes = length - 1;
  if (bodyBytes > MAX_ASSEMBLED_MESSAGE_BYTES) {
    throw new CodecError(`a message of ${bodyBytes} bytes exceeds the largest a peer reassembles (${MAX_ASSEMBLED_MESSAGE_BYTES})`);
  }
  // Copied out, since the parts' headers go where the body is now. Rare: only oversized entries.
  const body = Buffer.from(writer.view().subarray(start + FRAME_HEADER_BYTES));
  writer.truncate(start);
  const partBytes = maxFrameBytes - 1;
  for (let offset = 0; offset < body.length; offset += partBytes) {
    const end = Math.min(offset + partBytes, body.length);
    const at = beginFrame(writer, end === body.length ? FrameKind.message : FrameKind.messagePart);
    writer.raw(body.subarray(offset, end));
    endFrame(writer, at, maxFrameBytes);
  }
}

/** The opening frame of every connection. */
export interface Hello {
  readonly version: number;
  readonly channel: Channel;
  readonly clusterId: string;
  /** The sending node. */
  readonly from: NodeId;
  /** The node the sender meant to reach (so a peer that moved is not confused with another). */
  readonly to: NodeId;
}

export function writeHello(writer: ByteWriter, hello: Omit<Hello, 'version'>, maxFrameBytes: number): void {
  const start = beginFrame(writer, FrameKind.hello);
  writer.u32be(MAGIC);
  writer.u16be(PROTOCOL_VERSION);
  writer.u8(CHANNEL_CODES[hello.channel]);
  writer.taggedString(hello.clusterId, 'clusterId');
  writer.taggedString(hello.from, 'from');
  writer.taggedString(hello.to, 'to');
  endFrame(writer, start, maxFrameBytes);
}

/**
 * Reads a hello body and checks it against this node; throws `HandshakeError` saying what did
 * not match (the connection is then refused), or `CodecError` for a malformed body.
 */
export function readHello(body: Buffer, expected: { readonly clusterId: string; readonly localId: NodeId }): Hello {
  const reader = new ByteReader(body, codecError);
  if (reader.remaining < 4 || reader.u32be('magic') !== MAGIC)
    throw new HandshakeError('the peer is not a Timebox Raft node (bad magic in hello)');
  const version = reader.u16be('version');
  if (version !== PROTOCOL_VERSION)
    throw new HandshakeError(`protocol version ${version} is not supported (this node speaks version ${PROTOCOL_VERSION})`);
  const code = reader.u8('channel');
  const channel = (Object.keys(CHANNEL_CODES) as Channel[]).find((name) => CHANNEL_CODES[name] === code);
  if (channel === undefined) throw new HandshakeError(`unknown channel ${code} in hello`);
  const clusterId = reader.taggedString('clusterId');
  const from = reader.taggedString('from');
  const to = reader.taggedString('to');
  if (reader.remaining !== 0) throw new CodecError(`${reader.remaining} unexpected bytes after the hello`);
  if (clusterId !== expected.clusterId) {
    throw new HandshakeError(
      `cluster ID mismatch: node ${JSON.stringify(from)} belongs to cluster ${JSON.stringify(clusterId)}, this node ${JSON.stringify(expected.localId)} to ${JSON.stringify(expected.clusterId)}`,
    );
  }
  if (to !== expected.localId)
    throw new HandshakeError(
      `node ${JSON.stringify(from)} meant to reach ${JSON.stringify(to)}, but this is node ${JSON.stringify(expected.localId)}`,
    );
  if (from === '') throw new HandshakeError('the hello names no sender');
  return { version, channel, clusterId, from, to };
}

/** A frame as cut from the stream: `owned` says whether `body` is a private copy or a view into a socket chunk. */
export type FrameHandler = (kind: number, body: Buffer, owned: boolean) => void;

/**
 * Cuts a byte stream into frames. Frames that lie inside one socket chunk are handed out as
 * views (no copy); a frame split across chunks is assembled into one buffer of its exact size,
 * so large frames cost one copy, not one per chunk.
 */
export class FrameReader {
  private readonly header = Buffer.alloc(4);
  private headerFill = 0;
  private frame: Buffer | null = null;
  private frameFill = 0;

  constructor(private readonly maxFrameBytes: number) {}

  /** True while a frame is partly read (a stream that ends now was truncated). */
  get midFrame(): boolean {
    return this.headerFill > 0 || this.frame !== null;
  }

  /** Feeds one chunk; calls `onFrame` per complete frame. Throws `CodecError` on a bad length. */
  push(chunk: Buffer, onFrame: FrameHandler): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.frame !== null) {
        const copied = chunk.copy(this.frame, this.frameFill, offset);
        this.frameFill += copied;
        offset += copied;
        if (this.frameFill < this.frame.length) return;
        const frame = this.frame;
        this.frame = null;
        this.frameFill = 0;
        onFrame(frame[0] as number, frame.subarray(1), true);
        continue;
      }
      let length: number;
      if (this.headerFill === 0 && chunk.length - offset >= 4) {
        length = chunk.readUInt32BE(offset);
        offset += 4;
      } else {
        while (this.headerFill < 4 && offset < chunk.length) this.header[this.headerFill++] = chunk[offset++] as number;
        if (this.headerFill < 4) return;
        this.headerFill = 0;
        length = this.header.readUInt32BE(0);
      }
      this.checkLength(length);
      if (chunk.length - offset >= length) {
        onFrame(chunk[offset] as number, chunk.subarray(offset + 1, offset + length), false);
        offset += length;
      } else {
        this.frame = Buffer.allocUnsafeSlow(length);
      }
    }
  }

  private checkLength(length: number): void {
    if (length === 0) throw new CodecError('empty frame (length 0)');
    if (length > this.maxFrameBytes)
      throw new CodecError(`frame length ${length} exceeds maxFrameBytes (${this.maxFrameBytes}); garbage on the connection?`);
  }
}
