import type { Socket } from 'node:net';
import type { NodeId, SnapshotRequest } from '../consensus/types.js';
import type { HostPort } from './address.js';
import { formatAddress } from './address.js';
import { ByteWriter } from '../bytes/byte-writer.js';
import { encodeMessage } from './codec.js';
import { codecError, HandshakeError, TransportError } from './errors.js';
import type { LinkFaults } from './faults.js';
import { FRAME_HEADER_BYTES, FrameKind, FrameReader, beginFrame, endFrame, writeHello } from './frames.js';
import { dial, tlsFailure } from './sockets.js';
import type { TlsCredentials } from './tls-credentials.js';

/** What a snapshot transfer needs from its transport. */
export interface SnapshotSendContext {
  readonly localId: NodeId;
  readonly clusterId: string;
  readonly maxFrameBytes: number;
  readonly chunkBytes: number;
  readonly connectTimeoutMs: number;
  readonly faults: LinkFaults | undefined;
  /** Dial over mutual TLS with these; plain TCP when undefined. */
  readonly tls: TlsCredentials | undefined;
  error(error: Error): void;
}

/**
 * Streams one snapshot to one peer on a connection of its own: hello, a header frame (the
 * snapshot message without its data, and the data length), then the data in chunk frames,
 * writing the next chunk only when the socket has drained. The transfer succeeds when the
 * receiver answers with an acknowledgement after delivering the whole snapshot.
 */
export class SnapshotTransfer {
  private readonly socket: Socket;
  private finished = false;
  private closedSignal: () => void = () => {};
  private readonly closed: Promise<void>;

  constructor(
    private readonly context: SnapshotSendContext,
    private readonly address: HostPort,
    private readonly message: SnapshotRequest,
    private readonly done: (ok: boolean) => void,
  ) {
    this.closed = new Promise((resolve) => (this.closedSignal = resolve));
    const { socket, readyEvent } = dial(address, context.tls, message.to);
    this.socket = socket;
    this.socket.setNoDelay(true);
    this.socket.setTimeout(context.connectTimeoutMs);
    this.socket.on('timeout', () => this.socket.destroy());
    this.socket.on('error', (error) => {
      // 'close' follows and fails the transfer; a failed TLS handshake is also said why.
      const failure = context.tls === undefined ? null : tlsFailure(error);
      if (failure !== null) {
        context.error(new HandshakeError(`TLS with peer ${JSON.stringify(this.peer)} at ${formatAddress(address)} failed: ${failure}`));
      }
    });
    this.socket.on('close', () => {
      this.closedSignal();
      this.finish(false);
    });
    const reader = new FrameReader(context.maxFrameBytes);
    this.socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk, (kind, body) => {
          if (kind === FrameKind.snapshotAck) {
            this.finish(true);
            this.socket.destroy();
          } else if (kind === FrameKind.reject) {
            throw new HandshakeError(
              `peer ${JSON.stringify(this.peer)} at ${formatAddress(this.address)} refused a snapshot stream: ${body.toString('utf8')}`,
            );
          } else {
            throw new TransportError(`unexpected frame kind ${kind} on a snapshot stream from ${JSON.stringify(this.peer)}`);
          }
        });
      } catch (error) {
        this.context.error(error as Error);
        this.socket.destroy();
      }
    });
    this.socket.on(readyEvent, () => {
      this.socket.setTimeout(0);
      this.socket.setKeepAlive(true, 5000);
      this.stream().catch((error: unknown) => {
        this.context.error(
          new TransportError(`snapshot stream to ${JSON.stringify(this.peer)} failed: ${(error as Error).message}`, { cause: error }),
        );
        this.socket.destroy();
      });
    });
  }

  get peer(): NodeId {
    return this.message.to;
  }

  /** Ends the transfer without reporting (the transport is closing). */
  abort(): void {
    this.finished = true;
    this.socket.destroy();
  }

  private finish(ok: boolean): void {
    if (this.finished) return;
    this.finished = true;
    this.done(ok);
  }

  private async stream(): Promise<void> {
    const { data } = this.message.snapshot;
    const head = new ByteWriter(256, codecError);
    writeHello(
      head,
      { channel: 'snapshot', clusterId: this.context.clusterId, from: this.context.localId, to: this.peer },
      this.context.maxFrameBytes,
    );
    const start = beginFrame(head, FrameKind.snapshotHeader);
    head.varuint(data.length, 'snapshot.data.length');
    encodeMessage(head, { ...this.message, snapshot: { meta: this.message.snapshot.meta, data: new Uint8Array(0) } });
    endFrame(head, start, this.context.maxFrameBytes);
    if (!(await this.write([head.take()]))) return;
    for (let offset = 0; offset < data.length; offset += this.context.chunkBytes) {
      const faults = this.context.faults;
      if (faults !== undefined) {
        if (faults.isCut(this.context.localId, this.peer)) {
          this.socket.destroy();
          return;
        }
        const delay = faults.delayOf(this.context.localId, this.peer);
        if (delay > 0 && !(await this.sleep(delay))) return;
      }
      const chunk = data.subarray(offset, Math.min(data.length, offset + this.context.chunkBytes));
      const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
      header.writeUInt32BE(chunk.length + 1, 0);
      header[4] = FrameKind.snapshotChunk;
      if (!(await this.write([header, chunk]))) return;
    }
  }

  /** Writes, then waits for 'drain' if the socket's buffer is full; false once the connection is gone. */
  private async write(parts: readonly Uint8Array[]): Promise<boolean> {
    if (this.finished || this.socket.destroyed) return false;
    this.socket.cork();
    let flowing = true;
    for (const part of parts) flowing = this.socket.write(part);
    this.socket.uncork();
    if (flowing) return true;
    let onDrain: () => void = () => {};
    const drained = new Promise<boolean>((resolve) => this.socket.once('drain', (onDrain = () => resolve(true))));
    const result = await Promise.race([drained, this.closed.then(() => false)]);
    this.socket.off('drain', onDrain);
    return result && !this.finished;
  }

  private async sleep(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const slept = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), ms)));
    const result = await Promise.race([slept, this.closed.then(() => false)]);
    clearTimeout(timer);
    return result && !this.finished;
  }
}
