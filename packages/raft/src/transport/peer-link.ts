import type { Socket } from 'node:net';
import type { Message, NodeId } from '../consensus/types.js';
import type { HostPort } from './address.js';
import { formatAddress } from './address.js';
import { ByteWriter } from '../bytes/byte-writer.js';
import { encodeMessage } from './codec.js';
import { codecError, HandshakeError, TransportError } from './errors.js';
import { FrameKind, FrameReader, beginFrame, endMessageFrames, writeHello } from './frames.js';
import { dial, tlsFailure } from './sockets.js';
import type { TlsCredentials } from './tls-credentials.js';

/** What a link needs from its transport. */
export interface LinkContext {
  readonly localId: NodeId;
  readonly clusterId: string;
  readonly maxFrameBytes: number;
  readonly maxQueueBytes: number;
  readonly connectTimeoutMs: number;
  readonly reconnect: { readonly initialMs: number; readonly maxMs: number };
  /** Dial over mutual TLS with these; plain TCP when undefined. */
  readonly tls: TlsCredentials | undefined;
  unreachable(peer: NodeId): void;
  error(error: Error): void;
}

type LinkState = 'idle' | 'connecting' | 'open' | 'backoff' | 'closed';

/**
 * The outbound message connection to one peer. Messages are encoded straight into a pending
 * buffer that is bounded by bytes (together with what the socket still holds) and written once
 * per tick, so everything sent to the peer in one tick leaves in one socket write. While the peer
 * is down (between a failed connection and the next attempt) messages are dropped at once and
 * the peer reported unreachable; nothing piles up.
 */
export class PeerLink {
  private state: LinkState = 'idle';
  private socket: Socket | null = null;
  private pending = new ByteWriter(4096, codecError);
  private flushScheduled = false;
  private attempts = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly peer: NodeId,
    private address: HostPort,
    private readonly context: LinkContext,
  ) {}

  /** Queues `message` for the peer, or drops it (reporting the peer unreachable) when it cannot go. */
  send(message: Message): void {
    switch (this.state) {
      case 'closed':
        return;
      case 'backoff':
        this.context.unreachable(this.peer);
        return;
      case 'idle':
        this.dial();
        break;
      default:
        break;
    }
    const mark = this.pending.length;
    try {
      const start = beginFrame(this.pending, FrameKind.message);
      encodeMessage(this.pending, message);
      endMessageFrames(this.pending, start, this.context.maxFrameBytes);
    } catch (error) {
      this.pending.truncate(mark);
      this.context.error(
        new TransportError(`cannot send a ${message.type} message to ${JSON.stringify(this.peer)}: ${(error as Error).message}`, {
          cause: error,
        }),
      );
      return;
    }
    const before = mark + (this.socket?.writableLength ?? 0);
    const queued = this.pending.length + (this.socket?.writableLength ?? 0);
    // A message larger than the whole queue (an oversized entry) still goes while the queue is not
    // full: it could never go otherwise, and replication would stop at it.
    const aloneTooLarge = queued - before > this.context.maxQueueBytes && before < this.context.maxQueueBytes;
    if (queued > this.context.maxQueueBytes && !aloneTooLarge) {
      this.pending.truncate(mark);
      this.context.unreachable(this.peer);
      return;
    }
    if (this.state === 'open' && !this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** Points the link at a new address; a live or pending connection to the old one is dropped. */
  setAddress(address: HostPort): void {
    if (address.host === this.address.host && address.port === this.address.port) return;
    this.address = address;
    if (this.state === 'idle' || this.state === 'closed') return;
    this.dropSocket();
    this.clearTimer();
    this.attempts = 0;
    this.dial();
  }

  /**
   * The peer just connected to this node, so it is up: a link waiting out its redial backoff dials
   * now rather than at the end of the wait (up to `reconnect.maxMs` after a peer's restart, during
   * which everything sent to it — votes, acknowledgements, forwarded writes — would be dropped).
   */
  peerIsUp(): void {
    if (this.state !== 'backoff') return;
    this.clearTimer();
    this.attempts = 0;
    this.dial();
  }

  close(): void {
    this.state = 'closed';
    this.clearTimer();
    this.dropSocket();
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.state !== 'open' || this.socket === null || this.pending.length === 0) return;
    this.socket.write(this.pending.take());
  }

  private dial(): void {
    this.state = 'connecting';
    const { socket, readyEvent } = dial(this.address, this.context.tls, this.peer);
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setTimeout(this.context.connectTimeoutMs);
    let opened = false;
    let rejected = false;
    let openedAt = 0;
    const reader = new FrameReader(this.context.maxFrameBytes);
    socket.on(readyEvent, () => {
      if (this.socket !== socket) return;
      opened = true;
      openedAt = Date.now();
      socket.setTimeout(0);
      socket.setKeepAlive(true, 5000);
      this.state = 'open';
      const hello = new ByteWriter(128, codecError);
      writeHello(
        hello,
        { channel: 'messages', clusterId: this.context.clusterId, from: this.context.localId, to: this.peer },
        this.context.maxFrameBytes,
      );
      socket.cork();
      socket.write(hello.take());
      if (this.pending.length > 0) socket.write(this.pending.take());
      socket.uncork();
    });
    socket.on('timeout', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk, (kind, body) => {
          if (kind !== FrameKind.reject) throw new TransportError(`unexpected frame kind ${kind} from the receiving side`);
          rejected = true;
          const reason = body.toString('utf8');
          throw new HandshakeError(`peer ${JSON.stringify(this.peer)} at ${formatAddress(this.address)} refused this node: ${reason}`);
        });
      } catch (error) {
        this.context.error(error as Error);
        socket.destroy();
      }
    });
    socket.on('error', (error) => {
      // 'close' follows; a refused or reset connection is reported as the peer being unreachable,
      // a failed TLS handshake (a certificate refused either way, a peer without TLS) also here.
      const failure = this.context.tls === undefined ? null : tlsFailure(error);
      if (failure === null || this.socket !== socket) return;
      rejected = true;
      this.context.error(
        new HandshakeError(`TLS with peer ${JSON.stringify(this.peer)} at ${formatAddress(this.address)} failed: ${failure}`),
      );
    });
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.pending = new ByteWriter(4096, codecError);
      if (this.state === 'closed') return;
      // A connection that worked resets the backoff, so a restarted peer is found again quickly;
      // a refused hello does not, so a misconfigured peer is not hammered. Nor does a connection
      // closed within `maxMs`: a TLS listener refuses a certificate after the dialer's side of the
      // handshake is done, and one that wants TLS drops a plain dialer, both just by closing.
      const brief = Date.now() - openedAt < this.context.reconnect.maxMs;
      if (opened && !rejected && !brief) this.attempts = 0;
      this.context.unreachable(this.peer);
      this.backoff();
    });
  }

  private backoff(): void {
    const { initialMs, maxMs } = this.context.reconnect;
    const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(this.attempts, 30));
    this.attempts++;
    // Jitter in [ceiling/2, ceiling] so peers that lost a node together do not redial in lockstep.
    const wait = ceiling / 2 + Math.random() * (ceiling / 2);
    this.state = 'backoff';
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.state === 'backoff') this.dial();
    }, wait);
  }

  private dropSocket(): void {
    const socket = this.socket;
    this.socket = null;
    this.pending = new ByteWriter(4096, codecError);
    socket?.destroy();
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
