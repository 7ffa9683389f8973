import { ConfigError, requirePositiveInteger } from '@timebox/core';
import type { NodeId } from '../consensus/types.js';
import type { TransportEvents } from '../node/ports.js';
import { parseAddress, type HostPort } from './address.js';
import { LinkFaults } from './faults.js';
import type { TlsCredentials } from './tls-credentials.js';

/** How to build a {@link TcpTransport}. */
export interface TcpTransportOptions {
  /** This node's ID, sent in every hello. */
  readonly localId: NodeId;
  /** Where to listen, `"host:port"`; port 0 picks a free port (read it back from `address`). */
  readonly listen: string;
  /** Every peer's `"host:port"`. An entry for `localId` itself is ignored. */
  readonly peers: ReadonlyMap<NodeId, string>;
  /** Connections from another cluster are refused. */
  readonly clusterId: string;
  /** Where received messages and send outcomes go. */
  readonly events: TransportEvents;
  /** Fault injection for tests, applied to what this node sends. */
  readonly faults?: LinkFaults;
  /** Mutual TLS on every connection, in and out (from `loadTlsCredentials`). Default: plain TCP. */
  readonly tls?: TlsCredentials;
  /** Largest frame sent or accepted, in bytes; a larger message is sent in parts (`FrameKind.messagePart`). Default 16 MiB. */
  readonly maxFrameBytes?: number;
  /** Bytes queued for one peer (not yet taken by its socket) before messages are dropped. Default 32 MiB. */
  readonly maxQueueBytes?: number;
  /** Redial backoff: starts at `initialMs`, doubles per failure up to `maxMs`, jittered. Default 50 / 2000. */
  readonly reconnect?: { readonly initialMs: number; readonly maxMs: number };
  /** Snapshot chunk size in bytes. Default 1 MiB. */
  readonly chunkBytes?: number;
  /** `onUnreachable` is reported at most once per this interval per peer. Default 100 ms. */
  readonly unreachableIntervalMs?: number;
  /** A dial that has not connected after this long is abandoned. Default 5000 ms. */
  readonly connectTimeoutMs?: number;
  /** Protocol, handshake and decode failures (never thrown). Default: `process.emitWarning`. */
  readonly onError?: (error: Error) => void;
  /** Receiving side: called after each snapshot chunk with the bytes received so far (progress, diagnostics). */
  readonly onSnapshotProgress?: (from: NodeId, receivedBytes: number, totalBytes: number) => void;
}

/** The options with defaults filled in and addresses parsed. */
export interface ResolvedTransportOptions {
  readonly localId: NodeId;
  readonly listen: HostPort;
  readonly peers: Map<NodeId, HostPort>;
  readonly clusterId: string;
  readonly events: TransportEvents;
  readonly faults: LinkFaults | undefined;
  readonly tls: TlsCredentials | undefined;
  readonly maxFrameBytes: number;
  readonly maxQueueBytes: number;
  readonly reconnect: { readonly initialMs: number; readonly maxMs: number };
  readonly chunkBytes: number;
  readonly unreachableIntervalMs: number;
  readonly connectTimeoutMs: number;
  readonly onError: (error: Error) => void;
  readonly onSnapshotProgress: ((from: NodeId, receivedBytes: number, totalBytes: number) => void) | undefined;
}

export const TRANSPORT_DEFAULTS = Object.freeze({
  maxFrameBytes: 16 << 20,
  maxQueueBytes: 32 << 20,
  reconnect: Object.freeze({ initialMs: 50, maxMs: 2000 }),
  chunkBytes: 1 << 20,
  unreachableIntervalMs: 100,
  connectTimeoutMs: 5000,
});

// The u32 frame length is the hard ceiling; the floor keeps room for any hello.
const MIN_FRAME_BYTES = 1024;
const MAX_FRAME_BYTES = 0xffffffff;

/** Validates transport options, throwing `ConfigError` naming the first bad field. */
export function resolveTransportOptions(options: TcpTransportOptions): ResolvedTransportOptions {
  if (typeof options !== 'object' || options === null) throw new ConfigError('options', 'must be an object', options);
  const { localId, clusterId, events } = options;
  if (typeof localId !== 'string' || localId === '') throw new ConfigError('localId', 'must be a non-empty string', localId);
  if (typeof clusterId !== 'string' || clusterId === '') throw new ConfigError('clusterId', 'must be a non-empty string', clusterId);
  if (typeof events !== 'object' || events === null || typeof events.onMessage !== 'function') {
    throw new ConfigError('events', 'must be an object with an onMessage function', events);
  }
  const listen = parseAddress(options.listen, 'listen');
  // Checked through an `unknown` copy: instanceof on `options.peers` itself would widen it to Map<any, any>.
  const peersOption: unknown = options.peers;
  if (!(peersOption instanceof Map)) throw new ConfigError('peers', 'must be a Map of node ID to "host:port"', options.peers);
  const peers = new Map<NodeId, HostPort>();
  for (const [id, address] of options.peers) {
    if (typeof id !== 'string' || id === '') throw new ConfigError('peers', 'must have non-empty string node IDs as keys', id);
    if (id !== localId) peers.set(id, parseAddress(address, `peers[${JSON.stringify(id)}]`));
  }
  if (options.faults !== undefined && !(options.faults instanceof LinkFaults))
    throw new ConfigError('faults', 'must be a LinkFaults', options.faults);
  const tls = options.tls;
  if (tls !== undefined && (typeof tls !== 'object' || tls === null || !('clientContext' in tls)))
    throw new ConfigError('tls', 'must be credentials from loadTlsCredentials', tls);
  const maxFrameBytes = options.maxFrameBytes ?? TRANSPORT_DEFAULTS.maxFrameBytes;
  requirePositiveInteger('maxFrameBytes', maxFrameBytes);
  if (maxFrameBytes < MIN_FRAME_BYTES || maxFrameBytes > MAX_FRAME_BYTES) {
    throw new ConfigError('maxFrameBytes', `must be from ${MIN_FRAME_BYTES} to ${MAX_FRAME_BYTES}`, maxFrameBytes);
  }
  const maxQueueBytes = options.maxQueueBytes ?? TRANSPORT_DEFAULTS.maxQueueBytes;
  requirePositiveInteger('maxQueueBytes', maxQueueBytes);
  const reconnect = options.reconnect ?? TRANSPORT_DEFAULTS.reconnect;
  if (typeof reconnect !== 'object' || reconnect === null) throw new ConfigError('reconnect', 'must be { initialMs, maxMs }', reconnect);
  requirePositiveInteger('reconnect.initialMs', reconnect.initialMs);
  requirePositiveInteger('reconnect.maxMs', reconnect.maxMs);
  if (reconnect.maxMs < reconnect.initialMs)
    throw new ConfigError('reconnect.maxMs', `must be ≥ reconnect.initialMs (${reconnect.initialMs})`, reconnect.maxMs);
  const chunkBytes = options.chunkBytes ?? Math.min(TRANSPORT_DEFAULTS.chunkBytes, maxFrameBytes - 1);
  requirePositiveInteger('chunkBytes', chunkBytes);
  if (chunkBytes >= maxFrameBytes) throw new ConfigError('chunkBytes', `must be below maxFrameBytes (${maxFrameBytes})`, chunkBytes);
  const unreachableIntervalMs = options.unreachableIntervalMs ?? TRANSPORT_DEFAULTS.unreachableIntervalMs;
  if (typeof unreachableIntervalMs !== 'number' || !Number.isSafeInteger(unreachableIntervalMs) || unreachableIntervalMs < 0) {
    throw new ConfigError('unreachableIntervalMs', 'must be an integer ≥ 0', unreachableIntervalMs);
  }
  const connectTimeoutMs = options.connectTimeoutMs ?? TRANSPORT_DEFAULTS.connectTimeoutMs;
  requirePositiveInteger('connectTimeoutMs', connectTimeoutMs);
  const onError = options.onError ?? ((error: Error) => process.emitWarning(error));
  if (typeof onError !== 'function') throw new ConfigError('onError', 'must be a function', onError);
  const onSnapshotProgress = options.onSnapshotProgress;
  if (onSnapshotProgress !== undefined && typeof onSnapshotProgress !== 'function') {
    throw new ConfigError('onSnapshotProgress', 'must be a function', onSnapshotProgress);
  }
  return {
    localId,
    listen,
    peers,
    clusterId,
    events,
    faults: options.faults,
    tls,
    maxFrameBytes,
    maxQueueBytes,
    reconnect: { initialMs: reconnect.initialMs, maxMs: reconnect.maxMs },
    chunkBytes,
    unreachableIntervalMs,
    connectTimeoutMs,
    onError,
    onSnapshotProgress,
  };
}
