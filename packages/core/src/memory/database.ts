import { randomUUID } from 'node:crypto';
import type {
  AppendRequest,
  AppendResult,
  FeedSink,
  ListPage,
  ListRequest,
  LogPage,
  ReadLogRequest,
  SnapshotRecord,
  StatusListEntry,
} from '../backend.js';
import { InvalidCursorError, InvalidSequenceError } from '../errors.js';
import type { StoredEventRecord } from '../event.js';
import { encodeAggregateId, hasIdPrefix, type AggregateId } from '../id.js';
import type { IndexUpdate } from '../indexer.js';
import { compareCodeUnits } from '../text.js';
import { ArchiveQueue } from './archive-queue.js';
import { MemoryProjections } from './projections.js';
import { listPage, pageOf, sortedTree, type SortedTree } from './sorted-index.js';

interface AggregateData {
  readonly id: AggregateId;
  readonly key: string;
  /** Stored events, oldest first; `events[0]` has sequence `firstSequence`. */
  events: StoredEventRecord[];
  firstSequence: number;
  /** The sequence the next appended event takes (survives trimming). */
  nextSequence: number;
  /** The first sequence of this life: 0, or one past the archived life's next sequence. */
  readonly lifeStart: number;
  snapshot: { data: string; sequence: number } | undefined;
  status: string;
  /** When the aggregate entered `status` (epoch ms). */
  statusTime: number;
  labels: Map<string, string>;
  /** Set when the aggregate is archived: its events leave the log. */
  archived: boolean;
}

/** One event's place in the log; it still counts while its aggregate holds it. */
interface LogSlot {
  readonly aggregate: AggregateData;
  readonly event: StoredEventRecord;
}

/**
 * The data of one in-memory store. Several `MemoryBackend`s may share one database, as several
 * processes share one server. Every method runs synchronously, so each is atomic.
 */
export class MemoryDatabase {
  readonly #aggregates = new Map<string, AggregateData>();
  /** The aggregates' keys in order, for pages of `listAggregates`. */
  readonly #keys = sortedTree<string, AggregateData>(compareCodeUnits);
  /** status → the aggregates in it, ordered by the time each entered it, then by key. */
  readonly #statuses = new Map<string, SortedTree<StatusKey, AggregateData>>();
  /** label → value → the keys of the aggregates holding it. */
  readonly #labels = new Map<string, SortedTree<string, SortedTree<string, AggregateData>>>();
  readonly archive: ArchiveQueue;
  /** Live feeds of subscribed stores: told of every append, right after it is stored. */
  readonly #feeds = new Set<FeedSink>();
  /** The log: the event at position p is `#log[p - 1]`. Trimmed and archived events stay as stale slots. */
  readonly #log: LogSlot[] = [];
  /** For IDs whose last life was archived: where the next life starts. */
  readonly #nextLives = new Map<string, number>();
  /** Names this database's data in checkpoints. */
  readonly id = `memory:${randomUUID()}`;
  /** @internal The durable projections' records, shared by every backend over this database. */
  readonly projections = new MemoryProjections();

  /** @param archiveLeaseMs - how long an archive record stays with a consumer that stopped renewing its lease (its backend closed) before it is redelivered */
  constructor(archiveLeaseMs = 30_000) {
    this.archive = new ArchiveQueue(archiveLeaseMs);
  }

  append({ id, expectedSequence, events, index }: AppendRequest): AppendResult {
    const key = encodeAggregateId(id);
    const existing = this.#aggregates.get(key);
    const actualSequence = existing?.nextSequence ?? this.#nextLives.get(key) ?? 0;
    if (actualSequence !== expectedSequence) {
      return { ok: false, actualSequence, newEvents: existing ? eventsFrom(existing, expectedSequence) : [] };
    }
    if (events.length === 0) return { ok: true, positions: [] };
    const aggregate = existing ?? this.#create(key, id);
    const positions = new Array<number>(events.length);
    for (let i = 0; i < events.length; i++) {
      const position = this.#log.length + 1;
      const stored = Object.freeze({ ...(events[i] as StoredEventRecord), position });
      aggregate.events.push(stored);
      this.#log.push({ aggregate, event: stored });
      positions[i] = position;
    }
    aggregate.nextSequence += events.length;
    if (index !== undefined) this.#applyIndex(key, aggregate, index);
    if (this.#feeds.size > 0) {
      const stored = aggregate.events.slice(aggregate.events.length - events.length);
      for (const feed of this.#feeds) feed.events(aggregate.id, stored);
    }
    return { ok: true, positions };
  }

  /** Reads the log after `after[0]`, skipping slots whose events were trimmed or archived. */
  readLog({ after, limit, types, prefix }: ReadLogRequest): LogPage {
    const entries: LogPage['entries'] = [];
    let position = after[0] ?? 0;
    const typeSet = types === undefined ? undefined : new Set(types);
    while (position < this.#log.length && entries.length < limit) {
      const slot = this.#log[position] as LogSlot;
      position++;
      if (!isLive(slot)) continue;
      if (typeSet !== undefined && !typeSet.has(slot.event.type)) continue;
      if (prefix !== undefined && !hasIdPrefix(slot.aggregate.key, prefix)) continue;
      entries.push({ id: [...slot.aggregate.id], event: slot.event });
    }
    return { entries, after: [position], end: position >= this.#log.length };
  }

  /** The newest position in the log. */
  logHead(): number[] {
    return [this.#log.length];
  }

  /** Tells `sink` of every append from now on; returns a function that stops it. */
  watch(sink: FeedSink): () => void {
    this.#feeds.add(sink);
    return () => this.#feeds.delete(sink);
  }

  loadEvents(id: AggregateId, fromSequence: number): StoredEventRecord[] {
    const aggregate = this.#aggregates.get(encodeAggregateId(id));
    return aggregate ? eventsFrom(aggregate, fromSequence) : [];
  }

  loadSnapshot(id: AggregateId): SnapshotRecord {
    const key = encodeAggregateId(id);
    const aggregate = this.#aggregates.get(key);
    if (aggregate === undefined) return { sequence: this.#nextLives.get(key) ?? 0, events: [] };
    const sequence = aggregate.snapshot?.sequence ?? aggregate.lifeStart;
    return { data: aggregate.snapshot?.data, sequence, events: eventsFrom(aggregate, sequence) };
  }

  saveSnapshot(id: AggregateId, data: string, sequence: number, trim: boolean): void {
    const key = encodeAggregateId(id);
    const existing = this.#aggregates.get(key);
    const lifeStart = existing?.lifeStart ?? this.#nextLives.get(key) ?? 0;
    const nextSequence = existing?.nextSequence ?? lifeStart;
    if (sequence > nextSequence) {
      throw new InvalidSequenceError('snapshot sequence', `is beyond the aggregate's next sequence ${nextSequence}`, sequence);
    }
    if ((existing?.snapshot !== undefined && existing.snapshot.sequence >= sequence) || (lifeStart > 0 && sequence <= lifeStart)) return;
    const aggregate = existing ?? this.#create(key, id);
    aggregate.snapshot = { data, sequence };
    if (trim && sequence > aggregate.firstSequence) {
      aggregate.events = aggregate.events.slice(sequence - aggregate.firstSequence);
      aggregate.firstSequence = sequence;
    }
  }

  /** A page of the IDs under `prefix`: the prefix itself, then the keys in `prefix + ':'`…`prefix + ';'`. */
  listAggregates(prefix: AggregateId, { limit, after }: ListRequest): ListPage<AggregateId> {
    const idOf = (_: string, aggregate: AggregateData): AggregateId => [...aggregate.id];
    if (prefix.length === 0) return listPage(pageOf(this.#keys, { after }, limit, compareCodeUnits, idOf), String);
    const exact = encodeAggregateId(prefix);
    const itself = (after === undefined || compareCodeUnits(after, exact) < 0) && this.#aggregates.get(exact);
    const children = pageOf(this.#keys, { after, low: exact + ':', high: exact + ';' }, itself ? limit - 1 : limit, compareCodeUnits, idOf);
    if (!itself) return listPage(children, String);
    return listPage({ items: [[...itself.id], ...children.items], last: children.last ?? exact, more: children.more }, String);
  }

  getAggregateStatus(id: AggregateId): string {
    return this.#aggregates.get(encodeAggregateId(id))?.status ?? '';
  }

  listAggregatesByStatus(status: string, { limit, after }: ListRequest): ListPage<StatusListEntry> {
    const members = this.#statuses.get(status);
    if (members === undefined) return { items: [] };
    const start = after === undefined ? undefined : parseStatusKey(after);
    const page = pageOf(members, { after: start }, limit, compareStatusKeys, ([timestamp], aggregate) => ({
      id: [...aggregate.id],
      timestamp,
    }));
    return listPage(page, (key) => JSON.stringify(key));
  }

  listAggregatesByLabel(label: string, value: string, { limit, after }: ListRequest): ListPage<AggregateId> {
    const holders = this.#labels.get(label)?.get(value);
    if (holders === undefined) return { items: [] };
    return listPage(
      pageOf(holders, { after }, limit, compareCodeUnits, (_, aggregate) => [...aggregate.id]),
      String,
    );
  }

  listLabelValues(label: string, { limit, after }: ListRequest): ListPage<string> {
    const values = this.#labels.get(label);
    if (values === undefined) return { items: [] };
    return listPage(
      pageOf(values, { after }, limit, compareCodeUnits, (value) => value),
      String,
    );
  }

  /** Moves the aggregate into the archive queue and removes it and its index entries. */
  archiveAggregate(id: AggregateId): void {
    const key = encodeAggregateId(id);
    const aggregate = this.#aggregates.get(key);
    if (aggregate === undefined) return;
    this.#applyIndex(key, aggregate, {
      status: '',
      statusTime: 0,
      labels: Object.fromEntries([...aggregate.labels.keys()].map((l) => [l, ''])),
    });
    this.#aggregates.delete(key);
    this.#keys.delete(key);
    aggregate.archived = true;
    // One life per ID: the next life numbers its events after this one's, leaving a gap.
    this.#nextLives.set(key, aggregate.nextSequence + 1);
    this.archive.push({
      aggregateId: [...aggregate.id],
      snapshotData: aggregate.snapshot?.data,
      snapshotSequence: aggregate.snapshot?.sequence ?? 0,
      events: aggregate.events.slice(),
    });
  }

  #create(key: string, id: AggregateId): AggregateData {
    const lifeStart = this.#nextLives.get(key) ?? 0;
    const aggregate: AggregateData = {
      id: [...id],
      key,
      events: [],
      firstSequence: lifeStart,
      nextSequence: lifeStart,
      lifeStart,
      snapshot: undefined,
      status: '',
      statusTime: 0,
      labels: new Map(),
      archived: false,
    };
    this.#aggregates.set(key, aggregate);
    this.#keys.set(key, aggregate);
    return aggregate;
  }

  #applyIndex(key: string, aggregate: AggregateData, index: IndexUpdate): void {
    if (index.status !== undefined && index.status !== aggregate.status) {
      const previous = this.#statuses.get(aggregate.status);
      if (previous !== undefined) {
        previous.delete([aggregate.statusTime, key]);
        if (previous.size === 0) this.#statuses.delete(aggregate.status);
      }
      aggregate.status = index.status;
      aggregate.statusTime = index.statusTime;
      if (index.status !== '') {
        let members = this.#statuses.get(index.status);
        if (members === undefined) this.#statuses.set(index.status, (members = sortedTree(compareStatusKeys)));
        members.set([index.statusTime, key], aggregate);
      }
    }
    for (const [label, value] of Object.entries(index.labels)) {
      const previous = aggregate.labels.get(label);
      if (previous === value) continue;
      if (previous !== undefined) {
        const values = this.#labels.get(label) as SortedTree<string, SortedTree<string, AggregateData>>;
        const holders = values.get(previous) as SortedTree<string, AggregateData>;
        holders.delete(key);
        if (holders.size === 0) values.delete(previous);
        if (values.size === 0) this.#labels.delete(label);
      }
      if (value === '') {
        aggregate.labels.delete(label);
        continue;
      }
      aggregate.labels.set(label, value);
      let values = this.#labels.get(label);
      if (values === undefined) this.#labels.set(label, (values = sortedTree(compareCodeUnits)));
      let holders = values.get(value);
      if (holders === undefined) values.set(value, (holders = sortedTree(compareCodeUnits)));
      holders.set(key, aggregate);
    }
  }
}

/** A status list's order: the time an aggregate entered the status, then its key. */
type StatusKey = readonly [time: number, key: string];

function compareStatusKeys(a: StatusKey, b: StatusKey): number {
  return a[0] - b[0] || compareCodeUnits(a[1], b[1]);
}

function parseStatusKey(text: string): StatusKey {
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

function isLive(slot: LogSlot): boolean {
  return !slot.aggregate.archived && slot.event.sequence >= slot.aggregate.firstSequence;
}

function eventsFrom(aggregate: AggregateData, fromSequence: number): StoredEventRecord[] {
  return aggregate.events.slice(Math.max(0, fromSequence - aggregate.firstSequence));
}
