/**
 * Applies one decoded command to the state inside the current LMDB write transaction. Pure in the
 * sense Raft needs: the result and the writes depend only on the stored state and the command's
 * bytes (time included), never on this node's clock or configuration.
 */
import { LRUCache } from 'lru-cache';
import { encodeAggregateId, type AggregateId, type EventRecord, type IndexUpdate } from '@timebox/core';
import { ByteWriter } from './binary.js';
import type { AckCommand, AppendCommand, ArchiveCommand, CommandResult, LeaseCommand, ReleaseCommand, RenewCommand, SaveSnapshotCommand } from './commands.js';
import {
  aggregateKey,
  archiveKey,
  eventKey,
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

/** A head as the applier caches it, with its key so the key is built once. */
interface CachedHead {
  readonly key: Buffer;
  /** Undefined: the aggregate does not exist (yet). */
  head: AggregateHead | undefined;
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
    const actualSequence = head?.nextSequence ?? 0;
    if (actualSequence !== command.expectedSequence) {
      const newEvents = head === undefined ? [] : this.#events(head, command.expectedSequence);
      return { type: 'conflict', actualSequence, newEvents };
    }
    if (command.events.length === 0) return OK;
    const target = head ?? this.#create();
    for (const event of command.events) this.view.put(eventKey(target.number, event.sequence), writeEvent(this.#scratch.reset(), event).view());
    target.nextSequence += command.events.length;
    if (command.index !== undefined) this.#applyIndex(encodedId, target, command.index);
    this.#putHead(cached, target);
    if (this.#publish) this.#effects.published.push(command.events.map((event) => ({ ...event, aggregateId: command.id })));
    return OK;
  }

  saveSnapshot(command: SaveSnapshotCommand): CommandResult {
    const cached = this.#cachedHead(encodeAggregateId(command.id));
    const head = cached.head;
    const nextSequence = head?.nextSequence ?? 0;
    if (command.sequence > nextSequence) return { type: 'invalid-sequence', nextSequence };
    if (head?.snapshotSequence != null && head.snapshotSequence >= command.sequence) return OK;
    const target = head ?? this.#create();
    target.snapshotSequence = command.sequence;
    this.view.put(snapshotKey(target.number), encodeText(command.data));
    if (command.trim && command.sequence > target.firstSequence) {
      for (let sequence = target.firstSequence; sequence < command.sequence; sequence++) this.view.remove(eventKey(target.number, sequence));
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
    this.view.put(leaseKey(command.record), encodeLease({ leasedUntil: command.at + command.leaseMs, lease: command.lease, holder: command.consumer }));
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
      cached = { key, head: stored === undefined ? undefined : decodeHead(stored) };
      this.#heads.set(encodedId, cached);
    }
    return cached;
  }

  #putHead(cached: CachedHead, head: AggregateHead): void {
    cached.head = head;
    this.view.put(cached.key, writeHead(this.#scratch.reset(), head).view());
  }

  #create(): AggregateHead {
    const number = this.#nextCounter(Meta.nextAggregate);
    return { number, nextSequence: 0, firstSequence: 0, snapshotSequence: null, status: '', statusTime: 0, labels: new Map() };
  }

  #nextCounter(field: number): number {
    const stored = this.view.get(metaKey(field));
    const value = stored === undefined ? 1 : decodeU64(stored);
    this.view.put(metaKey(field), encodeU64(value + 1));
    return value;
  }

  #events(head: AggregateHead, fromSequence: number): EventRecord[] {
    const start = Math.max(fromSequence, head.firstSequence);
    if (start >= head.nextSequence) return [];
    const events: EventRecord[] = [];
    for (const { key, value } of this.view.range(eventKey(head.number, start), eventKey(head.number, head.nextSequence))) {
      events.push(decodeEvent(new KeyReader(key).skip(8).u64(), value));
    }
    return events;
  }

  #applyIndex(encodedId: string, head: AggregateHead, index: IndexUpdate): void {
    const storedId = encodeText(encodedId);
    if (index.status !== undefined && index.status !== head.status) {
      if (head.status !== '') this.view.remove(statusKey(head.status, head.statusTime, head.number));
      head.status = index.status;
      head.statusTime = index.status === '' ? 0 : index.statusTime;
      if (index.status !== '') this.view.put(statusKey(index.status, index.statusTime, head.number), storedId);
    }
    for (const [name, value] of Object.entries(index.labels)) {
      const previous = head.labels.get(name);
      if (previous === value) continue;
      if (previous !== undefined) this.view.remove(labelKey(name, previous, head.number));
      if (value === '') {
        head.labels.delete(name);
      } else {
        head.labels.set(name, value);
        this.view.put(labelKey(name, value, head.number), storedId);
      }
    }
  }
}
