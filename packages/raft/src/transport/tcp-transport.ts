import type { AddressInfo, Socket } from 'node:net';
import type { Message, NodeId, SnapshotRequest } from '../consensus/types.js';
import type { Transport } from '../node/ports.js';
import { formatAddress, parseAddress, type HostPort } from './address.js';
import { DelayLine } from './delay-line.js';
import { HandshakeError, TransportError } from './errors.js';
import { InboundConnection, type InboundContext } from './inbound.js';
import { resolveTransportOptions, type ResolvedTransportOptions, type TcpTransportOptions } from './options.js';
import { PeerLink, type LinkContext } from './peer-link.js';
import { SnapshotTransfer, type SnapshotSendContext } from './snapshot-sender.js';
import { listen, type Listener } from './sockets.js';

// Hello must arrive this soon after a connection is accepted, or the connection is dropped.
const HELLO_TIMEOUT_MS = 10_000;

/**
 * Raft messages between members over TCP. Each node listens for its peers and dials each
 * peer it sends to, so inbound and outbound paths are independent, one-way connections. Messages
 * go as length-prefixed binary frames after a hello that carries the protocol version, cluster ID
 * and both node IDs. Snapshots stream in chunks on a connection per transfer, so heartbeats and
 * appends never queue behind them. `send` never throws and never waits: a message that cannot go
 * is dropped and the peer reported unreachable (at most once per `unreachableIntervalMs`).
 */
export class TcpTransport implements Transport {
  private readonly options: ResolvedTransportOptions;
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly delayLines = new Map<NodeId, DelayLine<Message>>();
  private readonly transfers = new Set<SnapshotTransfer>();
  private readonly inbound = new Set<InboundConnection>();
  private readonly inboundBySender = new Map<NodeId, InboundConnection>();
  private readonly lastUnreachable = new Map<NodeId, number>();
  private readonly linkContext: LinkContext;
  private readonly snapshotContext: SnapshotSendContext;
  private readonly inboundContext: InboundContext;
  private listener: Listener | null = null;
  private listening: HostPort | null = null;
  private closed = false;
  private accepted = 0;
  private closing: Promise<void> | null = null;

  /** Validates the options (throwing `ConfigError` naming the field); call `start` to listen. */
  constructor(options: TcpTransportOptions) {
    this.options = resolveTransportOptions(options);
    const { localId, clusterId, maxFrameBytes, maxQueueBytes, reconnect, chunkBytes, connectTimeoutMs, faults, tls } = this.options;
    const error = (failure: Error): void => this.reportError(failure);
    this.linkContext = {
      localId,
      clusterId,
      maxFrameBytes,
      maxQueueBytes,
      reconnect,
      connectTimeoutMs,
      tls,
      error,
      unreachable: (peer) => this.reportUnreachable(peer),
    };
    this.snapshotContext = { localId, clusterId, maxFrameBytes, chunkBytes, connectTimeoutMs, faults, tls, error };
    this.inboundContext = {
      localId,
      clusterId,
      maxFrameBytes,
      helloTimeoutMs: HELLO_TIMEOUT_MS,
      tls: tls !== undefined,
      bindMemberId: tls?.bindMemberId ?? false,
      error,
      deliver: (message) => this.options.events.onMessage(message),
      progress: (from, receivedBytes, totalBytes) => {
        const handler = this.options.onSnapshotProgress;
        if (handler !== undefined) this.callEvent('onSnapshotProgress', () => handler(from, receivedBytes, totalBytes));
      },
      claimSender: (sender, connection) => {
        const previous = this.inboundBySender.get(sender);
        this.inboundBySender.set(sender, connection);
        previous?.close();
        this.links.get(sender)?.peerIsUp();
      },
      forget: (connection) => {
        this.inbound.delete(connection);
        const sender = connection.sender;
        if (sender !== null && this.inboundBySender.get(sender) === connection) this.inboundBySender.delete(sender);
      },
    };
  }

  /** Starts listening; resolves once the port is bound (rejects with the OS error, e.g. EADDRINUSE). */
  async start(): Promise<void> {
    if (this.closed) throw new TransportError('start after close');
    if (this.listener !== null) throw new TransportError('start called twice');
    const listener = listen(
      this.options.tls,
      HELLO_TIMEOUT_MS,
      (socket) => this.accept(socket),
      (reason, remote) => this.reportError(new HandshakeError(`refused a TLS connection from ${remote}: ${reason}`)),
    );
    this.listener = listener;
    const server = listener.server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.options.listen.host, port: this.options.listen.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) => this.reportError(new TransportError(`listener failed: ${error.message}`, { cause: error })));
    const bound = server.address() as AddressInfo;
    this.listening = { host: bound.address, port: bound.port };
  }

  /** The address actually listened on (`"host:port"`, the real port when 0 was asked for). */
  get address(): string {
    if (this.listening === null) throw new TransportError('not listening: call start() first');
    return formatAddress(this.listening);
  }

  /**
   * Connections handed to the frame reader since `start` (with TLS, only those whose handshake
   * succeeded): for diagnostics and tests that check a refused peer was never read.
   */
  get acceptedConnections(): number {
    return this.accepted;
  }

  /** Sends `message` to `message.to`. Never throws, never waits; order per peer is kept. */
  send(message: Message): void {
    if (this.closed) return;
    try {
      const peer = message.to;
      const faults = this.options.faults;
      let delayMs = 0;
      if (faults !== undefined) {
        const verdict = faults.verdict(this.options.localId, peer);
        if (verdict.kind !== 'deliver') {
          if (verdict.kind === 'drop') this.reportUnreachable(peer);
          if (message.type === 'snapshot') this.reportSnapshot(peer, false);
          return;
        }
        delayMs = verdict.delayMs;
      }
      if (message.type === 'snapshot') {
        this.sendSnapshot(message);
        return;
      }
      const line = this.delayLines.get(peer);
      if (delayMs > 0 || line?.busy === true) {
        this.delayLine(peer).push(message, delayMs);
        return;
      }
      this.forward(message);
    } catch (error) {
      this.reportError(new TransportError(`send failed: ${(error as Error).message}`, { cause: error }));
    }
  }

  /** Sets or changes a peer's address (a peer may come back elsewhere); throws `ConfigError` for a bad address. */
  setPeer(id: NodeId, address: string): void {
    const parsed = parseAddress(address, `peers[${JSON.stringify(id)}]`);
    if (id === this.options.localId) return;
    this.options.peers.set(id, parsed);
    this.links.get(id)?.setAddress(parsed);
  }

  /** Stops listening and drops every connection, queue and transfer; later sends are ignored. Idempotent. */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.closed = true;
    for (const line of this.delayLines.values()) line.close();
    for (const link of this.links.values()) link.close();
    for (const transfer of this.transfers) transfer.abort();
    for (const connection of this.inbound) connection.close();
    const listener = this.listener;
    this.closing = listener === null ? Promise.resolve() : new Promise<void>((resolve) => listener.server.close(() => resolve()));
    // After close(): it stops new connections first, then waits for these (TLS handshakes included) to end.
    listener?.dropConnections();
    return this.closing;
  }

  private accept(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.accepted++;
    this.inbound.add(new InboundConnection(socket, this.inboundContext));
  }

  /** Hands a message (its faults already applied) to the peer's connection. */
  private forward(message: Message): void {
    if (this.closed) return;
    const link = this.link(message.to);
    if (link === null) {
      this.reportUnreachable(message.to);
      return;
    }
    link.send(message);
  }

  private link(peer: NodeId): PeerLink | null {
    let link = this.links.get(peer);
    if (link !== undefined) return link;
    const address = this.options.peers.get(peer);
    if (address === undefined) return null;
    link = new PeerLink(peer, address, this.linkContext);
    this.links.set(peer, link);
    return link;
  }

  private delayLine(peer: NodeId): DelayLine<Message> {
    let line = this.delayLines.get(peer);
    if (line === undefined) this.delayLines.set(peer, (line = new DelayLine((message) => this.forward(message))));
    return line;
  }

  private sendSnapshot(message: SnapshotRequest): void {
    const address = this.options.peers.get(message.to);
    if (address === undefined) {
      this.reportUnreachable(message.to);
      this.reportSnapshot(message.to, false);
      return;
    }
    const transfer = new SnapshotTransfer(this.snapshotContext, address, message, (ok) => {
      this.transfers.delete(transfer);
      if (!ok) this.reportUnreachable(message.to);
      this.reportSnapshot(message.to, ok);
    });
    this.transfers.add(transfer);
  }

  /** Rate-limited, and deferred so the driver is never re-entered from inside `send`. */
  private reportUnreachable(peer: NodeId): void {
    const events = this.options.events;
    if (events.onUnreachable === undefined || this.closed) return;
    const now = Date.now();
    const last = this.lastUnreachable.get(peer);
    if (last !== undefined && now - last < this.options.unreachableIntervalMs) return;
    this.lastUnreachable.set(peer, now);
    queueMicrotask(() => {
      if (!this.closed) this.callEvent('onUnreachable', () => events.onUnreachable?.(peer));
    });
  }

  private reportSnapshot(peer: NodeId, ok: boolean): void {
    const events = this.options.events;
    if (events.onSnapshotSent === undefined || this.closed) return;
    queueMicrotask(() => {
      if (!this.closed) this.callEvent('onSnapshotSent', () => events.onSnapshotSent?.(peer, ok));
    });
  }

  private callEvent(name: string, call: () => void): void {
    try {
      call();
    } catch (error) {
      this.reportError(new TransportError(`${name} threw: ${(error as Error).message}`, { cause: error }));
    }
  }

  private reportError(error: Error): void {
    if (this.closed) return;
    try {
      this.options.onError(error);
    } catch {
      // An error handler that fails has nowhere left to report to.
    }
  }
}
