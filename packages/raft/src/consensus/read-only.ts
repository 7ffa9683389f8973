import type { NodeId } from './types.js';

/** A ReadIndex request waiting for a quorum of heartbeat acknowledgements. */
export interface PendingRead {
  readonly context: string;
  /** The commit index when the request arrived: the read may be served once it is applied. */
  readonly index: number;
  /** Who asked: this node, or a follower that forwarded the request. */
  readonly requester: NodeId;
  readonly acks: Set<NodeId>;
}

/**
 * The leader's queue of ReadIndex requests (Raft thesis §6.4). Each is confirmed by a round of
 * heartbeats carrying its context; once a quorum answers, it and every older request are safe,
 * because the leader was still the leader when they arrived.
 */
export class ReadOnlyQueue {
  private readonly pending = new Map<string, PendingRead>();
  private readonly order: string[] = [];

  add(context: string, index: number, requester: NodeId, self: NodeId): void {
    if (this.pending.has(context)) return;
    this.pending.set(context, { context, index, requester, acks: new Set([self]) });
    this.order.push(context);
  }

  /** Records a heartbeat acknowledgement; returns who has acknowledged `context`, if pending. */
  acknowledge(context: string, from: NodeId): ReadonlySet<NodeId> | null {
    const read = this.pending.get(context);
    if (read === undefined) return null;
    read.acks.add(from);
    return read.acks;
  }

  /** Removes and returns every request up to and including `context`, oldest first. */
  releaseThrough(context: string): PendingRead[] {
    const at = this.order.indexOf(context);
    if (at < 0) return [];
    const released = this.order.splice(0, at + 1).map((key) => this.pending.get(key) as PendingRead);
    for (const read of released) this.pending.delete(read.context);
    return released;
  }

  /** The newest pending context, carried by the next heartbeat round. */
  lastContext(): string | null {
    return this.order[this.order.length - 1] ?? null;
  }

  size(): number {
    return this.order.length;
  }

  clear(): void {
    this.pending.clear();
    this.order.length = 0;
  }
}
