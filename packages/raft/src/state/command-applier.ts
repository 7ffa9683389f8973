/**
 * Applies one decoded command to the state inside the current LMDB write transaction. Pure in the
 * sense Raft needs: the result and the writes depend only on the stored state and the command's
 * bytes (time included), never on this node's clock or configuration.
 */
import { LRUCache } from 'lru-cache';
import { encodeAggregateId, type AggregateId, type IndexUpdate, type StoredEventRecord } from '@timebox/core';
import { ByteWriter } from '../bytes/byte-writer.js';
import type {
  AckCommand,
  AppendCommand,
  ArchiveCommand,
  ClaimProjectionCommand,
  CommandResult,
  LeaseCommand,
  OpenLogCommand,
  ReleaseCommand,
  ReleaseProjectionCommand,
  RenewCommand,
  ResetProjectionCommand,
  SaveProjectionCommand,
  SaveSnapshotCommand,
} from './commands.js';
import {
  aggregateIdKey,
  aggregateKey,
  archiveKey,
  eventKey,
  eventsEnd,
  labelKey,
  leaseKey,
  lifeKey,
  logKey,
  Meta,
  metaKey,
  projectionKey,
  snapshotKey,
  statusKey,
  Table,
  KeyReader,
} from './keys.js';
import {
  decodeEvent,
  decodeHead,
  decodeLease,
  decodeProjection,
  decodeText,
  decodeU64,
  encodeArchiveRecord,
  encodeLease,
  encodeProjection,
  encodeText,
  encodeU64,
  eventPosition,
  projectionView,
  writeEvent,
  writeHead,
  writeLogEntry,
  type AggregateHead,
  type StoredProjection,
} from './records.js';

/** The few LMDB operations the applier uses, all inside one write transaction. */
export interface WriteView {
  get(key: Buffer): Uint8Array | undefined;
  put(key: Buffer, value: Uint8Array): void;
  remove(key: Buffer): void;
  /** Entries with start ≤ key < end, in key order. */
  range(start: Buffer, end: Buffer): Iterable<{ key: Uint8Array; value: Uint8Array }>;
  /** The greatest key with start ≤ key < end, if any. */
  last(start: Buffer, end: Buffer): Uint8Array | undefined;
}

/** An event as handed to the publisher: the stored record (with its log position) and its aggregate. */
export interface PublishedEvent extends StoredEventRecord {
  readonly aggregateId: AggregateId;
}

/** What a batch did besides its results, for the callbacks after the commit. */
export interface ApplyEffects {
  /** The events of each successful non-empty append, in log order. */
  readonly published: PublishedEvent[][];
  /** An archive record was added or freed: waiting consumers should look again. */
  archiveAvailable: boolean;
}

const OK: CommandResult = { type: 'ok' };
const LEASE_LOST: CommandResult = { type: 'lease-lost' };
const GENERATION_CHANGED: CommandResult = { type: 'generation-changed' };

/** An aggregate as the applier caches it: its head, its next sequence, and its key built once. */
interface CachedHead {
  readonly key: Buffer;
  /** Undefined: the aggregate has no live life (never had one, or its last one was archived). */
  head: AggregateHead | undefined;
  /**
   * The sequence its next event takes. Without a head: where its next life starts (0, or one
   * past the next sequence of its archived life).
   */
  nextSequence: number;
}

/**
 * Applies commands inside the state's write transactions, one batch after another. It keeps the
 * aggregate heads it read or wrote in an LRU cache (a head is read and rewritten by every append
 * to its aggregate), and encodes values into one reused buffer: LMDB copies a value when it is
 * put inside a transaction, so nothing else holds on to it.
 *
 * The cache mirrors the transaction, which can still fail: after a failed batch (or a restored
 * snapshot) the owner calls `forgetCache()`.
 */
export class CommandApplier {
  readonly #scratch = new ByteWriter(4096);
  readonly #heads: LRUCache<string, CachedHead>;
  #effects: ApplyEffects = { published: [], archiveAvailable: false };
  #publish = false;
  /**
   * The position the next appended event takes, read from meta at the first append after a
   * restart or a failure and written back by `finish()` in each batch's transaction; undefined when not loaded.
   */
  #nextPosition: number | undefined;
  /** The stored value of `#nextPosition`, so `finish()` writes only when appends moved it. */
  #storedNextPosition: number | undefined;

  constructor(
    private readonly view: WriteView,
    headCacheSize: number,
  ) {
    this.#heads = new LRUCache<string, CachedHead>({ max: headCacheSize });
  }

  /** Starts a batch: effects go to `effects`; events are collected for publishing only when `publish`. */
  begin(effects: ApplyEffects, publish: boolean): void {
    this.#effects = effects;
    this.#publish = publish;
  }

  /** Writes what the batch kept in memory (the next log position) into its transaction. */
  finish(): void {
    if (this.#nextPosition !== undefined && this.#nextPosition !== this.#storedNextPosition) {
      this.view.put(metaKey(Meta.nextPosition), encodeU64(this.#nextPosition));
      this.#storedNextPosition = this.#nextPosition;
    }
  }

  /**
   * Drops every cached head and the cached next position (the transaction they came from failed,
   * or the state was replaced).
   */
  forgetCache(): void {
    this.#heads.clear();
    this.#nextPosition = undefined;
    this.#storedNextPosition = undefined;
  }

  append(command: AppendCommand): CommandResult {
    const encodedId = encodeAggregateId(command.id);
    const cached = this.#cachedHead(encodedId);
    const head = cached.head;
    const actualSequence = cached.nextSequence;
    if (actualSequence !== command.expectedSequence) {
      const newEvents = head === undefined ? [] : this.#events(head, command.expectedSequence);
      return { type: 'conflict', actualSequence, newEvents };
    }
    const count = command.events.length;
    if (count === 0) return OK;
    const target = head ?? this.#create(encodedId, actualSequence);
    // Positions follow the log's order: every member applies the same commands in the same order
    // from the same counter, so every member gives every event the same position.
    const firstPosition = this.#takePositions(count);
    for (let i = 0; i < count; i++) {
      const event = command.events[i] as AppendCommand['events'][number];
      this.view.put(eventKey(target.number, event.sequence), writeEvent(this.#scratch.reset(), event, firstPosition + i).view());
      this.view.put(logKey(firstPosition + i), writeLogEntry(this.#scratch.reset(), target.number, event.sequence).view());
    }
    cached.nextSequence += count;
    // The head is written only when it changes: the next sequence is not stored (see AggregateHead).
    const indexChanged = command.index !== undefined && this.#applyIndex(encodedId, target, command.index);
    if (head === undefined || indexChanged) this.#putHead(cached, target);
    if (this.#publish) {
      this.#effects.published.push(
        command.events.map((event, i) => ({
          type: event.type,
          sequence: event.sequence,
          timestamp: event.timestamp,
          data: event.data,
          position: firstPosition + i,
          aggregateId: command.id,
        })),
      );
    }
    return { type: 'appended', firstPosition, count };
  }

  saveSnapshot(command: SaveSnapshotCommand): CommandResult {
    const encodedId = encodeAggregateId(command.id);
    const cached = this.#cachedHead(encodedId);
    const head = cached.head;
    const nextSequence = cached.nextSequence;
    if (command.sequence > nextSequence) return { type: 'invalid-sequence', nextSequence };
    if (head?.snapshotSequence != null) {
      if (head.snapshotSequence >= command.sequence) return OK;
    } else {
      // Without a snapshot, the first stored sequence is where the life started (only a snapshot
      // trims); a snapshot at or below a later life's start would cover none of its events.
      const lifeStart = head?.firstSequence ?? nextSequence;
      if (lifeStart > 0 && command.sequence <= lifeStart) return OK;
    }
    const target = head ?? this.#create(encodedId, nextSequence);
    target.snapshotSequence = command.sequence;
    this.view.put(snapshotKey(target.number), encodeText(command.data));
    if (command.trim && command.sequence > target.firstSequence) {
      const removed: { key: Buffer; position: number }[] = [];
      for (const { key, value } of this.view.range(
        eventKey(target.number, target.firstSequence),
        eventKey(target.number, command.sequence),
      ))
        removed.push({ key: Buffer.from(key), position: eventPosition(value) });
      // Trimmed events leave the log with their entries.
      for (const { key, position } of removed) {
        this.view.remove(key);
        this.view.remove(logKey(position));
      }
      target.firstSequence = command.sequence;
    }
    this.#putHead(cached, target);
    return OK;
  }

  archive(command: ArchiveCommand): CommandResult {
    const encodedId = encodeAggregateId(command.id);
    const cached = this.#cachedHead(encodedId);
    const head = cached.head;
    if (head === undefined) return OK;
    const events = this.#events(head, head.firstSequence);
    let snapshotData: string | undefined;
    if (head.snapshotSequence !== null) {
      const stored = this.view.get(snapshotKey(head.number));
      snapshotData = stored === undefined ? undefined : decodeText(stored);
      this.view.remove(snapshotKey(head.number));
    }
    for (const event of events) {
      this.view.remove(eventKey(head.number, event.sequence));
      this.view.remove(logKey(event.position));
    }
    if (head.status !== '') this.view.remove(statusKey(head.status, head.statusTime, head.number));
    for (const [name, value] of head.labels) this.view.remove(labelKey(name, value, head.number));
    this.view.remove(cached.key);
    this.view.remove(aggregateIdKey(head.number));
    // One life per ID: the next life starts one past this life's next sequence, so a sequence read
    // in this life is never valid in the next, and a catch-up across the boundary finds a gap.
    const nextLife = cached.nextSequence + 1;
    this.view.put(lifeKey(encodedId), encodeU64(nextLife));
    cached.head = undefined;
    cached.nextSequence = nextLife;
    const record = this.#nextCounter(Meta.nextArchiveRecord);
    this.view.put(archiveKey(record), encodeArchiveRecord(encodedId, snapshotData, head.snapshotSequence ?? 0, events));
    this.view.put(leaseKey(record), encodeLease({ leasedUntil: 0, lease: 0, holder: '' }));
    this.#effects.archiveAvailable = true;
    return OK;
  }

  lease(command: LeaseCommand): CommandResult {
    let earliestExpiry: number | null = null;
    let taken: { record: number; lease: number } | undefined;
    for (const { key, value } of this.view.range(Buffer.from([Table.lease]), Buffer.from([Table.lease + 1]))) {
      const lease = decodeLease(value);
      if (lease.leasedUntil <= command.at) {
        taken = { record: new KeyReader(key).u64(), lease: lease.lease };
        break;
      }
      earliestExpiry = earliestExpiry === null ? lease.leasedUntil : Math.min(earliestExpiry, lease.leasedUntil);
    }
    if (taken === undefined) return { type: 'nothing-available', earliestExpiry };
    const expiresAt = command.at + command.leaseMs;
    const lease = taken.lease + 1;
    this.view.put(leaseKey(taken.record), encodeLease({ leasedUntil: expiresAt, lease, holder: command.consumer }));
    return { type: 'leased', record: taken.record, lease, expiresAt };
  }

  renew(command: RenewCommand): CommandResult {
    if (!this.#holds(command)) return LEASE_LOST;
    this.view.put(
      leaseKey(command.record),
      encodeLease({ leasedUntil: command.at + command.leaseMs, lease: command.lease, holder: command.consumer }),
    );
    return OK;
  }

  ack(command: AckCommand): CommandResult {
    if (!this.#holds(command)) return LEASE_LOST;
    this.view.remove(leaseKey(command.record));
    this.view.remove(archiveKey(command.record));
    return OK;
  }

  release(command: ReleaseCommand): CommandResult {
    if (!this.#holds(command)) return LEASE_LOST;
    this.view.put(leaseKey(command.record), encodeLease({ leasedUntil: 0, lease: command.lease, holder: '' }));
    this.#effects.archiveAvailable = true;
    return OK;
  }

  /** Names the log if nothing named it yet; the first name applied stays. */
  openLog(command: OpenLogCommand): CommandResult {
    const key = metaKey(Meta.logId);
    if (this.view.get(key) === undefined) this.view.put(key, encodeText(command.logId));
    return OK;
  }

  claimProjection(command: ClaimProjectionCommand): CommandResult {
    const key = projectionKey(command.name);
    const stored = this.view.get(key);
    const record: StoredProjection =
      stored === undefined
        ? { generation: 0, leaseUntil: 0, holder: undefined, checkpoint: undefined, lastError: undefined }
        : decodeProjection(stored);
    // Expiry is judged by the time stamped in the command, never by this member's clock.
    const held = record.holder === undefined || record.holder === command.holder || record.leaseUntil <= command.at;
    if (held) {
      record.holder = command.holder;
      record.leaseUntil = command.at + command.leaseMs;
    }
    if (held || stored === undefined) this.view.put(key, encodeProjection(record));
    return { type: 'claimed', held, record: projectionView(command.name, record, command.at) };
  }

  saveProjection(command: SaveProjectionCommand): CommandResult {
    const key = projectionKey(command.name);
    const stored = this.view.get(key);
    if (stored === undefined) return LEASE_LOST;
    const record = decodeProjection(stored);
    if (record.holder !== command.holder || record.leaseUntil <= command.at) return LEASE_LOST;
    if (record.generation !== command.generation) return GENERATION_CHANGED;
    if (command.checkpoint !== undefined) record.checkpoint = command.checkpoint;
    if (command.lastError !== undefined) record.lastError = command.lastError ?? undefined;
    record.leaseUntil = command.at + command.leaseMs;
    this.view.put(key, encodeProjection(record));
    return OK;
  }

  releaseProjection(command: ReleaseProjectionCommand): CommandResult {
    const key = projectionKey(command.name);
    const stored = this.view.get(key);
    if (stored === undefined) return OK;
    const record = decodeProjection(stored);
    if (record.holder !== command.holder) return OK;
    record.holder = undefined;
    record.leaseUntil = 0;
    this.view.put(key, encodeProjection(record));
    return OK;
  }

  resetProjection(command: ResetProjectionCommand): CommandResult {
    const key = projectionKey(command.name);
    const stored = this.view.get(key);
    const record: StoredProjection =
      stored === undefined
        ? { generation: 0, leaseUntil: 0, holder: undefined, checkpoint: undefined, lastError: undefined }
        : decodeProjection(stored);
    record.checkpoint = command.checkpoint;
    record.lastError = undefined;
    record.generation++;
    this.view.put(key, encodeProjection(record));
    return OK;
  }

  #holds(command: RenewCommand | AckCommand | ReleaseCommand): boolean {
    const stored = this.view.get(leaseKey(command.record));
    if (stored === undefined) return false;
    const lease = decodeLease(stored);
    return lease.lease === command.lease && lease.holder === command.consumer;
  }

  /** The aggregate's head (cached, else read from the transaction), with its key. */
  #cachedHead(encodedId: string): CachedHead {
    let cached = this.#heads.get(encodedId);
    if (cached === undefined) {
      const key = aggregateKey(encodedId);
      const stored = this.view.get(key);
      const head = stored === undefined ? undefined : decodeHead(stored);
      cached = { key, head, nextSequence: head === undefined ? this.#lifeStart(encodedId) : this.#storedNextSequence(head) };
      this.#heads.set(encodedId, cached);
    }
    return cached;
  }

  #putHead(cached: CachedHead, head: AggregateHead): void {
    cached.head = head;
    this.view.put(cached.key, writeHead(this.#scratch.reset(), head).view());
  }

  /** One past the aggregate's last stored event, or its first sequence when it has none. */
  #storedNextSequence(head: AggregateHead): number {
    const last = this.view.last(eventKey(head.number, 0), eventsEnd(head.number));
    return last === undefined ? head.firstSequence : new KeyReader(last).skip(8).u64() + 1;
  }

  /** Where the ID's next life starts: 0, or one past the next sequence of its archived life. */
  #lifeStart(encodedId: string): number {
    const stored = this.view.get(lifeKey(encodedId));
    return stored === undefined ? 0 : decodeU64(stored);
  }

  /** A new head for a life starting at `lifeStart`; the caller writes it. */
  #create(encodedId: string, lifeStart: number): AggregateHead {
    const number = this.#nextCounter(Meta.nextAggregate);
    this.view.put(aggregateIdKey(number), encodeText(encodedId));
    // The head holds the life's start from now on (as its first sequence) until it is archived again.
    if (lifeStart > 0) this.view.remove(lifeKey(encodedId));
    return { number, firstSequence: lifeStart, snapshotSequence: null, status: '', statusTime: 0, labels: new Map() };
  }

  /** Reserves `count` consecutive log positions; the first of them. */
  #takePositions(count: number): number {
    if (this.#nextPosition === undefined) {
      const stored = this.view.get(metaKey(Meta.nextPosition));
      this.#nextPosition = stored === undefined ? 1 : decodeU64(stored);
      this.#storedNextPosition = this.#nextPosition;
    }
    const first = this.#nextPosition;
    this.#nextPosition += count;
    return first;
  }

  #nextCounter(field: number): number {
    const stored = this.view.get(metaKey(field));
    const value = stored === undefined ? 1 : decodeU64(stored);
    this.view.put(metaKey(field), encodeU64(value + 1));
    return value;
  }

  #events(head: AggregateHead, fromSequence: number): StoredEventRecord[] {
    const start = Math.max(fromSequence, head.firstSequence);
    const events: StoredEventRecord[] = [];
    for (const { key, value } of this.view.range(eventKey(head.number, start), eventsEnd(head.number))) {
      events.push(decodeEvent(new KeyReader(key).skip(8).u64(), value));
    }
    return events;
  }

  /** Folds `index` into the head and the index tables; whether the head changed. */
  #applyIndex(encodedId: string, head: AggregateHead, index: IndexUpdate): boolean {
    let storedId: Uint8Array | undefined;
    let changed = false;
    if (index.status !== undefined && index.status !== head.status) {
      changed = true;
      if (head.status !== '') this.view.remove(statusKey(head.status, head.statusTime, head.number));
      head.status = index.status;
      head.statusTime = index.status === '' ? 0 : index.statusTime;
      if (index.status !== '') this.view.put(statusKey(index.status, index.statusTime, head.number), (storedId ??= encodeText(encodedId)));
    }
    for (const [name, value] of Object.entries(index.labels)) {
      const previous = head.labels.get(name);
      if (previous === value || (previous === undefined && value === '')) continue;
      changed = true;
      if (previous !== undefined) this.view.remove(labelKey(name, previous, head.number));
      if (value === '') {
        head.labels.delete(name);
      } else {
        head.labels.set(name, value);
        this.view.put(labelKey(name, value, head.number), (storedId ??= encodeText(encodedId)));
      }
    }
    return changed;
  }
}
