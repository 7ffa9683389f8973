/**
 * Applies one decoded command to the state inside the current LMDB write transaction. Pure in the
 * sense Raft needs: the result and the writes depend only on the stored state and the command's
 * bytes (time included), never on this node's clock or configuration.
 */
import { LRUCache } from 'lru-cache';
import { encodeAggregateId, type AggregateId, type EventRecord, type IndexUpdate } from '@timebox/core';
import { ByteWriter } from './binary.js';
import type {
  AckCommand,
  AppendCommand,
  ArchiveCommand,
  CommandResult,
  LeaseCommand,
  ReleaseCommand,
  RenewCommand,
  SaveSnapshotCommand,
} from './commands.js';
import {
  aggregateKey,
  archiveKey,
  eventKey,
  eventsEnd,
  labelKey,
  leaseKey,
  Meta,
  metaKey,
  snapshotKey,
  statusKey,
  Table,
  KeyReader,
} from './keys.js';
import {
  decodeEvent,
  decodeHead,
  decodeLease,
  decodeText,
  decodeU64,
  encodeArchiveRecord,
  encodeLease,
  encodeText,
  encodeU64,
  writeEvent,
  writeHead,
  type AggregateHead,
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

/** An event as handed to the publisher: the stored record and its aggregate. */
export interface PublishedEvent extends EventRecord {
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

/** An aggregate as the applier caches it: its head, its next sequence, and its key built once. */
interface CachedHead {
  readonly key: Buffer;
  /** Undefined: the aggregate does not exist (yet). */
  head: AggregateHead | undefined;
  /** The sequence its next event takes (0 while it does not exist). */
  nextSequence: number;
}

/**
 * Applies commands inside the state's write transactions, one batch after another. It keeps the
 * aggregate heads it read or wrote in an LRU cache (a head is read and rewritten by every append
 * to its aggregate), and encodes values into one reused buffer: LMDB copies a value when it is
 * put inside a transaction, so nothing else holds on to it.
 *
 * The cache mirrors the transaction, which can still fail: after a failed batch (or a restored
 * snapshot) the owner calls `forgetCachedHeads()`.
 */
export class CommandApplier {
  readonly #scratch = new ByteWriter(4096);
  readonly #heads: LRUCache<string, CachedHead>;
  #effects: ApplyEffects = { published: [], archiveAvailable: false };
  #publish = false;

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

  /** Drops every cached head (the transaction they came from failed, or the state was replaced). */
  forgetCachedHeads(): void {
    this.#heads.clear();
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
    if (command.events.length === 0) return OK;
    const target = head ?? this.#create();
    for (const event of command.events)
      this.view.put(eventKey(target.number, event.sequence), writeEvent(this.#scratch.reset(), event).view());
    cached.nextSequence += command.events.length;
    // The head is written only when it changes: the next sequence is not stored (see AggregateHead).
    const indexChanged = command.index !== undefined && this.#applyIndex(encodedId, target, command.index);
    if (head === undefined || indexChanged) this.#putHead(cached, target);
    if (this.#publish) this.#effects.published.push(command.events.map((event) => ({ ...event, aggregateId: command.id })));
    return OK;
  }

  saveSnapshot(command: SaveSnapshotCommand): CommandResult {
    const cached = this.#cachedHead(encodeAggregateId(command.id));
    const head = cached.head;
    const nextSequence = cached.nextSequence;
    if (command.sequence > nextSequence) return { type: 'invalid-sequence', nextSequence };
    if (head?.snapshotSequence != null && head.snapshotSequence >= command.sequence) return OK;
    const target = head ?? this.#create();
    target.snapshotSequence = command.sequence;
    this.view.put(snapshotKey(target.number), encodeText(command.data));
    if (command.trim && command.sequence > target.firstSequence) {
      for (let sequence = target.firstSequence; sequence < command.sequence; sequence++)
        this.view.remove(eventKey(target.number, sequence));
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
    for (const event of events) this.view.remove(eventKey(head.number, event.sequence));
    if (head.status !== '') this.view.remove(statusKey(head.status, head.statusTime, head.number));
    for (const [name, value] of head.labels) this.view.remove(labelKey(name, value, head.number));
    this.view.remove(cached.key);
    cached.head = undefined;
    cached.nextSequence = 0;
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
      cached = { key, head, nextSequence: head === undefined ? 0 : this.#storedNextSequence(head) };
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

  #create(): AggregateHead {
    const number = this.#nextCounter(Meta.nextAggregate);
    return { number, firstSequence: 0, snapshotSequence: null, status: '', statusTime: 0, labels: new Map() };
  }

  #nextCounter(field: number): number {
    const stored = this.view.get(metaKey(field));
    const value = stored === undefined ? 1 : decodeU64(stored);
    this.view.put(metaKey(field), encodeU64(value + 1));
    return value;
  }

  #events(head: AggregateHead, fromSequence: number): EventRecord[] {
    const start = Math.max(fromSequence, head.firstSequence);
    const events: EventRecord[] = [];
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
