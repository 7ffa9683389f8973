import type { Message, NodeId } from '../../../src/consensus/types.js';
import type { Transport, TransportEvents } from '../../../src/node/ports.js';

/**
 * An in-process network for driver tests. Messages are copied (as a real transport would
 * serialize them) and delivered on a later turn of the event loop; links can be cut one way or
 * both, and a filter can drop chosen messages. A message to a node that is not connected, or
 * over a cut link, is lost and its sender hears `onUnreachable`; a snapshot send reports its
 * outcome through `onSnapshotSent`.
 */
export class InProcessNetwork {
  private readonly endpoints = new Map<NodeId, TransportEvents>();
  private readonly cut = new Set<string>();
  private filter: ((message: Message) => boolean) | null = null;
  delivered = 0;
  dropped = 0;

  /** The `connect` function for node `id`'s server. */
  connector(id: NodeId): (events: TransportEvents) => Transport {
    return (events) => {
      this.endpoints.set(id, events);
      let open = true;
      return {
        send: (message) => {
          if (open) setImmediate(() => this.deliver(events, structuredClone(message)));
        },
        close: async () => {
          open = false;
          if (this.endpoints.get(id) === events) this.endpoints.delete(id);
        },
      };
    };
  }

  /** Cuts every link between `id` and the others, both ways. */
  isolate(id: NodeId, others: readonly NodeId[]): void {
    for (const other of others) {
      if (other === id) continue;
      this.cut.add(`${id}>${other}`).add(`${other}>${id}`);
    }
  }

  /** Drops every message `drop` returns true for, until `heal()` or another filter. */
  dropWhere(drop: ((message: Message) => boolean) | null): void {
    this.filter = drop;
  }

  heal(): void {
    this.cut.clear();
    this.filter = null;
  }

  private deliver(sender: TransportEvents, message: Message): void {
    const target = this.endpoints.get(message.to);
    const lost = target === undefined || this.cut.has(`${message.from}>${message.to}`) || (this.filter?.(message) ?? false);
    if (lost) {
      this.dropped++;
      sender.onUnreachable?.(message.to);
    } else {
      this.delivered++;
      target.onMessage(message);
    }
    if (message.type === 'snapshot') sender.onSnapshotSent?.(message.to, !lost);
  }
}
