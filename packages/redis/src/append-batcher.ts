import type { AppendReply, Scripts } from './scripts.js';

/** One append, laid out for the append script. */
export interface PendingAppend {
  /** meta, events, then the declared index keys. */
  readonly keys: readonly string[];
  /** expected sequence, index argument count, index arguments, encoded events. */
  readonly args: readonly (string | number)[];
}

interface Waiting extends PendingAppend {
  resolve(reply: AppendReply): void;
  reject(error: unknown): void;
}

/**
 * Most appends one script call carries. Besides keeping each call short on the server, a cap
 * below the usual number in flight splits them over two or more calls, so the server runs one
 * while the client handles the replies of the other: measured at 64 in flight, a cap of 32 gave
 * ~0.69 of the raw-EVALSHA rate against ~0.57 for 64 (one call, client and server taking turns).
 */
const MAX_APPENDS_PER_CALL = 32;

/**
 * Sends the appends issued in the same tick as one script call: each keeps its own sequence
 * check and result, but many concurrent appends cost one command, one socket write and one
 * script run instead of one each. An append issued while no call is in flight goes out at once
 * (a sequential writer pays no batching delay); the others wait only until the current tick's
 * work is done (`process.nextTick`). All appends of one log partition share a hash slot (with `shard`),
 * so a combined call is legal on a Cluster.
 */
export class AppendBatcher {
  readonly #scripts: Scripts;
  readonly #head: readonly string[];
  readonly #retention: number;
  readonly #clock: '1' | '0';
  #queue: Waiting[] = [];
  #inFlight = 0;

  /**
   * @param head - the keys every call declares first: listing index, feed stream, feed lease, and
   * the log partition's position counter and log stream (one batcher per partition, so that a call
   * stays in one slot)
   * @param retention - feed entries kept (0: appends publish nothing)
   * @param clock - whether positions follow the server's clock (a sharded store, see `APPEND`)
   */
  constructor(scripts: Scripts, head: readonly [string, string, string, string, string], retention: number, clock: boolean) {
    this.#scripts = scripts;
    this.#head = head;
    this.#retention = retention;
    this.#clock = clock ? '1' : '0';
  }

  append(pending: PendingAppend): Promise<AppendReply> {
    return new Promise<AppendReply>((resolve, reject) => {
      if (this.#inFlight === 0 && this.#queue.length === 0) {
        this.#send([{ ...pending, resolve, reject }]);
        return;
      }
      if (this.#queue.length === 0) process.nextTick(() => this.#flush());
      this.#queue.push({ ...pending, resolve, reject });
    });
  }

  #flush(): void {
    const queue = this.#queue;
    this.#queue = [];
    for (let start = 0; start < queue.length; start += MAX_APPENDS_PER_CALL) {
      this.#send(queue.slice(start, start + MAX_APPENDS_PER_CALL));
    }
  }

  #send(batch: Waiting[]): void {
    const keys: string[] = [...this.#head];
    const args: (string | number)[] = [batch.length, this.#retention, this.#clock];
    for (const append of batch) {
      args.push(append.keys.length, append.args.length);
      for (const key of append.keys) keys.push(key);
      for (const arg of append.args) args.push(arg);
    }
    this.#inFlight++;
    this.#scripts.append(keys, args).then(
      (replies) => {
        this.#inFlight--;
        for (let i = 0; i < batch.length; i++) (batch[i] as Waiting).resolve(replies[i] as AppendReply);
      },
      (error: unknown) => {
        this.#inFlight--;
        for (const append of batch) append.reject(error);
      },
    );
  }
}
