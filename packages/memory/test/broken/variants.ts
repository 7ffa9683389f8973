/**
 * Deliberately broken memory backends. Each gets one thing wrong that a real adapter might; the
 * conformance suite must fail every one of them (see broken.test.ts).
 */
import type {
  AggregateId,
  AppendRequest,
  AppendResult,
  ArchiveRecordData,
  Backend,
  Feed,
  FeedSink,
  ListPage,
  ListRequest,
  LogDescriptor,
  LogPage,
  ProjectionStore,
  ReadLogRequest,
  SnapshotRecord,
  StatusListEntry,
  StoredEventRecord,
} from '@timebox/core';
import { encodeAggregateId } from '@timebox/core';
import { MemoryBackend, MemoryDatabase } from '../../src/index.js';

/** Every item of a paged list, read with the largest pages. */
async function everything<T>(read: (request: ListRequest) => Promise<ListPage<T>>): Promise<T[]> {
  const items: T[] = [];
  let after: string | undefined;
  do {
    const page = await read({ limit: 10_000, after });
    items.push(...page.items);
    after = page.next;
  } while (after !== undefined);
  return items;
}

function byKey(a: AggregateId, b: AggregateId): number {
  const left = encodeAggregateId(a);
  const right = encodeAggregateId(b);
  return left < right ? -1 : left > right ? 1 : 0;
}

/** A keyset page of a whole sorted array: the items whose key follows `request.after`. */
function pageOfArray<T>(items: readonly T[], keyOf: (item: T) => string, request: ListRequest): ListPage<T> {
  const start = request.after === undefined ? 0 : items.findIndex((item) => keyOf(item) > (request.after as string));
  const rest = start < 0 ? [] : items.slice(start);
  const page = rest.slice(0, request.limit);
  return rest.length > request.limit ? { items: page, next: keyOf(page[page.length - 1] as T) } : { items: page };
}

/** Passes every call to a real memory backend; variants override the call they break. */
class DelegatingBackend implements Backend {
  readonly name: string = 'broken-memory';
  readonly capabilities = { archive: true, readSide: true };

  constructor(protected readonly inner: MemoryBackend) {}

  get log(): LogDescriptor {
    return this.inner.log;
  }
  get projections(): ProjectionStore {
    return this.inner.projections;
  }

  ready(): Promise<void> {
    return this.inner.ready();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  append(request: AppendRequest): Promise<AppendResult> {
    return this.inner.append(request);
  }
  loadEvents(id: AggregateId, fromSequence: number): Promise<StoredEventRecord[]> {
    return this.inner.loadEvents(id, fromSequence);
  }
  readLog(request: ReadLogRequest): Promise<LogPage> {
    return this.inner.readLog(request);
  }
  logHead(): Promise<number[]> {
    return this.inner.logHead();
  }
  loadSnapshot(id: AggregateId): Promise<SnapshotRecord> {
    return this.inner.loadSnapshot(id);
  }
  saveSnapshot(id: AggregateId, data: string, sequence: number, trim: boolean): Promise<void> {
    return this.inner.saveSnapshot(id, data, sequence, trim);
  }
  listAggregates(prefix: AggregateId, request: ListRequest): Promise<ListPage<AggregateId>> {
    return this.inner.listAggregates(prefix, request);
  }
  getAggregateStatus(id: AggregateId): Promise<string> {
    return this.inner.getAggregateStatus(id);
  }
  listAggregatesByStatus(status: string, request: ListRequest): Promise<ListPage<StatusListEntry>> {
    return this.inner.listAggregatesByStatus(status, request);
  }
  listAggregatesByLabel(label: string, value: string, request: ListRequest): Promise<ListPage<AggregateId>> {
    return this.inner.listAggregatesByLabel(label, value, request);
  }
  listLabelValues(label: string, request: ListRequest): Promise<ListPage<string>> {
    return this.inner.listLabelValues(label, request);
  }
  archive(id: AggregateId): Promise<void> {
    return this.inner.archive(id);
  }
  consumeArchive(handler: (record: ArchiveRecordData) => Promise<void>, signal: AbortSignal | undefined): Promise<void> {
    return this.inner.consumeArchive(handler, signal);
  }
  watch(sink: FeedSink): Promise<Feed> {
    return this.inner.watch(sink);
  }
}

/** Appends wherever the log ends, whatever the caller expected: last writer wins. */
class SkipsSequenceCheck extends DelegatingBackend {
  override async append(request: AppendRequest): Promise<AppendResult> {
    const result = await this.inner.append(request);
    if (result.ok) return result;
    const at = result.actualSequence;
    const events = request.events.map((event, i) => ({ ...event, sequence: at + i }));
    return this.inner.append({ ...request, expectedSequence: at, events });
  }
}

/** Keeps every event when a snapshot is saved, even with trimEvents. */
class IgnoresTrim extends DelegatingBackend {
  override saveSnapshot(id: AggregateId, data: string, sequence: number): Promise<void> {
    return this.inner.saveSnapshot(id, data, sequence, false);
  }
}

/** Returns events newest first. */
class ReturnsEventsOutOfOrder extends DelegatingBackend {
  override async loadEvents(id: AggregateId, fromSequence: number): Promise<StoredEventRecord[]> {
    return (await this.inner.loadEvents(id, fromSequence)).reverse();
  }
  override async loadSnapshot(id: AggregateId): Promise<SnapshotRecord> {
    const snapshot = await this.inner.loadSnapshot(id);
    return { ...snapshot, events: snapshot.events.reverse() };
  }
}

/** Joins ID parts with ":" and no escaping, so ["a:b","c"] and ["a","b:c"] are one aggregate. */
class JoinsIdsWithoutEscaping extends DelegatingBackend {
  #join = (id: AggregateId): AggregateId => [id.join(':')];
  override append(request: AppendRequest): Promise<AppendResult> {
    return this.inner.append({ ...request, id: this.#join(request.id) });
  }
  override loadEvents(id: AggregateId, fromSequence: number): Promise<StoredEventRecord[]> {
    return this.inner.loadEvents(this.#join(id), fromSequence);
  }
  override loadSnapshot(id: AggregateId): Promise<SnapshotRecord> {
    return this.inner.loadSnapshot(this.#join(id));
  }
  override saveSnapshot(id: AggregateId, data: string, sequence: number, trim: boolean): Promise<void> {
    return this.inner.saveSnapshot(this.#join(id), data, sequence, trim);
  }
  override async listAggregates(prefix: AggregateId, request: ListRequest): Promise<ListPage<AggregateId>> {
    const joinedPrefix = prefix.join(':');
    const all = await everything((page) => this.inner.listAggregates([], page));
    const ids = all.map((id) => (id[0] as string).split(':')).filter((parts) => parts.join(':').startsWith(joinedPrefix));
    return pageOfArray(ids, encodeAggregateId, request);
  }
  override getAggregateStatus(id: AggregateId): Promise<string> {
    return this.inner.getAggregateStatus(this.#join(id));
  }
  override archive(id: AggregateId): Promise<void> {
    return this.inner.archive(this.#join(id));
  }
}

/** Treats a label set to "" as a value to store rather than a removal. */
class KeepsEmptyLabels extends DelegatingBackend {
  override append(request: AppendRequest): Promise<AppendResult> {
    if (request.index === undefined) return this.inner.append(request);
    const labels = Object.fromEntries(Object.entries(request.index.labels).filter(([, value]) => value !== ''));
    return this.inner.append({ ...request, index: { ...request.index, labels } });
  }
}

/** Acknowledges an archive record as soon as it is taken, before the handler has run. */
class AcksBeforeHandler extends DelegatingBackend {
  override async consumeArchive(handler: (record: ArchiveRecordData) => Promise<void>, signal: AbortSignal | undefined): Promise<void> {
    let taken: ArchiveRecordData | undefined;
    await this.inner.consumeArchive(async (record) => {
      taken = record;
    }, signal);
    await handler(taken as ArchiveRecordData);
  }
}

/** Publishes every append to the feed before the sequence check, so failed appends are delivered too. */
class FeedsFailedAppends extends DelegatingBackend {
  // The feed is the namespace's (the database's), as a server-side feed would be.
  static readonly #sinks = new WeakMap<MemoryDatabase, Set<FeedSink>>();
  get #feed(): Set<FeedSink> {
    let sinks = FeedsFailedAppends.#sinks.get(this.inner.database);
    if (sinks === undefined) FeedsFailedAppends.#sinks.set(this.inner.database, (sinks = new Set()));
    return sinks;
  }
  protected publish(request: AppendRequest): void {
    if (request.events.length === 0) return;
    for (const sink of this.#feed)
      sink.events(
        request.id,
        request.events.map((event, i) => ({ ...event, position: i + 1 })),
      );
  }
  override async append(request: AppendRequest): Promise<AppendResult> {
    this.publish(request);
    return this.inner.append(request);
  }
  override async watch(sink: FeedSink): Promise<Feed> {
    this.#feed.add(sink);
    return { close: async () => void this.#feed.delete(sink) };
  }
}

/**
 * Checks the expected sequence with a read, publishes, then appends: the check and the append are
 * not one atomic step, so appends racing at one sequence all pass the check and all are published,
 * though only one is stored. Sequential conflicts are caught by the read.
 */
class FeedsAfterRacyCheck extends FeedsFailedAppends {
  override async append(request: AppendRequest): Promise<AppendResult> {
    const snapshot = await this.inner.loadSnapshot(request.id);
    const next = snapshot.events.at(-1)?.sequence ?? snapshot.sequence - 1;
    if (next + 1 === request.expectedSequence) this.publish(request);
    return this.inner.append(request);
  }
}

/**
 * Writes the status in a step of its own after a read that checks the expected sequence, instead
 * of in the append's atomic step: of appends racing at one sequence, the last to pass the check
 * sets the status, though only the first is stored. Sequential conflicts are caught by the read.
 */
class IndexesAfterRacyCheck extends DelegatingBackend {
  // Shared by every connection to the namespace (the database), as stored state would be.
  static readonly #statuses = new WeakMap<MemoryDatabase, Map<string, string>>();
  get #status(): Map<string, string> {
    let statuses = IndexesAfterRacyCheck.#statuses.get(this.inner.database);
    if (statuses === undefined) IndexesAfterRacyCheck.#statuses.set(this.inner.database, (statuses = new Map<string, string>()));
    return statuses;
  }
  override async append(request: AppendRequest): Promise<AppendResult> {
    const snapshot = await this.inner.loadSnapshot(request.id);
    const next = snapshot.events.at(-1)?.sequence ?? snapshot.sequence - 1;
    const status = request.index?.status;
    if (next + 1 === request.expectedSequence && status !== undefined && request.events.length > 0) {
      this.#status.set(encodeAggregateId(request.id), status);
    }
    return this.inner.append(request);
  }
  override async getAggregateStatus(id: AggregateId): Promise<string> {
    return this.#status.get(encodeAggregateId(id)) ?? this.inner.getAggregateStatus(id);
  }
  override async archive(id: AggregateId): Promise<void> {
    this.#status.delete(encodeAggregateId(id));
    return this.inner.archive(id);
  }
}

/** Hands each append's events to the feed newest first. */
class FeedsEventsOutOfOrder extends DelegatingBackend {
  override watch(sink: FeedSink): Promise<Feed> {
    return this.inner.watch({ events: (id, records) => sink.events(id, [...records].reverse()), gap: (reason) => sink.gap(reason) });
  }
}

/**
 * Numbers an archived ID's next life from `start(archived life's next sequence)` instead of one past
 * it, by shifting the real backend's numbers for that ID: `restart` reuses sequences from 0, and
 * `continue` is the half-fix that carries on at the archived life's next sequence with no gap.
 */
class NumbersNewLivesFrom extends DelegatingBackend {
  // Shared by every connection to the namespace (the database), as stored state would be.
  static readonly #shifts = new WeakMap<MemoryDatabase, Map<string, number>>();

  constructor(
    inner: MemoryBackend,
    readonly start: (archivedNext: number) => number,
  ) {
    super(inner);
  }

  /** The real sequence minus the sequence this variant shows, for `id`. */
  #shift(id: AggregateId): number {
    return NumbersNewLivesFrom.#shifts.get(this.inner.database)?.get(encodeAggregateId(id)) ?? 0;
  }
  #out<T extends { sequence: number }>(id: AggregateId, records: readonly T[]): T[] {
    const shift = this.#shift(id);
    return records.map((record) => ({ ...record, sequence: record.sequence - shift }));
  }

  override async archive(id: AggregateId): Promise<void> {
    await this.inner.archive(id);
    const lifeStart = (await this.inner.loadSnapshot(id)).sequence;
    if (lifeStart === 0) return;
    let shifts = NumbersNewLivesFrom.#shifts.get(this.inner.database);
    if (shifts === undefined) NumbersNewLivesFrom.#shifts.set(this.inner.database, (shifts = new Map<string, number>()));
    const shown = lifeStart - this.#shift(id);
    shifts.set(encodeAggregateId(id), lifeStart - this.start(shown - 1));
  }
  override async append(request: AppendRequest): Promise<AppendResult> {
    const shift = this.#shift(request.id);
    const result = await this.inner.append({
      ...request,
      expectedSequence: request.expectedSequence + shift,
      events: request.events.map((event) => ({ ...event, sequence: event.sequence + shift })),
    });
    if (result.ok) return result;
    return { ok: false, actualSequence: result.actualSequence - shift, newEvents: this.#out(request.id, result.newEvents) };
  }
  override async loadEvents(id: AggregateId, fromSequence: number): Promise<StoredEventRecord[]> {
    return this.#out(id, await this.inner.loadEvents(id, fromSequence + this.#shift(id)));
  }
  override async loadSnapshot(id: AggregateId): Promise<SnapshotRecord> {
    const snapshot = await this.inner.loadSnapshot(id);
    return { ...snapshot, sequence: snapshot.sequence - this.#shift(id), events: this.#out(id, snapshot.events) };
  }
  override saveSnapshot(id: AggregateId, data: string, sequence: number, trim: boolean): Promise<void> {
    return this.inner.saveSnapshot(id, data, sequence + this.#shift(id), trim);
  }
  override async readLog(request: ReadLogRequest): Promise<LogPage> {
    const page = await this.inner.readLog(request);
    return { ...page, entries: page.entries.map((entry) => ({ id: entry.id, event: this.#out(entry.id, [entry.event])[0]! })) };
  }
}

/** Hands back trimmed and archived events from the log as if they were still stored. */
class LogKeepsRemovedEvents extends DelegatingBackend {
  readonly #removed: LogPage['entries'] = [];
  override async saveSnapshot(id: AggregateId, data: string, sequence: number, trim: boolean): Promise<void> {
    if (trim) for (const event of await this.inner.loadEvents(id, 0)) if (event.sequence < sequence) this.#removed.push({ id, event });
    return this.inner.saveSnapshot(id, data, sequence, trim);
  }
  override async readLog(request: ReadLogRequest): Promise<LogPage> {
    const page = await this.inner.readLog(request);
    const after = request.after[0] ?? 0;
    const last = page.after[0] ?? 0;
    const revived = this.#removed.filter(({ event }) => event.position > after && event.position <= last);
    const entries = [...page.entries, ...revived].sort((a, b) => a.event.position - b.event.position).slice(0, request.limit);
    return { ...page, entries };
  }
}

/** Returns each page of the log newest first. */
class LogOutOfOrder extends DelegatingBackend {
  override async readLog(request: ReadLogRequest): Promise<LogPage> {
    const page = await this.inner.readLog(request);
    return { ...page, entries: [...page.entries].reverse() };
  }
}

/** Grants every claim, so two runners of one projection both run. */
class GrantsEveryClaim extends DelegatingBackend {
  override get projections(): ProjectionStore {
    const inner = this.inner.projections;
    return {
      ...bindAll(inner),
      claim: async (name, holder, leaseMs) => {
        const { record } = await inner.claim(name, holder, leaseMs);
        return { held: true, record };
      },
      save: async (name, holder, generation, update, leaseMs) => {
        await inner.claim(name, holder, leaseMs);
        return inner.save(name, holder, generation, update, leaseMs);
      },
    };
  }
}

/** Ignores the generation on save, so a running holder never notices a reset. */
class IgnoresProjectionResets extends DelegatingBackend {
  override get projections(): ProjectionStore {
    const inner = this.inner.projections;
    return {
      ...bindAll(inner),
      save: async (name, holder, _generation, update, leaseMs) => {
        const current = (await inner.load(name))?.generation ?? 0;
        return inner.save(name, holder, current, update, leaseMs);
      },
    };
  }
}

function bindAll(store: ProjectionStore): ProjectionStore {
  return {
    load: (name) => store.load(name),
    claim: (name, holder, leaseMs) => store.claim(name, holder, leaseMs),
    save: (name, holder, generation, update, leaseMs) => store.save(name, holder, generation, update, leaseMs),
    release: (name, holder) => store.release(name, holder),
    reset: (name, checkpoint) => store.reset(name, checkpoint),
  };
}

/** Maps every ID part through `map` before it reaches the real backend, as a backend that rewrites keys would. */
class RewritesIdParts extends DelegatingBackend {
  constructor(
    inner: MemoryBackend,
    readonly map: (part: string) => string,
  ) {
    super(inner);
  }
  #id = (id: AggregateId): AggregateId => id.map(this.map);
  override append(request: AppendRequest): Promise<AppendResult> {
    return this.inner.append({ ...request, id: this.#id(request.id) });
  }
  override loadEvents(id: AggregateId, fromSequence: number): Promise<StoredEventRecord[]> {
    return this.inner.loadEvents(this.#id(id), fromSequence);
  }
  override loadSnapshot(id: AggregateId): Promise<SnapshotRecord> {
    return this.inner.loadSnapshot(this.#id(id));
  }
  override saveSnapshot(id: AggregateId, data: string, sequence: number, trim: boolean): Promise<void> {
    return this.inner.saveSnapshot(this.#id(id), data, sequence, trim);
  }
  override listAggregates(prefix: AggregateId, request: ListRequest): Promise<ListPage<AggregateId>> {
    return this.inner.listAggregates(this.#id(prefix), request);
  }
  override getAggregateStatus(id: AggregateId): Promise<string> {
    return this.inner.getAggregateStatus(this.#id(id));
  }
  override archive(id: AggregateId): Promise<void> {
    return this.inner.archive(this.#id(id));
  }
}

/**
 * Lists by prefix with a pattern built from the encoded prefix without escaping its wildcards, as
 * a SQL `LIKE` or a Redis `SCAN MATCH` would: `*` and `%` match any run, `?` and `_` any character,
 * `[…]` a class.
 */
class MatchesPrefixAsPattern extends DelegatingBackend {
  override async listAggregates(prefix: AggregateId, request: ListRequest): Promise<ListPage<AggregateId>> {
    if (prefix.length === 0) return this.inner.listAggregates(prefix, request);
    const pattern = encodeAggregateId(prefix).replace(/[*%]|[?_]|\[[^\]]*\]|[^*%?_[]+|\[/g, (token) => {
      if (token === '*' || token === '%') return '.*';
      if (token === '?' || token === '_') return '.';
      if (token.startsWith('[') && token.length > 1) return token;
      return token.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    });
    const matcher = new RegExp(`^${pattern}(:.*)?$`, 's');
    const all = await everything((page) => this.inner.listAggregates([], page));
    return pageOfArray(
      all.filter((id) => matcher.test(encodeAggregateId(id))),
      encodeAggregateId,
      request,
    );
  }
}

/** Matches label values the way a case-insensitive collation would: "ß" finds "SS", "Case" finds "case". */
class MatchesLabelsIgnoringCase extends DelegatingBackend {
  override async listAggregatesByLabel(label: string, value: string, request: ListRequest): Promise<ListPage<AggregateId>> {
    const held = await everything((page) => this.inner.listLabelValues(label, page));
    const matching = held.filter((candidate) => candidate.toUpperCase() === value.toUpperCase());
    const holders = await Promise.all(
      matching.map((candidate) => everything((page) => this.inner.listAggregatesByLabel(label, candidate, page))),
    );
    return pageOfArray(holders.flat().sort(byKey), encodeAggregateId, request);
  }
}

/** Reads an aggregate's events in pages of 1,000 and stops after the last full page, losing the rest. */
class DropsLastPageOfEvents extends DelegatingBackend {
  static readonly PAGE = 1_000;
  #paged<T>(records: T[]): T[] {
    return records.length > DropsLastPageOfEvents.PAGE
      ? records.slice(0, records.length - (records.length % DropsLastPageOfEvents.PAGE))
      : records;
  }
  override async loadEvents(id: AggregateId, fromSequence: number): Promise<StoredEventRecord[]> {
    return this.#paged(await this.inner.loadEvents(id, fromSequence));
  }
  override async loadSnapshot(id: AggregateId): Promise<SnapshotRecord> {
    const snapshot = await this.inner.loadSnapshot(id);
    return { ...snapshot, events: this.#paged(snapshot.events) };
  }
}

/** Answers every listing with its first page only, saying nothing follows, as a backend with a fixed LIMIT would. */
class ListsFirstPageOnly extends DelegatingBackend {
  static #firstOnly<T>(page: ListPage<T>): ListPage<T> {
    return { items: page.items };
  }
  override async listAggregates(prefix: AggregateId, request: ListRequest): Promise<ListPage<AggregateId>> {
    return ListsFirstPageOnly.#firstOnly(await this.inner.listAggregates(prefix, request));
  }
  override async listAggregatesByStatus(status: string, request: ListRequest): Promise<ListPage<StatusListEntry>> {
    return ListsFirstPageOnly.#firstOnly(await this.inner.listAggregatesByStatus(status, request));
  }
  override async listAggregatesByLabel(label: string, value: string, request: ListRequest): Promise<ListPage<AggregateId>> {
    return ListsFirstPageOnly.#firstOnly(await this.inner.listAggregatesByLabel(label, value, request));
  }
  override async listLabelValues(label: string, request: ListRequest): Promise<ListPage<string>> {
    return ListsFirstPageOnly.#firstOnly(await this.inner.listLabelValues(label, request));
  }
}

/** Returns every item in one page whatever the limit, as a backend that builds pages by slicing too late would. */
class IgnoresPageLimit extends DelegatingBackend {
  override async listAggregates(prefix: AggregateId): Promise<ListPage<AggregateId>> {
    return { items: await everything((page) => this.inner.listAggregates(prefix, page)) };
  }
  override async listAggregatesByLabel(label: string, value: string): Promise<ListPage<AggregateId>> {
    return { items: await everything((page) => this.inner.listAggregatesByLabel(label, value, page)) };
  }
}

/**
 * Pages by offset (`LIMIT n OFFSET k`) instead of by key: an item removed from the part already read
 * shifts the rest, so an item that stayed put is skipped, and one added there is read twice.
 */
class PagesByOffset extends DelegatingBackend {
  static async #page<T>(request: ListRequest, read: (page: ListRequest) => Promise<ListPage<T>>): Promise<ListPage<T>> {
    const all = await everything(read);
    const offset = request.after === undefined ? 0 : Number(request.after);
    const items = all.slice(offset, offset + request.limit);
    return offset + request.limit < all.length ? { items, next: String(offset + request.limit) } : { items };
  }
  override listAggregates(prefix: AggregateId, request: ListRequest): Promise<ListPage<AggregateId>> {
    return PagesByOffset.#page(request, (page) => this.inner.listAggregates(prefix, page));
  }
  override listAggregatesByStatus(status: string, request: ListRequest): Promise<ListPage<StatusListEntry>> {
    return PagesByOffset.#page(request, (page) => this.inner.listAggregatesByStatus(status, page));
  }
  override listAggregatesByLabel(label: string, value: string, request: ListRequest): Promise<ListPage<AggregateId>> {
    return PagesByOffset.#page(request, (page) => this.inner.listAggregatesByLabel(label, value, page));
  }
  override listLabelValues(label: string, request: ListRequest): Promise<ListPage<string>> {
    return PagesByOffset.#page(request, (page) => this.inner.listLabelValues(label, page));
  }
}

/**
 * Leaves an aggregate archived with no events left (trimmed to its snapshot) in its status index,
 * as a backend that finds index entries through the events it archives would.
 */
class KeepsStatusOfSnapshotOnlyArchives extends DelegatingBackend {
  // Shared by every connection to the namespace (the database), as stored state would be.
  static readonly #ghosts = new WeakMap<MemoryDatabase, { status: string; id: AggregateId; timestamp: number }[]>();
  get #entries() {
    let entries = KeepsStatusOfSnapshotOnlyArchives.#ghosts.get(this.inner.database);
    if (entries === undefined) KeepsStatusOfSnapshotOnlyArchives.#ghosts.set(this.inner.database, (entries = []));
    return entries;
  }
  override async archive(id: AggregateId): Promise<void> {
    const status = await this.inner.getAggregateStatus(id);
    if (status !== '' && (await this.inner.loadEvents(id, 0)).length === 0) {
      const key = encodeAggregateId(id);
      const entries = await everything((page) => this.inner.listAggregatesByStatus(status, page));
      const entry = entries.find((candidate) => encodeAggregateId(candidate.id) === key);
      if (entry !== undefined) this.#entries.push({ status, ...entry });
    }
    return this.inner.archive(id);
  }
  override async listAggregatesByStatus(status: string, request: ListRequest): Promise<ListPage<StatusListEntry>> {
    const ghosts = this.#entries.filter((entry) => entry.status === status).map(({ id, timestamp }) => ({ id, timestamp }));
    const live = await everything((page) => this.inner.listAggregatesByStatus(status, page));
    const all = [...live, ...ghosts].sort((a, b) => a.timestamp - b.timestamp || byKey(a.id, b.id));
    return pageOfArray(all, (entry) => JSON.stringify([entry.timestamp, encodeAggregateId(entry.id)]), request);
  }
}

/** Caches each listing until the next write and hands every caller the cached arrays themselves. */
class ReturnsCachedListings extends DelegatingBackend {
  static readonly #caches = new WeakMap<MemoryDatabase, Map<string, unknown>>();
  get #cache(): Map<string, unknown> {
    let cache = ReturnsCachedListings.#caches.get(this.inner.database);
    if (cache === undefined) ReturnsCachedListings.#caches.set(this.inner.database, (cache = new Map<string, unknown>()));
    return cache;
  }
  async #cached<T>(key: unknown[], load: () => Promise<T>): Promise<T> {
    const text = JSON.stringify(key);
    if (!this.#cache.has(text)) this.#cache.set(text, await load());
    return this.#cache.get(text) as T;
  }
  override async append(request: AppendRequest): Promise<AppendResult> {
    this.#cache.clear();
    return this.inner.append(request);
  }
  override async saveSnapshot(id: AggregateId, data: string, sequence: number, trim: boolean): Promise<void> {
    this.#cache.clear();
    return this.inner.saveSnapshot(id, data, sequence, trim);
  }
  override async archive(id: AggregateId): Promise<void> {
    this.#cache.clear();
    return this.inner.archive(id);
  }
  override listAggregates(prefix: AggregateId, request: ListRequest): Promise<ListPage<AggregateId>> {
    return this.#cached(['ids', prefix, request], () => this.inner.listAggregates(prefix, request));
  }
  override listAggregatesByStatus(status: string, request: ListRequest): Promise<ListPage<StatusListEntry>> {
    return this.#cached(['status', status, request], () => this.inner.listAggregatesByStatus(status, request));
  }
  override listAggregatesByLabel(label: string, value: string, request: ListRequest): Promise<ListPage<AggregateId>> {
    return this.#cached(['label', label, value, request], () => this.inner.listAggregatesByLabel(label, value, request));
  }
  override listLabelValues(label: string, request: ListRequest): Promise<ListPage<string>> {
    return this.#cached(['values', label, request], () => this.inner.listLabelValues(label, request));
  }
}

/** Each broken variant, and a test of the suite that it must fail. */
export const BROKEN_VARIANTS = {
  'skips-sequence-check': { make: (inner: MemoryBackend) => new SkipsSequenceCheck(inner), mustFail: 'exactly one wins' },
  'ignores-trim': { make: (inner: MemoryBackend) => new IgnoresTrim(inner), mustFail: 'with trimEvents deletes covered events' },
  'events-out-of-order': {
    make: (inner: MemoryBackend) => new ReturnsEventsOutOfOrder(inner),
    mustFail: 'continues sequences across appends',
  },
  'unescaped-ids': {
    make: (inner: MemoryBackend) => new JoinsIdsWithoutEscaping(inner),
    mustFail: 'keeps IDs that differ only in how their parts split',
  },
  'keeps-empty-labels': { make: (inner: MemoryBackend) => new KeepsEmptyLabels(inner), mustFail: 'changes and removes labels' },
  'acks-before-handler': {
    make: (inner: MemoryBackend) => new AcksBeforeHandler(inner),
    mustFail: 'redelivers a record whose handler threw',
  },
  'feeds-failed-appends': { make: (inner: MemoryBackend) => new FeedsFailedAppends(inner), mustFail: 'a failed append delivers nothing' },
  'feed-out-of-order': { make: (inner: MemoryBackend) => new FeedsEventsOutOfOrder(inner), mustFail: 'in sequence order per aggregate' },
  'new-life-restarts-at-zero': {
    make: (inner: MemoryBackend) => new NumbersNewLivesFrom(inner, () => 0),
    mustFail: 'an append expecting a sequence of the archived life is a conflict',
  },
  'new-life-continues-without-gap': {
    make: (inner: MemoryBackend) => new NumbersNewLivesFrom(inner, (archivedNext) => archivedNext),
    mustFail: 'a stale executor in the same process never mixes the archived life into the new one',
  },
  'log-keeps-trimmed-events': {
    make: (inner: MemoryBackend) => new LogKeepsRemovedEvents(inner),
    mustFail: 'leaves trimmed and archived events out of the log',
  },
  'grants-every-claim': {
    make: (inner: MemoryBackend) => new GrantsEveryClaim(inner),
    mustFail: 'runs one runner per name across processes',
  },
  'ignores-projection-resets': {
    make: (inner: MemoryBackend) => new IgnoresProjectionResets(inner),
    mustFail: 'rebuilds after resetProjection',
  },
  'log-out-of-order': {
    make: (inner: MemoryBackend) => new LogOutOfOrder(inner),
    mustFail: 'reads a log larger than any page a backend might use internally exactly once, in order',
  },
  'feeds-after-racy-check': {
    make: (inner: MemoryBackend) => new FeedsAfterRacyCheck(inner),
    mustFail: 'while appends race at one sequence, delivers the winners’ events and never a loser’s',
  },
  'indexes-after-racy-check': {
    make: (inner: MemoryBackend) => new IndexesAfterRacyCheck(inner),
    mustFail: 'applies the winner’s index and never a loser’s',
  },
  'normalizes-ids-to-nfc': {
    make: (inner: MemoryBackend) => new RewritesIdParts(inner, (part) => part.normalize('NFC')),
    mustFail: 'in case or in Unicode normalization as distinct aggregates',
  },
  'folds-id-case': {
    make: (inner: MemoryBackend) => new RewritesIdParts(inner, (part) => part.toLowerCase()),
    mustFail: 'in case or in Unicode normalization as distinct aggregates',
  },
  'matches-prefix-as-pattern': {
    make: (inner: MemoryBackend) => new MatchesPrefixAsPattern(inner),
    mustFail: 'lists by whole tricky IDs and their parts as prefixes',
  },
  'matches-labels-ignoring-case': {
    make: (inner: MemoryBackend) => new MatchesLabelsIgnoringCase(inner),
    mustFail: 'keeps statuses, label names and values distinct that collide once joined',
  },
  'drops-last-page-of-events': {
    make: (inner: MemoryBackend) => new DropsLastPageOfEvents(inner),
    mustFail: 'events whole, from the middle and behind a snapshot',
  },
  'lists-first-page-only': {
    make: (inner: MemoryBackend) => new ListsFirstPageOnly(inner),
    mustFail: 'the pages together are the whole list',
  },
  'ignores-page-limit': {
    make: (inner: MemoryBackend) => new IgnoresPageLimit(inner),
    mustFail: 'never returns more than the limit',
  },
  'pages-by-offset': {
    make: (inner: MemoryBackend) => new PagesByOffset(inner),
    mustFail: 'while items change between pages',
  },
  'keeps-status-of-snapshot-only-archives': {
    make: (inner: MemoryBackend) => new KeepsStatusOfSnapshotOnlyArchives(inner),
    mustFail: 'archives an aggregate in every state',
  },
  'returns-cached-listings': {
    make: (inner: MemoryBackend) => new ReturnsCachedListings(inner),
    mustFail: 'hands every listing to the caller to change',
  },
} as const;

export type BrokenVariant = keyof typeof BROKEN_VARIANTS;

/** A conformance namespace whose connections are the broken variant over one shared database. */
export function brokenNamespace(variant: BrokenVariant, leaseMs: number) {
  const database = new MemoryDatabase(leaseMs);
  return { connect: () => BROKEN_VARIANTS[variant].make(new MemoryBackend({ database })) };
}
