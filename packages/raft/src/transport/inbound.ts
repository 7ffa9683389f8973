import { constants as bufferConstants } from 'node:buffer';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Message, NodeId, SnapshotRequest } from '../consensus/types.js';
import { ByteReader } from '../bytes/byte-reader.js';
import { ByteWriter } from '../bytes/byte-writer.js';
import { decodeMessage, decodeOwnedMessage } from './codec.js';
import { codecError, CodecError, HandshakeError, TransportError } from './errors.js';
import { FrameKind, FrameReader, MAX_ASSEMBLED_MESSAGE_BYTES, beginFrame, endFrame, readHello, type Hello } from './frames.js';
import { looksLikeTls, memberIdProblem } from './sockets.js';

/** What an inbound connection needs from its transport. */
export interface InboundContext {
  readonly localId: NodeId;
  readonly clusterId: string;
  readonly maxFrameBytes: number;
  readonly helloTimeoutMs: number;
  /** This side speaks TLS (the socket is already past its handshake). */
  readonly tls: boolean;
  /** With TLS: the sender a hello names must be the member the peer's certificate names. */
  readonly bindMemberId: boolean;
  deliver(message: Message): void;
  progress(from: NodeId, receivedBytes: number, totalBytes: number): void;
  error(error: Error): void;
  /** A sender opened a new message connection: any older one from it is stale. */
  claimSender(sender: NodeId, connection: InboundConnection): void;
  forget(connection: InboundConnection): void;
}

interface SnapshotAssembly {
  readonly message: SnapshotRequest;
  readonly data: Buffer;
  filled: number;
}

/**
 * One accepted connection. The first frame must be a valid hello; a wrong cluster, version or
 * receiver gets a reject frame and the connection is closed. Then, on a message channel, every
 * frame is one message to deliver; on a snapshot channel, a header and the data chunks that are
 * reassembled into one snapshot message, delivered and acknowledged. Any protocol or decode
 * error is reported and closes the connection; nothing is thrown out of the socket handlers.
 */
export class InboundConnection {
  private hello: Hello | null = null;
  private snapshot: SnapshotAssembly | null = null;
  /** The parts received so far of a message larger than one frame (see `FrameKind.messagePart`). */
  private parts: Buffer[] = [];
  private partBytes = 0;
  private ended = false;
  private readonly reader: FrameReader;

  constructor(
    readonly socket: Socket,
    private readonly context: InboundContext,
  ) {
    this.reader = new FrameReader(context.maxFrameBytes);
    socket.setNoDelay(true);
    socket.setTimeout(context.helloTimeoutMs);
    socket.on('timeout', () => {
      if (this.hello === null) this.fail(new HandshakeError(`no hello from ${this.remote} within ${context.helloTimeoutMs} ms`));
    });
    socket.on('data', (chunk: Buffer) => {
      if (this.ended) return;
      try {
        // A hello frame's length is far below 0x16000000, so a first byte of 0x16 is a TLS ClientHello.
        // The reject frame it gets back fails its handshake, so it can say the other side has no TLS.
        if (this.hello === null && !context.tls && looksLikeTls(chunk)) {
          this.reject(
            new HandshakeError('a TLS handshake arrived but this member has no tls configured (configure tls on every member, or on none)'),
          );
          return;
        }
        this.reader.push(chunk, (kind, body, owned) => {
          if (!this.ended) this.onFrame(kind, body, owned);
        });
      } catch (error) {
        this.fail(error as Error);
      }
    });
    socket.on('error', () => {
      // 'close' follows.
    });
    socket.on('close', () => {
      context.forget(this);
      const assembly = this.snapshot;
      if (assembly !== null && !this.ended) {
        context.error(
          new TransportError(
            `snapshot stream from ${JSON.stringify(assembly.message.from)} was cut after ${assembly.filled} of ${assembly.data.length} bytes`,
          ),
        );
      }
      this.ended = true;
    });
  }

  /** The sender named in the hello, once it arrived. */
  get sender(): NodeId | null {
    return this.hello?.from ?? null;
  }

  private get remote(): string {
    return `${this.socket.remoteAddress ?? '?'}:${this.socket.remotePort ?? '?'}`;
  }

  /** Closes without reporting (the transport is closing, or a newer connection replaced this one). */
  close(): void {
    this.ended = true;
    this.socket.destroy();
  }

  private onFrame(kind: number, body: Buffer, owned: boolean): void {
    const hello = this.hello;
    if (hello === null) {
      this.onHello(kind, body);
      return;
    }
    if (hello.channel === 'messages') {
      if (kind === FrameKind.messagePart) {
        this.addPart(body, owned);
        return;
      }
      if (kind !== FrameKind.message) throw new CodecError(`unexpected frame kind ${kind} on a message connection`);
      if (this.parts.length === 0) {
        this.deliver(this.checked(decodeOwnedMessage(body, owned)));
        return;
      }
      this.addPart(body, owned);
      const whole = Buffer.concat(this.parts, this.partBytes);
      this.parts = [];
      this.partBytes = 0;
      this.deliver(this.checked(decodeOwnedMessage(whole, true)));
      return;
    }
    if (kind === FrameKind.snapshotHeader) {
      this.onSnapshotHeader(body);
    } else if (kind === FrameKind.snapshotChunk) {
      this.onSnapshotChunk(body);
    } else {
      throw new CodecError(`unexpected frame kind ${kind} on a snapshot stream`);
    }
  }

  private onHello(kind: number, body: Buffer): void {
    if (kind !== FrameKind.hello) throw new HandshakeError(`the first frame from ${this.remote} is of kind ${kind}, not a hello`);
    let hello: Hello;
    try {
      hello = readHello(body, { clusterId: this.context.clusterId, localId: this.context.localId });
    } catch (error) {
      this.reject(error as Error);
      return;
    }
    if (this.context.bindMemberId) {
      const certificate = (this.socket as TLSSocket).getPeerCertificate();
      const problem = memberIdProblem(hello.from, certificate.subject?.CN);
      if (problem !== undefined) {
        this.reject(new HandshakeError(`its hello claims member ${JSON.stringify(hello.from)}, but ${problem.message}`));
        return;
      }
    }
    this.hello = hello;
    this.socket.setTimeout(0);
    if (hello.channel === 'messages') this.context.claimSender(hello.from, this);
  }

  /** Keeps one part of a message split over several frames; a view into a socket chunk is copied. */
  private addPart(body: Buffer, owned: boolean): void {
    this.partBytes += body.length;
    if (this.partBytes > MAX_ASSEMBLED_MESSAGE_BYTES) {
      throw new CodecError(`a message split over frames exceeds ${MAX_ASSEMBLED_MESSAGE_BYTES} bytes`);
    }
    this.parts.push(owned ? body : Buffer.from(body));
  }

  /** Tells the sender why (so both sides can log it), reports, and closes. */
  private reject(error: Error): void {
    this.ended = true;
    const problem = error instanceof HandshakeError ? error.problem : error.message;
    this.context.error(new HandshakeError(`refused a connection from ${this.remote}: ${problem}`));
    const writer = new ByteWriter(256, codecError);
    const start = beginFrame(writer, FrameKind.reject);
    writer.raw(Buffer.from(problem, 'utf8').subarray(0, 4000));
    endFrame(writer, start, Number.MAX_SAFE_INTEGER);
    this.socket.end(writer.take());
    // Do not wait on a peer that never reads.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private checked(message: Message): Message {
    const sender = this.hello?.from;
    if (message.from !== sender)
      throw new TransportError(`a message from ${JSON.stringify(message.from)} arrived on the connection of ${JSON.stringify(sender)}`);
    if (message.to !== this.context.localId)
      throw new TransportError(`a message for ${JSON.stringify(message.to)} arrived at node ${JSON.stringify(this.context.localId)}`);
    return message;
  }

  private onSnapshotHeader(body: Buffer): void {
    if (this.snapshot !== null) throw new CodecError('a second snapshot header on one stream');
    const reader = new ByteReader(body, codecError);
    const length = reader.varuint('snapshot.data.length');
    if (length > bufferConstants.MAX_LENGTH) throw new CodecError(`snapshot of ${length} bytes is larger than a buffer can hold`);
    const message = this.checked(decodeMessage(body, reader.offset));
    if (message.type !== 'snapshot') throw new CodecError(`a ${message.type} message in a snapshot header`);
    if (message.snapshot.data.length !== 0) throw new CodecError('a snapshot header must not carry data');
    this.snapshot = { message, data: Buffer.allocUnsafeSlow(length), filled: 0 };
    this.completeIfFull();
  }

  private onSnapshotChunk(body: Buffer): void {
    const assembly = this.snapshot;
    if (assembly === null) throw new CodecError('a snapshot chunk before the snapshot header');
    if (assembly.filled + body.length > assembly.data.length) {
      throw new CodecError(`snapshot chunks overrun the announced ${assembly.data.length} bytes`);
    }
    body.copy(assembly.data, assembly.filled);
    assembly.filled += body.length;
    this.context.progress(assembly.message.from, assembly.filled, assembly.data.length);
    this.completeIfFull();
  }

  private completeIfFull(): void {
    const assembly = this.snapshot;
    if (assembly === null || assembly.filled < assembly.data.length) return;
    this.ended = true;
    const { message, data } = assembly;
    this.deliver({
      ...message,
      snapshot: { meta: message.snapshot.meta, data: new Uint8Array(data.buffer, data.byteOffset, data.length) },
    });
    const writer = new ByteWriter(16, codecError);
    endFrame(writer, beginFrame(writer, FrameKind.snapshotAck), this.context.maxFrameBytes);
    this.socket.end(writer.take());
  }

  private deliver(message: Message): void {
    try {
      this.context.deliver(message);
    } catch (error) {
      // The receiver's handler failed; that is not the peer's fault, so the connection stays.
      this.context.error(
        new TransportError(
          `onMessage threw for a ${message.type} message from ${JSON.stringify(message.from)}: ${(error as Error).message}`,
          { cause: error },
        ),
      );
    }
  }

  private fail(error: Error): void {
    if (this.ended) return;
    this.ended = true;
    const who = this.hello === null ? this.remote : `${JSON.stringify(this.hello.from)} (${this.remote})`;
    this.context.error(new TransportError(`closed the connection from ${who}: ${error.message}`, { cause: error }));
    this.socket.destroy();
  }
}
