import { decodeAggregateId, holdWhile, type ArchiveRecordData } from '@timebox/core';
import type { Cluster, Redis } from 'ioredis';
import { decodeEvents } from './event-codec.js';
import { guard } from './errors.js';
import type { Scripts } from './scripts.js';

/** A stream entry as ioredis returns it: ID and flat field/value list. */
type StreamEntry = [id: string, fields: string[]];

export interface ArchiveConsumerSettings {
  /** The archive streams: one per slot of the store (one per shard with `shards`). */
  readonly streams: readonly string[];
  readonly group: string;
  readonly consumer: string;
  readonly claimIdleMs: number;
  readonly blockMs: number;
}

/** An entry taken from one of the streams. */
interface Taken {
  /** Which of the settings' streams it came from. */
  readonly index: number;
  readonly entry: StreamEntry;
}

/**
 * Reads archive records from the store's stream (one per shard with `shards`: an archive moves an
 * aggregate atomically, so its record lands in the aggregate's slot) through a consumer group. New records arrive by
 * a blocking XREADGROUP on a connection of its own (a blocked connection cannot serve the
 * store's other commands); records another consumer took and left unacknowledged for
 * `claimIdleMs` are taken over with XAUTOCLAIM, while a consumer whose handler is still running
 * keeps renewing its hold so that its record never looks idle. Aborting disconnects the blocked connection, so
 * a waiting consumer stops at once.
 *
 * With several streams (a sharded store; a blocking read cannot span slots) each round looks at
 * every stream in turn, starting one further each round so that no shard is favoured, and then
 * blocks on one stream for `blockMs`; a record that lands on another shard meanwhile waits for the
 * next round, at most `blockMs`, as a stale record waits for its reclaim.
 */
export class ArchiveConsumer {
  readonly #client: Redis | Cluster;
  readonly #scripts: Scripts;
  readonly #settings: ArchiveConsumerSettings;
  /** Blocking connections not in use. */
  readonly #idle: (Redis | Cluster)[] = [];
  readonly #busy = new Set<Redis | Cluster>();
  /** Aborted on close: holds on records whose handlers are running stop being renewed. */
  readonly #closing = new AbortController();
  #group: Promise<void> | undefined;
  /** Where the next round starts. */
  #next = 0;

  constructor(client: Redis | Cluster, scripts: Scripts, settings: ArchiveConsumerSettings) {
    this.#client = client;
    this.#scripts = scripts;
    this.#settings = settings;
  }

  async consume(handler: (record: ArchiveRecordData) => Promise<void>, signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    await this.#ensureGroup();
    const taken = await this.#take(signal);
    const entryId = taken.entry[0];
    if (signal?.aborted) {
      // Taken but not handled: let any consumer have it again straight away.
      await this.#release(taken.index, entryId);
      signal.throwIfAborted();
    }
    try {
      await this.#whileHolding(taken.index, entryId, () => handler(toRecord(taken, this.#settings.streams.length > 1)));
    } catch (error) {
      await this.#release(taken.index, entryId).catch(() => undefined);
      throw error;
    }
    const stream = this.#settings.streams[taken.index] as string;
    await guard('acknowledge an archive record', () => this.#scripts.ack(stream, this.#settings.group, entryId));
  }

  /** Disconnects every blocking connection and stops renewing held records. */
  close(): void {
    this.#closing.abort();
    for (const connection of [...this.#idle, ...this.#busy]) connection.disconnect();
    this.#idle.length = 0;
    this.#busy.clear();
  }

  async #take(signal: AbortSignal | undefined): Promise<Taken> {
    const { streams, group, consumer, claimIdleMs, blockMs } = this.#settings;
    for (;;) {
      const first = this.#next;
      this.#next = (first + 1) % streams.length;
      for (let turn = 0; turn < streams.length; turn++) {
        signal?.throwIfAborted();
        const index = (first + turn) % streams.length;
        const stream = streams[index] as string;
        const claimed = await guard('reclaim stale archive records', () =>
          this.#client.xautoclaim(stream, group, consumer, claimIdleMs, '0-0', 'COUNT', 1),
        );
        const stale = (claimed as [string, StreamEntry[]])[1][0];
        if (stale !== undefined) return { index, entry: stale };
        if (streams.length === 1) continue;
        // Several streams: look without blocking, so a record on any shard is found this round.
        const reply = await guard('read archive records', () =>
          this.#client.xreadgroup('GROUP', group, consumer, 'COUNT', 1, 'STREAMS', stream, '>'),
        );
        const fresh = (reply as [string, StreamEntry[]][] | null)?.[0]?.[1][0];
        if (fresh !== undefined) return { index, entry: fresh };
      }
      signal?.throwIfAborted();
      const stream = streams[first] as string;
      const reply = await this.#blockingRead(signal, (connection) =>
        connection.xreadgroup('GROUP', group, consumer, 'COUNT', 1, 'BLOCK', blockMs, 'STREAMS', stream, '>'),
      );
      const fresh = (reply as [string, StreamEntry[]][] | null)?.[0]?.[1][0];
      if (fresh !== undefined) return { index: first, entry: fresh };
    }
  }

  /** Runs a blocking read on a connection of its own; an abort disconnects it and rejects. */
  async #blockingRead<T>(signal: AbortSignal | undefined, read: (connection: Redis | Cluster) => Promise<T>): Promise<T> {
    const connection = this.#idle.pop() ?? this.#client.duplicate();
    this.#busy.add(connection);
    let aborted = false;
    const onAbort = () => {
      aborted = true;
      this.#busy.delete(connection);
      connection.disconnect();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const result = await read(connection);
      // disconnect() only half-closes the socket, so a read can still be answered after an abort
      // closed its connection; a closed connection must not go back to the pool.
      if (!aborted) {
        this.#busy.delete(connection);
        this.#idle.push(connection);
      }
      return result;
    } catch (error) {
      if (aborted && signal) throw signal.reason;
      this.#busy.delete(connection);
      connection.disconnect();
      return guard('wait for archive records', async () => {
        throw error;
      });
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Runs `work` while renewing this consumer's hold on the entry every third of `claimIdleMs`,
   * so a live consumer with a slow handler keeps its record; a consumer that died stops renewing
   * and the record is reclaimed once it has been idle for `claimIdleMs`.
   */
  #whileHolding(index: number, entryId: string, work: () => Promise<void>): Promise<void> {
    const { streams, group, consumer, claimIdleMs } = this.#settings;
    const stream = streams[index] as string;
    const renew = async () => (await this.#scripts.renew(stream, group, consumer, entryId)) === 1;
    return holdWhile({ intervalMs: Math.max(1, Math.floor(claimIdleMs / 3)), renew, until: this.#closing.signal }, work);
  }

  /** Makes a record this consumer holds claimable by any consumer at once. */
  async #release(index: number, entryId: string): Promise<void> {
    const { streams, group, consumer, claimIdleMs } = this.#settings;
    const stream = streams[index] as string;
    await guard('release an archive record', () =>
      this.#client.xclaim(stream, group, consumer, 0, entryId, 'IDLE', claimIdleMs + 1, 'JUSTID'),
    );
  }

  #ensureGroup(): Promise<void> {
    // From ID 0: records archived before any consumer existed are delivered too.
    this.#group ??= guard('create the archive consumer group', async () => {
      const { streams, group } = this.#settings;
      await Promise.all(
        streams.map((stream) =>
          this.#client.xgroup('CREATE', stream, group, '0', 'MKSTREAM').catch((error: unknown) => {
            if (!(error instanceof Error && error.message.startsWith('BUSYGROUP'))) throw error;
          }),
        ),
      );
    }).catch((error: unknown) => {
      this.#group = undefined;
      throw error;
    });
    return this.#group;
  }
}

/** The record of an entry; with several streams its ID names the stream (`<shard>/<entry ID>`). */
function toRecord({ index, entry: [entryId, flat] }: Taken, sharded: boolean): ArchiveRecordData {
  const streamId = sharded ? `${index}/${entryId}` : entryId;
  const fields = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(flat[i] as string, flat[i + 1] as string);
  const parsed: unknown = JSON.parse(fields.get('events') ?? '[]');
  // Lua's cjson encodes an empty list as an empty object.
  const elements = Array.isArray(parsed) ? (parsed as string[]) : [];
  const snapshotData = fields.get('sd');
  return {
    streamId,
    aggregateId: decodeAggregateId(fields.get('id') ?? ''),
    snapshotData,
    snapshotSequence: Number(fields.get('ss') ?? '0'),
    events: decodeEvents(elements, Number(fields.get('first') ?? '0')),
  };
}
