import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import {
  type AggregateId,
  type AppendRequest,
  type AppendResult,
  type ArchiveRecordData,
  type Backend,
  type BackendCapabilities,
  decodeAggregateId,
  encodeAggregateId,
  encodeIdPart,
  type Feed,
  type FeedSink,
  hasIdPrefix,
  HubUnavailableError,
  InvalidCursorError,
  InvalidSequenceError,
  type ListPage,
  type ListRequest,
  type LogDescriptor,
  type LogPage,
  type ProjectionStore,
  type ReadLogRequest,
  type SnapshotRecord,
  type StatusListEntry,
  StoreClosedError,
  type StoredEventRecord,
} from '@timebox/core';
import { Redis, type Cluster } from 'ioredis';
import { AppendBatcher } from './append-batcher.js';
import { ArchiveConsumer } from './archive-consumer.js';
import { decodeEvents, encodeEvent } from './event-codec.js';
import { guard, RedisBackendError } from './errors.js';
import { FEED_LEASE_MS, FeedReader } from './feed-reader.js';
import { type KeySpace, STATUS_KEY_LENGTH, statusKey, statusTime } from './key-space.js';
import { readMerged, toEntries } from './log-merge.js';
import { compareCodePoints, mergeSorted } from './merge.js';
import { resolveOptions, type RedisBackendOptions } from './options.js';
import { RedisProjections } from './projections.js';
import { Scripts, type ReadLogReply } from './scripts.js';
import { StoreKeys } from './store-keys.js';

/**
 * How many log entries and stored events one read-log call may look at beyond its `limit`, so a
 * page that filters out most of what it scans still costs the server a bounded, short run.
 */
const READ_LOG_SCAN_ALLOWANCE = 1_000;

/**
 * The Redis (and Valkey) backend. Every write is one Lua script run by EVALSHA: atomic, one round
 * trip. Works on a single server and, with `shard` or `shards`, on a Redis Cluster. With `shards`
 * the store is spread over that many slots (see `StoreKeys`): each aggregate lives in one, and
 * queries, the log and the feed read every slot and merge. Each slot is one partition of the
 * store's log: an append takes its events' positions from its slot's counter inside the same
 * script, so positions follow commit order within a partition; `readLog` pages each partition's
 * log stream with one bounded script call. Supports archiving on a Redis Stream (one per slot)
 * read through a consumer group, and keeps projection records in the store's first slot.
 */
export class RedisBackend implements Backend {
  readonly name = 'redis';
  readonly capabilities: BackendCapabilities = { archive: true, readSide: true };
  /**
   * The key names of the store's first slot: of the whole store without `shards`; with `shards`,
   * of shard 0, which also holds the projection records.
   */
  readonly keys: KeySpace;
  /** The key names of every slot of the store (one without `shards`), in partition order. */
  readonly slots: readonly KeySpace[];
  readonly #layout: StoreKeys;
  /** The ioredis client in use (the caller's when one was given). */
  readonly client: Redis | Cluster;
  /** Whether the backend opened `client` and so closes it. */
  readonly ownsClient: boolean;
  /**
   * `redis:<db>:<base>`, or `redis:<db>:shards=<count>:<prefix>` with `shards`: the same for every
   * backend over this store's keys, different for another shard count.
   */
  readonly log: LogDescriptor;
  readonly projections: ProjectionStore;
  readonly #scripts: Scripts;
  readonly #archive: ArchiveConsumer;
  readonly #appends: AppendBatcher;
  #closed = false;
  readonly #feedRetention: number;
  readonly #feeds = new Set<FeedReader>();
  /** The owned connection's latest error, for readiness messages. */
  #lastError: Error | undefined;
  // A listener also stops ioredis printing every connection error to the console.
  readonly #onError = (error: Error) => {
    this.#lastError = error;
  };

  /** Validates `options` (throwing `ConfigError` naming the field) and prepares a connection. */
  constructor(options: RedisBackendOptions = {}) {
    const resolved = resolveOptions(options);
    const { connection } = resolved;
    this.#layout = new StoreKeys(resolved);
    this.slots = this.#layout.slots;
    this.keys = this.#layout.home;
    if (connection.kind === 'client') {
      this.client = connection.client;
      this.ownsClient = false;
    } else {
      this.client = connection.kind === 'url' ? new Redis(connection.url, connection.redisOptions) : new Redis(connection.redisOptions);
      this.ownsClient = true;
      this.client.on('error', this.#onError);
    }
    this.#scripts = new Scripts(this.client);
    this.#feedRetention = resolved.feedRetention;
    const db = this.client.isCluster ? 0 : ((this.client as Redis).options.db ?? 0);
    const partitions = this.slots.length;
    const logId = this.#layout.sharded ? `shards=${partitions}:${encodeIdPart(resolved.prefix)}` : this.keys.base;
    this.log = { id: `redis:${db}:${logId}`, partitions };
    this.projections = new RedisProjections(this.#scripts, this.keys, (operation) => this.#assertOpen(operation));
    const heads = this.slots.map((slot) => [slot.ids, slot.feed, slot.feedLease, slot.position, slot.log] as const);
    const client = this.client;
    const hashSlots = this.#layout.hashSlots;
    // The master serving a shard's slot, as the Cluster client last learnt the slot map.
    const nodeOf = client.isCluster ? (slot: number) => (client as Cluster).slots[hashSlots[slot] ?? -1]?.[0] : () => 'server';
    this.#appends = new AppendBatcher(this.#scripts, heads, resolved.feedRetention, this.#layout.sharded, nodeOf);
    this.#archive = new ArchiveConsumer(this.client, this.#scripts, {
      streams: this.slots.map((slot) => slot.archive),
      group: resolved.archiveGroup,
      consumer: resolved.archiveConsumer ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
      claimIdleMs: resolved.archiveClaimIdleMs,
      blockMs: resolved.archiveBlockMs,
    });
  }

  /** Connects if needed and checks the server answers (and accepted the credentials). */
  async ready(): Promise<void> {
    try {
      await this.client.ping();
    } catch (error) {
      // A refused AUTH, or the address that refused us, shows up as the connection's last error;
      // the PING itself often only says that ioredis gave up ("max retries per request").
      const last = this.#lastError;
      const pingSaysLittle = error instanceof Error && /max retries per request|Connection is closed/i.test(error.message);
      throw new RedisBackendError('connect', last && (/WRONGPASS|NOAUTH|AUTH/i.test(last.message) || pingSaysLittle) ? last : error);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#archive.close();
    await Promise.all([...this.#feeds].map((feed) => feed.close()));
    if (!this.ownsClient) return;
    if (this.client.status === 'ready') {
      await this.client.quit().catch(() => this.client.disconnect());
    } else {
      this.client.disconnect();
    }
  }

  async append({ id, expectedSequence, events, index }: AppendRequest): Promise<AppendResult> {
    const encodedId = encodeAggregateId(id);
    const partition = this.#layout.indexOf(encodedId);
    const slot = this.slots[partition] as KeySpace;
    const keys = [slot.meta(encodedId), slot.events(encodedId)];
    const args: (string | number)[] = [expectedSequence, 0];
    if (index !== undefined) {
      if (index.status !== undefined) {
        args.push('1', index.status, statusKey(index.statusTime));
        if (index.status !== '') keys.push(slot.status(index.status));
      } else {
        args.push('0', '', 0);
      }
      const labels = Object.entries(index.labels);
      args.push(labels.length);
      for (const [label, value] of labels) {
        args.push(label, value);
        keys.push(slot.labelValues(label));
        if (value !== '') keys.push(slot.labelHolders(label, value));
      }
      args[1] = args.length - 2;
    }
    for (const event of events) args.push(encodeEvent(event));
    const reply = await guard('append events', () => this.#appends.append({ slot: partition, keys, args }));
    if (typeof reply === 'number') {
      // An append's positions are consecutive, from the one the script answers.
      const positions = new Array<number>(events.length);
      for (let i = 0; i < events.length; i++) positions[i] = reply + i;
      return { ok: true, positions };
    }
    const [actualSequence, firstSequence, stored] = reply;
    return { ok: false, actualSequence, newEvents: decodeEvents(stored, firstSequence) };
  }

  /**
   * Reads the store's feed stream (one per slot), which every append (from any process) adds to
   * inside its script while a subscriber holds the slot's feed lease, each on a connection of its
   * own (a blocking read cannot span slots). See `FeedReader` for resuming and gap reporting. An
   * aggregate's appends all go through its slot's stream, so they reach the sink in order.
   */
  async watch(sink: FeedSink): Promise<Feed> {
    if (this.#feedRetention === 0) {
      throw new HubUnavailableError('redis (feedRetention: 0 turned its feed off)');
    }
    const opened = await Promise.allSettled(
      this.slots.map((slot) => FeedReader.open(this.client, slot.feed, sink, () => this.#scripts.feedLease(slot.feedLease, FEED_LEASE_MS))),
    );
    const readers = opened.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    const failure = opened.find((result) => result.status === 'rejected');
    if (failure !== undefined) {
      await Promise.all(readers.map((reader) => reader.close()));
      throw failure.reason;
    }
    for (const reader of readers) this.#feeds.add(reader);
    return {
      close: async () => {
        for (const reader of readers) this.#feeds.delete(reader);
        await Promise.all(readers.map((reader) => reader.close()));
      },
    };
  }

  async loadEvents(id: AggregateId, fromSequence: number): Promise<StoredEventRecord[]> {
    const encodedId = encodeAggregateId(id);
    const slot = this.#layout.of(encodedId);
    const [first, stored] = await guard('load events', () =>
      this.#scripts.loadEvents(slot.meta(encodedId), slot.events(encodedId), fromSequence),
    );
    return decodeEvents(stored, first);
  }

  async loadSnapshot(id: AggregateId): Promise<SnapshotRecord> {
    const encodedId = encodeAggregateId(id);
    const slot = this.#layout.of(encodedId);
    const [data, sequence, first, stored] = await guard('load a snapshot', () =>
      this.#scripts.loadSnapshot(slot.meta(encodedId), slot.events(encodedId)),
    );
    return { data: data ?? undefined, sequence, events: decodeEvents(stored, first) };
  }

  async saveSnapshot(id: AggregateId, data: string, sequence: number, trim: boolean): Promise<void> {
    const encodedId = encodeAggregateId(id);
    const slot = this.#layout.of(encodedId);
    const reply = await guard('save a snapshot', () =>
      this.#scripts.saveSnapshot(
        [slot.meta(encodedId), slot.events(encodedId), slot.ids, slot.log],
        [encodedId, data, sequence, trim ? '1' : '0'],
      ),
    );
    if (reply[0] === 2) {
      throw new InvalidSequenceError('snapshot sequence', `is beyond the aggregate's next sequence ${reply[1]}`, sequence);
    }
  }

  /**
   * Without shards: one script call (see `READ_LOG` in scripts.ts). With shards, see `LogMerge`:
   * each partition's log is read in position order, and positions (clock-based, see `APPEND`)
   * are comparable across partitions, so the page is the merge of the partitions' logs.
   */
  async readLog({ after, limit, types, prefix }: ReadLogRequest): Promise<LogPage> {
    const encodedPrefix = prefix === undefined || prefix.length === 0 ? undefined : encodeAggregateId(prefix);
    const read = (partition: number, from: number, count: number): Promise<ReadLogReply> => {
      const slot = this.slots[partition] as KeySpace;
      const request = { after: from, limit: count, budget: count + READ_LOG_SCAN_ALLOWANCE, prefix: encodedPrefix, types };
      return guard('read the log', () => this.#scripts.readLog(slot.position, slot.log, request));
    };
    if (this.slots.length === 1) {
      const [readTo, reachedEnd, groups] = await read(0, after[0] as number, limit);
      return { entries: toEntries(groups), after: [readTo], end: reachedEnd === 1 };
    }
    return readMerged(after, limit, read);
  }

  /** Each partition's position counter: every position at or below it was given by a committed append. */
  async logHead(): Promise<number[]> {
    const values = await Promise.all(this.slots.map((slot) => guard('read the log head', () => this.client.get(slot.position))));
    return values.map((value) => Number(value ?? 0));
  }

  /** A keyset page of the ID index (per slot a sorted set, all scores 0, so in byte order). */
  async listAggregates(prefix: AggregateId, { limit, after }: ListRequest): Promise<ListPage<AggregateId>> {
    // Every ID under the prefix sorts between the encoded prefix itself and the encoded prefix
    // followed by ";" (the character after ":"); the filter drops look-alikes such as "order0".
    const encoded = prefix.length === 0 ? undefined : encodeAggregateId(prefix);
    const low = after !== undefined ? `(${after}` : encoded === undefined ? '-' : `[${encoded}`;
    const high = encoded === undefined ? '+' : `(${encoded};`;
    const { members, next } = await this.#lexPage('list aggregates', (slot) => slot.ids, low, high, limit);
    const items = members.filter((member) => prefix.length === 0 || hasIdPrefix(member, prefix)).map(decodeAggregateId);
    return next === undefined ? { items } : { items, next };
  }

  async getAggregateStatus(id: AggregateId): Promise<string> {
    const encodedId = encodeAggregateId(id);
    const status = await guard('read a status', () => this.client.hget(this.#layout.of(encodedId).meta(encodedId), 'st'));
    return status ?? '';
  }

  /**
   * A keyset page of the status index: its members are `<entry time key>:<encoded ID>` (see
   * `statusKey`), so byte order is oldest entry first, then ID, and the continuation is a member.
   */
  async listAggregatesByStatus(status: string, { limit, after }: ListRequest): Promise<ListPage<StatusListEntry>> {
    if (status === '') return { items: [] };
    if (after !== undefined && (after[STATUS_KEY_LENGTH] !== ':' || statusTime(after.slice(0, STATUS_KEY_LENGTH)) === undefined)) {
      throw new InvalidCursorError('does not name a place in a status list', after);
    }
    const low = after === undefined ? '-' : `(${after}`;
    const { members, next } = await this.#lexPage('list aggregates by status', (slot) => slot.status(status), low, '+', limit);
    const items = members.map((member) => ({
      id: decodeAggregateId(member.slice(STATUS_KEY_LENGTH + 1)),
      timestamp: statusTime(member.slice(0, STATUS_KEY_LENGTH)) as number,
    }));
    return next === undefined ? { items } : { items, next };
  }

  /** A keyset page of the label's holders (per slot a sorted set, all scores 0: encoded-key order). */
  async listAggregatesByLabel(label: string, value: string, { limit, after }: ListRequest): Promise<ListPage<AggregateId>> {
    if (value === '') return { items: [] };
    const low = after === undefined ? '-' : `(${after}`;
    const { members, next } = await this.#lexPage('list aggregates by label', (slot) => slot.labelHolders(label, value), low, '+', limit);
    const items = members.map(decodeAggregateId);
    return next === undefined ? { items } : { items, next };
  }

  /**
   * A keyset page of the label's values (per slot a sorted set, all scores 0: code-point order); a
   * value held in several shards is in each of their sets and returned once.
   */
  async listLabelValues(label: string, { limit, after }: ListRequest): Promise<ListPage<string>> {
    const low = after === undefined ? '-' : `(${after}`;
    const { members, next } = await this.#lexPage('list label values', (slot) => slot.labelValues(label), low, '+', limit, true);
    return next === undefined ? { items: members } : { items: members, next };
  }

  /**
   * One keyset page of a lexicographic index kept in every slot: each slot's next `limit + 1`
   * members in the range (one `ZRANGEBYLEX` each), merged in byte order (without duplicates when
   * `distinct`), cut at `limit`. The continuation is the last member returned: every member after
   * it, in any slot, is what the next page starts from. A slot that had more than `limit` members
   * left makes the merge longer than `limit`, so a further page exists exactly when the merge is.
   */
  async #lexPage(
    operation: string,
    keyOf: (slot: KeySpace) => string,
    low: string,
    high: string,
    limit: number,
    distinct = false,
  ): Promise<{ members: string[]; next: string | undefined }> {
    const lists = await Promise.all(
      this.slots.map((slot) => guard(operation, () => this.client.zrangebylex(keyOf(slot), low, high, 'LIMIT', 0, limit + 1))),
    );
    let merged = mergeSorted(lists, compareCodePoints, distinct ? Infinity : limit + 1);
    if (distinct) merged = merged.filter((member, i) => i === 0 || member !== merged[i - 1]);
    if (merged.length <= limit) return { members: merged, next: undefined };
    const members = merged.slice(0, limit);
    return { members, next: members[limit - 1] };
  }

  async archive(id: AggregateId): Promise<void> {
    const encodedId = encodeAggregateId(id);
    const slot = this.#layout.of(encodedId);
    const keys = [slot.meta(encodedId), slot.events(encodedId), slot.ids, slot.archive, slot.log] as const;
    await guard('archive', () => this.#scripts.archive(keys, slot.base, encodedId));
  }

  async consumeArchive(handler: (record: ArchiveRecordData) => Promise<void>, signal: AbortSignal | undefined): Promise<void> {
    await this.#archive.consume(handler, signal);
  }

  /** Throws `StoreClosedError` once the backend is closed (projection calls check it first). */
  #assertOpen(operation: string): void {
    if (this.#closed) throw new StoreClosedError(operation);
  }
}
