/**
 * The LMDB values of the materialized state, in the same binary primitives as the commands. Labels
 * are kept sorted by name so that equal states are equal bytes.
 */
import type { ArchiveRecordData, EventRecord } from '@timebox/core';
import { decodeAggregateId } from '@timebox/core';
import { ByteReader, ByteWriter, utf8Bytes, utf8Text } from './binary.js';

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
  out.string(head.status).f64(head.statusTime);
  out.varuint(head.labels.size);
  if (head.labels.size > 0) {
    const labels = [...head.labels].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [name, value] of labels) out.string(name).string(value);
  }
  return out;
}

export function encodeHead(head: AggregateHead): Uint8Array {
  return writeHead(new ByteWriter(64), head).finish();
}

export function decodeHead(bytes: Uint8Array): AggregateHead {
  const input = new ByteReader(bytes);
  const number = input.varuint();
  const firstSequence = input.varuint();
  const snapshotSequence = input.u8() === 0 ? null : input.varuint();
  const status = input.string();
  const statusTime = input.f64();
  const labels = new Map<string, string>();
  const count = input.count(2);
  for (let i = 0; i < count; i++) labels.set(input.string(), input.string());
  input.end();
  return { number, firstSequence, snapshotSequence, status, statusTime, labels };
}

/** Writes `event` (its sequence is in the key) to `out`. */
export function writeEvent(out: ByteWriter, event: EventRecord): ByteWriter {
  return out.f64(event.timestamp).string(event.type).string(event.data);
}

export function encodeEvent(event: EventRecord): Uint8Array {
  return writeEvent(new ByteWriter(32 + event.data.length), event).finish();
}

export function decodeEvent(sequence: number, bytes: Uint8Array): EventRecord {
  const input = new ByteReader(bytes);
  const timestamp = input.f64();
  const type = input.string();
  const data = input.string();
  input.end();
  return { type, sequence, timestamp, data };
}

export function encodeText(text: string): Uint8Array {
  return utf8Bytes(text);
}

export function decodeText(bytes: Uint8Array): string {
  return utf8Text(bytes);
}

/** An archive record as stored: `streamId` is the decimal record ID. */
export function encodeArchiveRecord(
  encodedId: string,
  snapshotData: string | undefined,
  snapshotSequence: number,
  events: readonly EventRecord[],
): Uint8Array {
  const out = new ByteWriter(256);
  out.string(encodedId).u8(snapshotData === undefined ? 0 : 1);
  if (snapshotData !== undefined) out.string(snapshotData);
  out.varuint(snapshotSequence).varuint(events.length);
  for (const event of events) out.varuint(event.sequence).string(event.type).f64(event.timestamp).string(event.data);
  return out.finish();
}

export function decodeArchiveRecord(record: number, bytes: Uint8Array): ArchiveRecordData {
  const input = new ByteReader(bytes);
  const aggregateId = decodeAggregateId(input.string());
  const snapshotData = input.u8() === 0 ? undefined : input.string();
  const snapshotSequence = input.varuint();
  const count = input.count(11);
  const events: EventRecord[] = new Array<EventRecord>(count);
  for (let i = 0; i < count; i++) {
    const sequence = input.varuint();
    const type = input.string();
    events[i] = { type, sequence, timestamp: input.f64(), data: input.string() };
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
  return new ByteWriter(32).f64(lease.leasedUntil).varuint(lease.lease).string(lease.holder).finish();
}

export function decodeLease(bytes: Uint8Array): ArchiveLease {
  const input = new ByteReader(bytes);
  const lease = { leasedUntil: input.f64(), lease: input.varuint(), holder: input.string() };
  input.end();
  return lease;
}

export function encodeU64(value: number): Uint8Array {
  return new ByteWriter(8).varuint(value).finish();
}

export function decodeU64(bytes: Uint8Array): number {
  const input = new ByteReader(bytes);
  const value = input.varuint();
  input.end();
  return value;
}
