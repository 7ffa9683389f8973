import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import {
  type AggregateId,
  type AppendRequest,
  type AppendResult,
  type ArchiveRecordData,
  type Backend,
  type BackendCapabilities,
  compareCodeUnits,
  decodeAggregateId,
  encodeAggregateId,
  type Feed,
  type FeedSink,
  hasIdPrefix,
  HubUnavailableError,
  InvalidCursorError,
  InvalidSequenceError,
  type ListPage,
  type ListRequest,
  type LogDescriptor,
  type LogEntry,
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
import { decodeEvent, decodeEvents, elementPosition, encodeEvent } from './event-codec.js';
import { guard, RedisBackendError } from './errors.js';
import { FEED_LEASE_MS, FeedReader } from './feed-reader.js';
import { KeySpace } from './key-space.js';
import { resolveOptions, type RedisBackendOptions } from './options.js';
import { RedisProjections } from './projections.js';
import { Scripts } from './scripts.js';

/**
 * How many log entries and stored events one read-log call may look at beyond its `limit`, so a
 * page that filters out most of what it scans still costs the server a bounded, short run.
 */
const READ_LOG_SCAN_ALLOWANCE = 1_000;

/**
 * The Redis (and Valkey) backend. Every write is one Lua script run by EVALSHA: atomic, one round
 * trip. Works on a single server and, with `shard`, on a Redis Cluster. Each append takes its
 * events' log positions from its partition's counter inside the same script, so positions follow
 * commit order; `readLog` pages the partition's log stream with one bounded script call per page.
 * Supports archiving on a Redis Stream read through a consumer group, and keeps projection
 * records in the store's namespace.
 */
export class RedisBackend implements Backend {
  readonly name = 'redis';
  readonly capabilities: BackendCapabilities = { archive: true, readSide: true };
  /** The key names of this store. */
  readonly keys: KeySpace;
  /** The ioredis client in use (the caller's when one was given). */
  readonly client: Redis | Cluster;
  /** Whether the backend opened `client` and so closes it. */
  readonly ownsClient: boolean;
  /** `redis:<db>:<base>`: the same for every backend over this store's keys. */
  readonly log: LogDescriptor;
  readonly projections: ProjectionStore;
  readonly #scripts: Scripts;
  readonly #archive: ArchiveConsumer;
  /** One per log partition: a combined call must stay in one slot. */
  readonly #appends: AppendBatcher[];
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
    this.keys = new KeySpace(resolved.prefix, resolved.shard);
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
    this.log = { id: `redis:${db}:${this.keys.base}`, partitions: this.keys.partitions };
    this.projections = new RedisProjections(this.#scripts, this.keys, (operation) => this.#assertOpen(operation));
    this.#appends = [];
    for (let partition = 0; partition < this.keys.partitions; partition++) {
      const head = [this.keys.ids, this.keys.feed, this.keys.feedLease, this.keys.position(partition), this.keys.log(partition)] as const;
      this.#appends.push(new AppendBatcher(this.#scripts, head, resolved.feedRetention));
    }
    this.#archive = new ArchiveConsumer(this.client, this.#scripts, {
      stream: this.keys.archive,
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
    const keys = [this.keys.meta(encodedId), this.keys.events(encodedId)];
    const args: (string | number)[] = [expectedSequence, 0];
    if (index !== undefined) {
      if (index.status !== undefined) {
        args.push('1', index.status, index.statusTime);
        if (index.status !== '') keys.push(this.keys.status(index.status));
      } else {
        args.push('0', '', 0);
      }
      const labels = Object.entries(index.labels);
      args.push(labels.length);
      for (const [label, value] of labels) {
        args.push(label, value);
        keys.push(this.keys.labelValues(label));
        if (value !== '') keys.push(this.keys.labelHolders(label, value));
      }
      args[1] = args.length - 2;
    }
    for (const event of events) args.push(encodeEvent(event));
    const batcher = this.#appends[this.keys.partitionOf(encodedId)] as AppendBatcher;
    const reply = await guard('append events', () => batcher.append({ keys, args }));
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
   * Reads the store's feed stream, which every append (from any process) adds to inside its
   * script while a subscriber holds the feed lease, on a connection of its own. See `FeedReader` for resuming and gap reporting.
   */
  async watch(sink: FeedSink): Promise<Feed> {
    if (this.#feedRetention === 0) {
      throw new HubUnavailableError('redis (feedRetention: 0 turned its feed off)');
    }
    const lease = this.keys.feedLease;
    const reader = await FeedReader.open(this.client, this.keys.feed, sink, () => this.#scripts.feedLease(lease, FEED_LEASE_MS));
    this.#feeds.add(reader);
    return {
      close: async () => {
        this.#feeds.delete(reader);
        await reader.close();
      },
    };
  }

  async loadEvents(id: AggregateId, fromSequence: number): Promise<StoredEventRecord[]> {
    const encodedId = encodeAggregateId(id);
    const [first, stored] = await guard('load events', () =>
      this.#scripts.loadEvents(this.keys.meta(encodedId), this.keys.events(encodedId), fromSequence),
    );
    return decodeEvents(stored, first);
  }

  async loadSnapshot(id: AggregateId): Promise<SnapshotRecord> {
    const encodedId = encodeAggregateId(id);
    const [data, sequence, first, stored] = await guard('load a snapshot', () =>
      this.#scripts.loadSnapshot(this.keys.meta(encodedId), this.keys.events(encodedId)),
    );
    return { data: data ?? undefined, sequence, events: decodeEvents(stored, first) };
  }

  async saveSnapshot(id: AggregateId, data: string, sequence: number, trim: boolean): Promise<void> {
    const encodedId = encodeAggregateId(id);
    const reply = await guard('save a snapshot', () =>
      this.#scripts.saveSnapshot(
        [this.keys.meta(encodedId), this.keys.events(encodedId), this.keys.ids, this.keys.log(this.keys.partitionOf(encodedId))],
        [encodedId, data, sequence, trim ? '1' : '0'],
      ),
    );
    if (reply[0] === 2) {
      throw new InvalidSequenceError('snapshot sequence', `is beyond the aggregate's next sequence ${reply[1]}`, sequence);
    }
  }

  /**
   * Reads each partition's log with one script call (see `READ_LOG` in scripts.ts), the limit split
   * evenly between the partitions, and concatenates the pages in partition order.
   */
  async readLog({ after, limit, types, prefix }: ReadLogRequest): Promise<LogPage> {
    const partitions = this.keys.partitions;
    const encodedPrefix = prefix === undefined || prefix.length === 0 ? undefined : encodeAggregateId(prefix);
    // The partitions that get one more than the even share take turns with the positions read, so a
    // limit below the partition count still reaches every partition over successive pages.
    const share = Math.floor(limit / partitions);
    const extraFrom = after.reduce((sum, position) => sum + position, 0) % partitions;
    const pages = await Promise.all(
      after.map((position, partition) => {
        const partitionLimit = share + ((partition - extraFrom + partitions) % partitions < limit % partitions ? 1 : 0);
        if (partitionLimit === 0) return Promise.resolve(undefined);
        const request = {
          after: position,
          limit: partitionLimit,
          budget: partitionLimit + READ_LOG_SCAN_ALLOWANCE,
          prefix: encodedPrefix,
          types,
        };
        return guard('read the log', () => this.#scripts.readLog(this.keys.position(partition), this.keys.log(partition), request));
      }),
    );
    const entries: LogEntry[] = [];
    const positions: number[] = [];
    let end = true;
    for (let partition = 0; partition < after.length; partition++) {
      const page = pages[partition];
      if (page === undefined) {
        positions.push(after[partition] as number);
        end = false;
        continue;
      }
      const [readTo, reachedEnd, groups] = page;
      positions.push(readTo);
      if (reachedEnd !== 1) end = false;
      for (const [encodedId, sequenceOffset, ...elements] of groups) {
        const id = decodeAggregateId(encodedId);
        for (const element of elements) {
          entries.push({ id, event: decodeEvent(element, elementPosition(element) + sequenceOffset) });
        }
      }
    }
    return { entries, after: positions, end };
  }

  /** Each partition's position counter: every position at or below it was given by a committed append. */
  async logHead(): Promise<number[]> {
    const counters = Array.from({ length: this.keys.partitions }, (_, partition) => this.keys.position(partition));
    const values = await Promise.all(counters.map((counter) => guard('read the log head', () => this.client.get(counter))));
    return values.map((value) => Number(value ?? 0));
  }

  /** A keyset page of the ID index (one sorted set, all scores 0, so in byte order). */
  async listAggregates(prefix: AggregateId, { limit, after }: ListRequest): Promise<ListPage<AggregateId>> {
    // Every ID under the prefix sorts between the encoded prefix itself and the encoded prefix
    // followed by ";" (the character after ":"); the filter drops look-alikes such as "order0".
    const encoded = prefix.length === 0 ? undefined : encodeAggregateId(prefix);
    const low = after !== undefined ? `(${after}` : encoded === undefined ? '-' : `[${encoded}`;
    const high = encoded === undefined ? '+' : `(${encoded};`;
    const members = await guard('list aggregates', () => this.client.zrangebylex(this.keys.ids, low, high, 'LIMIT', 0, limit + 1));
    const page = members.slice(0, limit);
    const items = page.filter((member) => prefix.length === 0 || hasIdPrefix(member, prefix)).map(decodeAggregateId);
    return members.length > limit ? { items, next: page[page.length - 1] } : { items };
  }

  async getAggregateStatus(id: AggregateId): Promise<string> {
    const status = await guard('read a status', () => this.client.hget(this.keys.meta(encodeAggregateId(id)), 'st'));
    return status ?? '';
  }

  // Interim (until the sharded layout lands): the status and label indexes are read whole and
  // paged here. TODO(issue 18): keyset pages from sorted sets, as listAggregates does.
  async listAggregatesByStatus(status: string, request: ListRequest): Promise<ListPage<StatusListEntry>> {
    if (status === '') return { items: [] };
    const flat = await guard('list aggregates by status', () => this.client.zrange(this.keys.status(status), 0, -1, 'WITHSCORES'));
    const entries: { key: string; entry: StatusListEntry }[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const member = flat[i] as string;
      const timestamp = Number(flat[i + 1]);
      entries.push({ key: JSON.stringify([timestamp, member]), entry: { id: decodeAggregateId(member), timestamp } });
    }
    return pageAfter(entries, request, (a, b) => compareStatusKeys(a, b));
  }

  async listAggregatesByLabel(label: string, value: string, request: ListRequest): Promise<ListPage<AggregateId>> {
    if (value === '') return { items: [] };
    const members = await guard('list aggregates by label', () => this.client.smembers(this.keys.labelHolders(label, value)));
    const entries = members.sort(compareCodeUnits).map((member) => ({ key: member, entry: decodeAggregateId(member) }));
    return pageAfter(entries, request, compareCodeUnits);
  }

  async listLabelValues(label: string, request: ListRequest): Promise<ListPage<string>> {
    const values = await guard('list label values', () => this.client.smembers(this.keys.labelValues(label)));
    const entries = values.sort(compareCodeUnits).map((value) => ({ key: value, entry: value }));
    return pageAfter(entries, request, compareCodeUnits);
  }

  async archive(id: AggregateId): Promise<void> {
    const encodedId = encodeAggregateId(id);
    const log = this.keys.log(this.keys.partitionOf(encodedId));
    const keys = [this.keys.meta(encodedId), this.keys.events(encodedId), this.keys.ids, this.keys.archive, log] as const;
    await guard('archive', () => this.#scripts.archive(keys, this.keys.base, encodedId));
  }

  async consumeArchive(handler: (record: ArchiveRecordData) => Promise<void>, signal: AbortSignal | undefined): Promise<void> {
    await this.#archive.consume(handler, signal);
  }

  /** Throws `StoreClosedError` once the backend is closed (projection calls check it first). */
  #assertOpen(operation: string): void {
    if (this.#closed) throw new StoreClosedError(operation);
  }
}

/** Interim: the page after `request.after` of entries already sorted by `key` under `compare`. */
function pageAfter<T>(
  entries: readonly { key: string; entry: T }[],
  request: ListRequest,
  compare: (a: string, b: string) => number,
): ListPage<T> {
  const rest = request.after === undefined ? entries : entries.filter((entry) => compare(entry.key, request.after as string) > 0);
  const items = rest.slice(0, request.limit);
  return rest.length > request.limit
    ? { items: items.map((entry) => entry.entry), next: (items[items.length - 1] as { key: string }).key }
    : { items: items.map((entry) => entry.entry) };
}

function compareStatusKeys(a: string, b: string): number {
  const [left, right] = [parseStatusKey(a), parseStatusKey(b)];
  return left[0] - right[0] || compareCodeUnits(left[1], right[1]);
}

function parseStatusKey(text: string): [number, string] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || parsed.length !== 2 || typeof parsed[0] !== 'number' || typeof parsed[1] !== 'string') {
    throw new InvalidCursorError('does not name a place in a status list', text);
  }
  return [parsed[0], parsed[1]];
}
