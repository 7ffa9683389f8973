/**
 * The LMDB values of the materialized state, in the same binary primitives as the commands. Labels
 * are kept sorted by name so that equal states are equal bytes.
 */
import type { ArchiveRecordData, EventRecord, ProjectionRecord, StoredEventRecord } from '@timebox/core';
import { compareCodeUnits, decodeAggregateId } from '@timebox/core';
import { ByteReader } from '../bytes/byte-reader.js';
import { ByteWriter } from '../bytes/byte-writer.js';
import { utf8Bytes, utf8Text } from '../bytes/utf8.js';
import { decodeError, DecodeError } from './errors.js';

/**
 * What the state stores about one live aggregate. Its next sequence is not stored: it is one past
 * its last stored event, or `firstSequence` when it has none (trimming keeps the events from the
 * snapshot on), so a plain append writes its events and nothing else.
 */
export interface AggregateHead {
  /** Internal number: the other tables key the aggregate by it, so long IDs are stored once. */
  readonly number: number;
  /** The lowest stored sequence (raised by trimming). */
  firstSequence: number;
  /** The sequence the stored snapshot covers, null without one. */
  snapshotSequence: number | null;
  /** `""` when none. */
  status: string;
  /** When the aggregate entered `status`. */
  statusTime: number;
  labels: Map<string, string>;
}

/** Writes `head` to `out` (a reused scratch writer on the apply path). */
export function writeHead(out: ByteWriter, head: AggregateHead): ByteWriter {
  out.varuint(head.number).varuint(head.firstSequence);
  out.u8(head.snapshotSequence === null ? 0 : 1);
  if (head.snapshotSequence !== null) out.varuint(head.snapshotSequence);
  out.string(head.status).f64be(head.statusTime);
  out.varuint(head.labels.size);
  if (head.labels.size > 0) {
    const labels = [...head.labels].sort(([a], [b]) => compareCodeUnits(a, b));
    for (const [name, value] of labels) out.string(name).string(value);
  }
  return out;
}

export function encodeHead(head: AggregateHead): Uint8Array {
  return writeHead(new ByteWriter(64), head).finish();
}

export function decodeHead(bytes: Uint8Array): AggregateHead {
  const input = new ByteReader(bytes, decodeError);
  const number = input.varuint();
  const firstSequence = input.varuint();
  const snapshotSequence = input.u8() === 0 ? null : input.varuint();
  const status = input.string();
  const statusTime = input.f64be();
  const labels = new Map<string, string>();
  const count = input.count(2);
  for (let i = 0; i < count; i++) labels.set(input.string(), input.string());
  input.end();
  return { number, firstSequence, snapshotSequence, status, statusTime, labels };
}

/**
 * Writes `event` (its sequence is in the key) to `out`, its log position first so that trimming
 * and archiving read it without decoding the rest.
 */
export function writeEvent(out: ByteWriter, event: EventRecord, position: number): ByteWriter {
  return out.varuint(position).f64be(event.timestamp).string(event.type).string(event.data);
}

export function encodeEvent(event: EventRecord, position: number): Uint8Array {
  return writeEvent(new ByteWriter(32 + event.data.length), event, position).finish();
}

export function decodeEvent(sequence: number, bytes: Uint8Array): StoredEventRecord {
  const input = new ByteReader(bytes, decodeError);
  const position = input.varuint();
  const timestamp = input.f64be();
  const type = input.string();
  const data = input.string();
  input.end();
  return { type, sequence, timestamp, data, position };
}

/** The log position of a stored event value, without decoding the rest. */
export function eventPosition(bytes: Uint8Array): number {
  return new ByteReader(bytes, decodeError).varuint();
}

/** Writes a log entry's value: where the event at that position is stored. */
export function writeLogEntry(out: ByteWriter, aggregate: number, sequence: number): ByteWriter {
  return out.varuint(aggregate).varuint(sequence);
}

export function decodeLogEntry(bytes: Uint8Array): { aggregate: number; sequence: number } {
  const input = new ByteReader(bytes, decodeError);
  const entry = { aggregate: input.varuint(), sequence: input.varuint() };
  input.end();
  return entry;
}

export function encodeText(text: string): Uint8Array {
  return utf8Bytes(text);
}

export function decodeText(bytes: Uint8Array): string {
  return utf8Text(bytes, decodeError);
}

/** An archive record as stored: `streamId` is the decimal record ID. */
export function encodeArchiveRecord(
  encodedId: string,
  snapshotData: string | undefined,
  snapshotSequence: number,
  events: readonly StoredEventRecord[],
): Uint8Array {
  const out = new ByteWriter(256);
  out.string(encodedId).u8(snapshotData === undefined ? 0 : 1);
  if (snapshotData !== undefined) out.string(snapshotData);
  out.varuint(snapshotSequence).varuint(events.length);
  for (const event of events)
    out.varuint(event.sequence).varuint(event.position).string(event.type).f64be(event.timestamp).string(event.data);
  return out.finish();
}

export function decodeArchiveRecord(record: number, bytes: Uint8Array): ArchiveRecordData {
  const input = new ByteReader(bytes, decodeError);
  const aggregateId = decodeAggregateId(input.string());
  const snapshotData = input.u8() === 0 ? undefined : input.string();
  const snapshotSequence = input.varuint();
  const count = input.count(12);
  const events: StoredEventRecord[] = new Array<StoredEventRecord>(count);
  for (let i = 0; i < count; i++) {
    const sequence = input.varuint();
    const position = input.varuint();
    const type = input.string();
    events[i] = { type, sequence, timestamp: input.f64be(), data: input.string(), position };
  }
  input.end();
  return { streamId: String(record), aggregateId, snapshotData, snapshotSequence, events };
}

/** Who holds an archive record and until when. */
export interface ArchiveLease {
  /** Epoch ms (proposer clocks) until which the record is held; 0 when free. */
  leasedUntil: number;
  /** Bumped on every lease, so a holder whose lease lapsed cannot act on a later one. */
  lease: number;
  /** The consumer ID of the current or last holder, `""` when never leased or released. */
  holder: string;
}

export function encodeLease(lease: ArchiveLease): Uint8Array {
  return new ByteWriter(32).f64be(lease.leasedUntil).varuint(lease.lease).string(lease.holder).finish();
}

export function decodeLease(bytes: Uint8Array): ArchiveLease {
  const input = new ByteReader(bytes, decodeError);
  const lease = { leasedUntil: input.f64be(), lease: input.varuint(), holder: input.string() };
  input.end();
  return lease;
}

export function encodeU64(value: number): Uint8Array {
  return new ByteWriter(8).varuint(value).finish();
}

export function decodeU64(bytes: Uint8Array): number {
  const input = new ByteReader(bytes, decodeError);
  const value = input.varuint();
  input.end();
  return value;
}

/** A projection's stored record; the lease is judged against it by the apply step (proposer-stamped time). */
export interface StoredProjection {
  generation: number;
  /** Epoch ms (the proposing member's clock) until which `holder` holds the lease; 0 when nobody does. */
  leaseUntil: number;
  holder: string | undefined;
  checkpoint: string | undefined;
  lastError: string | undefined;
}

function writeOptional(out: ByteWriter, text: string | undefined): void {
  out.u8(text === undefined ? 0 : 1);
  if (text !== undefined) out.string(text);
}

function readOptional(input: ByteReader): string | undefined {
  const flag = input.u8();
  if (flag > 1) throw new DecodeError(`bad optional-string flag ${flag}`);
  return flag === 0 ? undefined : input.string();
}

export function encodeProjection(record: StoredProjection): Uint8Array {
  const out = new ByteWriter(64).varuint(record.generation).f64be(record.leaseUntil);
  writeOptional(out, record.holder);
  writeOptional(out, record.checkpoint);
  writeOptional(out, record.lastError);
  return out.finish();
}

export function decodeProjection(bytes: Uint8Array): StoredProjection {
  const input = new ByteReader(bytes, decodeError);
  const generation = input.varuint();
  const leaseUntil = input.f64be();
  const holder = readOptional(input);
  const checkpoint = readOptional(input);
  const lastError = readOptional(input);
  input.end();
  return { generation, leaseUntil, holder, checkpoint, lastError };
}

/**
 * The record as `ProjectionStore` answers it. A lease that ran out by `now` shows no holder (the
 * stored one stays until the next claim, so expiry needs no write).
 */
export function projectionView(name: string, record: StoredProjection, now: number): ProjectionRecord {
  const held = record.holder !== undefined && record.leaseUntil > now;
  const view: { -readonly [K in keyof ProjectionRecord]: ProjectionRecord[K] } = {
    name,
    leaseUntil: held ? record.leaseUntil : 0,
    generation: record.generation,
  };
  if (record.checkpoint !== undefined) view.checkpoint = record.checkpoint;
  if (held) view.holder = record.holder;
  if (record.lastError !== undefined) view.lastError = record.lastError;
  return Object.freeze(view);
}

/** `bytes` as a Buffer over the same memory (LMDB's keys and values are Buffers). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
