/**
 * The three parts a Raft node process is assembled from, as the node driver sees them. Each has
 * one real implementation (the WAL in `src/wal/`, TCP in `src/transport/`, LMDB in `src/state/`);
 * the driver (`src/node/`) only knows these shapes, so each part is tested on its own.
 */
import type { LogStorage, SnapshotConfiguration } from '../consensus/storage.js';
import type { Entry, HardState, Message, NodeId, Snapshot } from '../consensus/types.js';

/** What one consensus `Ready` asks the driver to make durable, in this order. */
export interface DurableWrite {
  /** A snapshot received from the leader: replaces the whole log. */
  readonly snapshot: Snapshot | null;
  /** Entries to append, overwriting any stored entries from `entries[0].index` on. */
  readonly entries: readonly Entry[];
  readonly hardState: HardState | null;
}

/** The durable log and term/vote state (the member's write-ahead log). Reads come from `LogStorage`. */
export interface DurableLog extends LogStorage {
  hardState(): HardState;
  /**
   * Resolves once the whole write is durable (one fdatasync; writes issued together share it). A
   * write that only moves the commit index may resolve once written, unsynced (as etcd's
   * `MustSync` allows: a lost commit index is learned again from the leader).
   */
  save(write: DurableWrite): Promise<void>;
  /** Records a snapshot of the applied state at `index`, with the configuration as of `index`, as a file (temp name, fsync, rename). */
  createSnapshot(index: number, config: SnapshotConfiguration, data: Uint8Array): Promise<Snapshot>;
  /** Forgets entries up to `index` (covered by the latest snapshot), deleting whole old segments. */
  compact(index: number): Promise<void>;
  close(): Promise<void>;
}

/** Callbacks a transport reports to. */
export interface TransportEvents {
  /** A message from a peer, decoded. */
  onMessage(message: Message): void;
  /** Sending to `peer` failed or its connection is down (the driver tells consensus). */
  onUnreachable?(peer: NodeId): void;
  /** A snapshot stream to `peer` finished (`ok`) or failed. */
  onSnapshotSent?(peer: NodeId, ok: boolean): void;
}

/** Moves consensus messages between nodes. `send` never throws and never waits. */
export interface Transport {
  send(message: Message): void;
  close(): Promise<void>;
}

/** A committed entry as the state machine applies it. */
export type CommittedEntry = Pick<Entry, 'index' | 'kind' | 'proposalId' | 'data'>;

/** A snapshot image of the state machine and the log index of the state it copies. */
export interface StateImage {
  readonly index: number;
  readonly data: Uint8Array;
}

/**
 * The replicated state machine (the LMDB state of `src/state/`). `apply` is called with committed
 * entries in log order, one batch at a time (the next call only after the previous resolved);
 * consecutive entries may share a log index (the proposals one envelope entry carried, in order,
 * each with its own proposal ID), and the applied index is that of the last entry. It resolves
 * once the batch and the applied index are durable, with the result of each command
 * entry keyed by its proposal ID. It must be deterministic: the same entries give the same state
 * and results on every node.
 */
export interface StateMachine<Result> {
  /** The index of the last entry applied durably (0 for a fresh state). */
  appliedIndex(): number;
  /**
   * Applies a batch. A state may call `onDecided` with the results as soon as they are final —
   * the batch's changes are made and only wait for their durable commit, which either succeeds or
   * fails the node — so the driver answers its proposals without waiting for the commit. A state
   * that does so must keep its reads from answering before the commit (see
   * `MaterializedState.whenCommitted`); the proposals' durability is the log's, on a majority.
   */
  apply(
    entries: readonly CommittedEntry[],
    onDecided?: (results: ReadonlyMap<string, Result>) => void,
  ): Promise<ReadonlyMap<string, Result>>;
  /**
   * A consistent image of the whole state, with the applied index it is the state at. Batches may
   * be applied while it is taken (it must not hold the event loop for long: a member that stalls
   * loses its leadership or its leader); the image is of one point in time all the same, and
   * `index` says which. `signal` abandons it: it then rejects with the signal's reason.
   */
  exportImage(options?: { readonly signal?: AbortSignal | undefined }): Promise<StateImage>;
  /** Replaces the whole state with a snapshot image taken at `index`. */
  restoreSnapshot(data: Uint8Array, index: number): Promise<void>;
  /**
   * Whether something reading the state on this node wants committed entries applied as soon as
   * they arrive (a publisher, a live feed). Without it, or while it answers
   * false, a node none of whose own proposals or reads wait may apply in larger, later batches.
   */
  wantsPromptApply?(): boolean;
}

/** What the backend needs from the cluster: one call per write, answered after local apply. */
export interface Replicator<Result> {
  /**
   * Proposes `command` (forwarded to the leader when this node is not it) and resolves with its
   * result once it is committed and applied on this node. Rejects with a typed error when no
   * leader is reachable within the configured wait.
   */
  propose(command: Uint8Array): Promise<Result>;
  /** Resolves once this node knows a leader and has applied what was committed when it joined. */
  ready(): Promise<void>;
  close(): Promise<void>;
}
