import { decodeAggregateId, holdWhile, type ArchiveRecordData } from '@timebox/core';
import type { Cluster, Redis } from 'ioredis';
import { decodeEvents } from './event-codec.js';
import { guard } from './errors.js';
import type { Scripts } from './scripts.js';

/** A stream entry as ioredis returns it: ID and flat field/value list. */
type StreamEntry = [id: string, fields: string[]];

export interface ArchiveConsumerSettings {
  readonly stream: string;
  readonly group: string;
  readonly consumer: string;
  readonly claimIdleMs: number;
  readonly blockMs: number;
}

/**
 * Reads archive records from the store's stream through a consumer group. New records arrive by
 * a blocking XREADGROUP on a connection of its own (a blocked connection cannot serve the
 * store's other commands); records another consumer took and left unacknowledged for
 * `claimIdleMs` are taken over with XAUTOCLAIM, while a consumer whose handler is still running
 * keeps renewing its hold so that its record never looks idle. Aborting disconnects the blocked connection, so
 * a waiting consumer stops at once.
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

  constructor(client: Redis | Cluster, scripts: Scripts, settings: ArchiveConsumerSettings) {
    this.#client = client;
    this.#scripts = scripts;
    this.#settings = settings;
  }

  async consume(handler: (record: ArchiveRecordData) => Promise<void>, signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    await this.#ensureGroup();
    const entry = await this.#take(signal);
    if (signal?.aborted) {
      // Taken but not handled: let any consumer have it again straight away.
      await this.#release(entry[0]);
      signal.throwIfAborted();
    }
    try {
      await this.#whileHolding(entry[0], () => handler(toRecord(entry)));
    } catch (error) {
      await this.#release(entry[0]).catch(() => undefined);
      throw error;
    }
    const { stream, group } = this.#settings;
    await guard('acknowledge an archive record', () => this.#scripts.ack(stream, group, entry[0]));
  }

  /** Disconnects every blocking connection and stops renewing held records. */
  close(): void {
    this.#closing.abort();
    for (const connection of [...this.#idle, ...this.#busy]) connection.disconnect();
    this.#idle.length = 0;
    this.#busy.clear();
  }

  async #take(signal: AbortSignal | undefined): Promise<StreamEntry> {
    const { stream, group, consumer, claimIdleMs, blockMs } = this.#settings;
    for (;;) {
      signal?.throwIfAborted();
      const claimed = await guard('reclaim stale archive records', () =>
        this.#client.xautoclaim(stream, group, consumer, claimIdleMs, '0-0', 'COUNT', 1),
      );
      const stale = (claimed as [string, StreamEntry[]])[1][0];
      if (stale !== undefined) return stale;
      const reply = await this.#blockingRead(signal, (connection) =>
        connection.xreadgroup('GROUP', group, consumer, 'COUNT', 1, 'BLOCK', blockMs, 'STREAMS', stream, '>'),
      );
      const fresh = (reply as [string, StreamEntry[]][] | null)?.[0]?.[1][0];
      if (fresh !== undefined) return fresh;
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
  #whileHolding(entryId: string, work: () => Promise<void>): Promise<void> {
    const { stream, group, consumer, claimIdleMs } = this.#settings;
    const renew = async () => (await this.#scripts.renew(stream, group, consumer, entryId)) === 1;
    return holdWhile({ intervalMs: Math.max(1, Math.floor(claimIdleMs / 3)), renew, until: this.#closing.signal }, work);
  }

  /** Makes a record this consumer holds claimable by any consumer at once. */
  async #release(entryId: string): Promise<void> {
    const { stream, group, consumer, claimIdleMs } = this.#settings;
    await guard('release an archive record', () =>
      this.#client.xclaim(stream, group, consumer, 0, entryId, 'IDLE', claimIdleMs + 1, 'JUSTID'),
    );
  }

  #ensureGroup(): Promise<void> {
    // From ID 0: records archived before any consumer existed are delivered too.
    this.#group ??= guard('create the archive consumer group', async () => {
      await this.#client.xgroup('CREATE', this.#settings.stream, this.#settings.group, '0', 'MKSTREAM').catch((error: unknown) => {
        if (!(error instanceof Error && error.message.startsWith('BUSYGROUP'))) throw error;
      });
    }).catch((error: unknown) => {
      this.#group = undefined;
      throw error;
    });
    return this.#group;
  }
}

function toRecord([streamId, flat]: StreamEntry): ArchiveRecordData {
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
