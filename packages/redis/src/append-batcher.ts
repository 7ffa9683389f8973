import type { AppendReply, Scripts } from './scripts.js';

/** One append, laid out for the append script. */
export interface PendingAppend {
  /** The slot (shard) the aggregate lives in. */
  readonly slot: number;
  /** meta, events, then the declared index keys. */
  readonly keys: readonly string[];
  /** expected sequence, index argument count, index arguments, encoded events. */
  readonly args: readonly (string | number)[];
}

interface Waiting extends PendingAppend {
  resolve(reply: AppendReply): void;
  reject(error: unknown): void;
}

/** The keys every group of a call declares first, for one slot: see `APPEND`. */
export type SlotHead = readonly [ids: string, feed: string, feedLease: string, position: string, log: string];

/**
 * Most appends one script call carries. Besides keeping each call short on the server, a cap
 * below the usual number in flight splits them over two or more calls, so the server runs one
 * while the client handles the replies of the other: measured at 64 in flight, a cap of 32 gave
 * ~0.69 of the raw-EVALSHA rate against ~0.57 for 64 (one call, client and server taking turns).
 */
const MAX_APPENDS_PER_CALL = 32;

/**
 * Errors a cluster node answers before it runs a script (the call's keys are not all its own, the
 * topology is changing, or the server cannot run cross-slot scripts): a call that got one ran
 * nothing, so its groups can be sent again one slot per call.
 */
const NOT_RUN = /^(CROSSSLOT|MOVED|ASK|TRYAGAIN|CLUSTERDOWN)|non[- ]local key|shebang|flags|near '#'/i;

/**
 * Calls one node may have in flight. Appends for a node at its cap wait for one of its calls to
 * answer and then travel together, so the busier the store, the more appends each call carries
 * (group commit). A store on one node keeps two calls in flight there, so the server runs one
 * while the client handles the other's replies. A store spread over several nodes keeps one per
 * node (the other nodes work meanwhile): with two, the appends one node's reply freed spread
 * over every node and went out at once in small calls (measured at 64 in flight over three
 * masters: ~7 appends a call with two, ~14 with one, against ~30 for a one-slot store, and a
 * fifth less server time per append with one).
 */
const CALLS_IN_FLIGHT_ONE_NODE = 2;
const CALLS_IN_FLIGHT_PER_NODE_OF_MANY = 1;

/** One node's appends waiting for a call, and its calls in flight. */
interface NodeQueue {
  waiting: Waiting[];
  inFlight: number;
}

/**
 * Sends concurrent appends together in script calls: each keeps its own sequence check and
 * result, but many concurrent appends cost one command, one socket write and one script run
 * instead of one each. An append for a node with no call in flight goes out at once (a sequential
 * writer pays no batching delay); others wait until the current tick's work is done
 * (`process.nextTick`), or, while the node has as many calls in flight as it may (see
 * `CALLS_IN_FLIGHT_ONE_NODE`), until one of them answers.
 *
 * A call touches the keys of one node only. Without shards the whole store is one slot. With
 * shards, the appends of every shard one node serves (as the client last learnt the cluster's
 * slot map) travel together, grouped by shard, in a script flagged `allow-cross-slot-keys`, so a
 * sharded store makes as few calls as a one-slot store; should the node refuse the call (the map
 * changed, or the server predates script flags), nothing ran and each shard's group is sent on
 * its own, and a refusal for want of script flags turns the grouping off for good.
 */
export class AppendBatcher {
  readonly #scripts: Scripts;
  readonly #heads: readonly SlotHead[];
  readonly #retention: number;
  readonly #clock: '1' | '0';
  /** The node serving a slot, undefined when unknown; slots of one node may share a call. */
  readonly #nodeOf: (slot: number) => string | undefined;
  #acrossSlots = true;
  readonly #nodes = new Map<string, NodeQueue>();
  #flushScheduled = false;

  /**
   * @param heads - per slot, the keys its group declares first (listing index, feed stream, feed
   * lease, log position counter and log stream)
   * @param retention - feed entries kept (0: appends publish nothing)
   * @param clock - whether positions follow the server's clock (a sharded store, see `APPEND`)
   * @param nodeOf - which node serves a slot (for a single server, the same for all)
   */
  constructor(
    scripts: Scripts,
    heads: readonly SlotHead[],
    retention: number,
    clock: boolean,
    nodeOf: (slot: number) => string | undefined,
  ) {
    this.#scripts = scripts;
    this.#heads = heads;
    this.#retention = retention;
    this.#clock = clock ? '1' : '0';
    this.#nodeOf = nodeOf;
  }

  append(pending: PendingAppend): Promise<AppendReply> {
    return new Promise<AppendReply>((resolve, reject) => {
      const node = this.#queueOf((this.#acrossSlots ? this.#nodeOf(pending.slot) : undefined) ?? `slot ${pending.slot}`);
      if (node.inFlight === 0 && node.waiting.length === 0) {
        this.#send(node, [{ ...pending, resolve, reject }]);
        return;
      }
      node.waiting.push({ ...pending, resolve, reject });
      this.#scheduleFlush();
    });
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    process.nextTick(() => {
      this.#flushScheduled = false;
      for (const node of this.#nodes.values()) this.#flush(node);
    });
  }

  /** Sends a node's waiting appends, in arrival order, as far as its calls in flight allow. */
  #flush(node: NodeQueue): void {
    const cap = this.#nodes.size > 1 ? CALLS_IN_FLIGHT_PER_NODE_OF_MANY : CALLS_IN_FLIGHT_ONE_NODE;
    while (node.waiting.length > 0 && node.inFlight < cap) {
      const share = Math.ceil(node.waiting.length / (cap - node.inFlight));
      const size = Math.min(MAX_APPENDS_PER_CALL, share);
      this.#send(node, node.waiting.splice(0, size));
    }
  }

  #send(node: NodeQueue, batch: readonly Waiting[]): void {
    const groups = new Map<number, Waiting[]>();
    for (const append of batch) {
      const group = groups.get(append.slot);
      if (group === undefined) groups.set(append.slot, [append]);
      else group.push(append);
    }
    // The first group's keys are declared; the others' travel as arguments (see `APPEND`).
    const keys: string[] = [];
    const undeclared: string[] = [];
    const groupArgs: (string | number)[] = [];
    const ordered: Waiting[] = [];
    for (const [slot, appends] of groups) {
      const target = keys.length === 0 ? keys : undeclared;
      for (const key of this.#heads[slot] as SlotHead) target.push(key);
      groupArgs.push(appends.length);
      for (const append of appends) {
        ordered.push(append);
        groupArgs.push(append.keys.length, append.args.length);
        for (const key of append.keys) target.push(key);
        for (const arg of append.args) groupArgs.push(arg);
      }
    }
    const args: (string | number)[] = [groups.size, this.#retention, this.#clock, undeclared.length];
    for (const key of undeclared) args.push(key);
    for (const arg of groupArgs) args.push(arg);
    const acrossSlots = groups.size > 1;
    node.inFlight++;
    this.#scripts.append(keys, args, acrossSlots).then(
      (replies) => {
        this.#answered(node);
        for (let i = 0; i < ordered.length; i++) (ordered[i] as Waiting).resolve(replies[i] as AppendReply);
      },
      (error: unknown) => {
        this.#answered(node);
        if (acrossSlots && error instanceof Error && NOT_RUN.test(error.message)) {
          if (/shebang|flags|near '#'/i.test(error.message)) this.#acrossSlots = false;
          for (const [slot, appends] of groups) this.#send(this.#queueOf(`slot ${slot}`), appends);
          return;
        }
        for (const append of batch) append.reject(error);
      },
    );
  }

  /** A call of `node` answered: its waiting appends may go once this tick's replies are handled. */
  #answered(node: NodeQueue): void {
    node.inFlight--;
    if (node.waiting.length > 0) this.#scheduleFlush();
  }

  /** The queue of a node (or, when the node is unknown or grouping is off, of a slot). */
  #queueOf(name: string): NodeQueue {
    let node = this.#nodes.get(name);
    if (node === undefined) {
      node = { waiting: [], inFlight: 0 };
      this.#nodes.set(name, node);
    }
    return node;
  }
}
