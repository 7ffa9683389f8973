import type { Message, NodeId } from '../../src/consensus/types.js';
import type { TcpTransportOptions } from '../../src/transport/options.js';
import { TcpTransport } from '../../src/transport/tcp-transport.js';

/** One transport plus everything it reported, for assertions. */
export interface TestNode {
  readonly id: NodeId;
  readonly transport: TcpTransport;
  readonly received: Message[];
  readonly unreachable: NodeId[];
  readonly snapshotsSent: { peer: NodeId; ok: boolean }[];
  readonly errors: Error[];
  readonly progress: { from: NodeId; receivedBytes: number; totalBytes: number; at: number }[];
  /** Index into `received` at the time of each message arrival, with its arrival time. */
  readonly arrivals: number[];
}

export type NodeOptions = Partial<Omit<TcpTransportOptions, 'localId' | 'events' | 'onError' | 'onSnapshotProgress'>>;

/** Starts a transport listening on 127.0.0.1 (port 0 unless `listen` says otherwise). */
export async function startNode(id: NodeId, options: NodeOptions = {}): Promise<TestNode> {
  const received: Message[] = [];
  const arrivals: number[] = [];
  const unreachable: NodeId[] = [];
  const snapshotsSent: { peer: NodeId; ok: boolean }[] = [];
  const errors: Error[] = [];
  const progress: TestNode['progress'] = [];
  const transport = new TcpTransport({
    localId: id,
    listen: '127.0.0.1:0',
    peers: new Map(),
    clusterId: 'test-cluster',
    reconnect: { initialMs: 20, maxMs: 200 },
    ...options,
    events: {
      onMessage: (message) => {
        received.push(message);
        arrivals.push(Date.now());
      },
      onUnreachable: (peer) => unreachable.push(peer),
      onSnapshotSent: (peer, ok) => snapshotsSent.push({ peer, ok }),
    },
    onError: (error) => errors.push(error),
    onSnapshotProgress: (from, receivedBytes, totalBytes) => progress.push({ from, receivedBytes, totalBytes, at: Date.now() }),
  });
  await transport.start();
  return { id, transport, received, unreachable, snapshotsSent, errors, progress, arrivals };
}

/** Starts one transport per ID and tells each the others' addresses. */
export async function startCluster(ids: readonly NodeId[], options: NodeOptions = {}): Promise<Map<NodeId, TestNode>> {
  const nodes = new Map<NodeId, TestNode>();
  for (const id of ids) nodes.set(id, await startNode(id, options));
  for (const node of nodes.values()) {
    for (const other of nodes.values()) node.transport.setPeer(other.id, other.transport.address);
  }
  return nodes;
}

export async function closeAll(nodes: Iterable<TestNode>): Promise<void> {
  await Promise.all([...nodes].map((node) => node.transport.close()));
}

/** Polls `condition` until it holds; fails with `what` after `timeoutMs` (generous: the machine is shared). */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export function heartbeat(from: NodeId, to: NodeId, commit: number, context: string | null = null): Message {
  return { type: 'heartbeat', from, to, term: 1, commit, context };
}

/** The `commit` values of the heartbeats `node` received from `from`, in arrival order. */
export function commitsFrom(node: TestNode, from: NodeId): number[] {
  const commits: number[] = [];
  for (const message of node.received) if (message.type === 'heartbeat' && message.from === from) commits.push(message.commit);
  return commits;
}

export function nextTick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
