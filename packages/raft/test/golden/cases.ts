import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Message, Snapshot } from '../../src/consensus/types.js';
import { unwrapEnvelopes, wrapProposals } from '../../src/node/proposal-envelope.js';
import { decodeCommand, decodeResult, encodeCommand, encodeResult, type Command, type CommandResult } from '../../src/state/commands.js';
import { MaterializedState } from '../../src/state/materialized-state.js';
import {
  decodeEvent,
  decodeHead,
  decodeLease,
  decodeProjection,
  decodeText,
  decodeU64,
  encodeArchiveRecord,
  encodeEvent,
  encodeHead,
  encodeLease,
  encodeProjection,
  encodeText,
  encodeU64,
} from '../../src/state/records.js';
import { ByteWriter } from '../../src/bytes/byte-writer.js';
import { codecError } from '../../src/transport/errors.js';
import { decodeMessage, encodeMessageToBuffer } from '../../src/transport/codec.js';
import { FRAME_HEADER_BYTES, readHello, writeHello } from '../../src/transport/frames.js';
import { encodeBatch } from '../../src/wal/frames.js';
import { decodeRecord, encodeRecord, type WalRecord } from '../../src/wal/records.js';
import { writeSnapshotFile } from '../../src/wal/snapshot-file.js';

// Known values in every byte format the package writes: to disk (WAL records, batches, snapshot
// files; the LMDB state's records and its snapshot image), into the replicated log (commands and
// their results, proposal envelopes) and onto the wire (messages, the hello). The strings cover
// ASCII, multi-byte UTF-8, astral characters, lone surrogates and lengths on both sides of the
// codecs' one-byte length headers; the numbers cover varint boundaries and values beyond 32 bits.

const LONG = 'x'.repeat(43) + 'é'.repeat(30);
const ASTRAL = 'order-\u{1F642}-ü';
const LONE = 'lone \ud800 surrogate';

const commands: Record<string, Command> = {
  append: {
    type: 'append',
    id: ['order', 'a:1', '', ASTRAL],
    expectedSequence: 127,
    events: [
      { type: 'Created', sequence: 127, timestamp: -1234.5, data: '{"x":"ü"}' },
      { type: LONG, sequence: 128, timestamp: 1_700_000_000_123, data: LONE },
    ],
    index: { status: 'open', statusTime: 1_700_000_000_123, labels: { region: 'west', gone: '' } },
  },
  'append-empty': { type: 'append', id: ['x'], expectedSequence: 0, events: [], index: undefined },
  'append-labels-only': {
    type: 'append',
    id: ['x'],
    expectedSequence: 3,
    events: [{ type: 'A', sequence: 3, timestamp: 0, data: '1' }],
    index: { statusTime: 5, labels: { a: 'b' } },
  },
  'save-snapshot': { type: 'save-snapshot', id: ['s', 'nap'], data: '{"total":3}', sequence: 2 ** 35, trim: true },
  archive: { type: 'archive', id: ['gone', LONG] },
  lease: { type: 'lease', consumer: 'c-1', at: 1_700_000_000_000, leaseMs: 30_000 },
  renew: { type: 'renew', record: 16_384, lease: 3, consumer: 'c-1', at: 1_700_000_000_500, leaseMs: 200 },
  ack: { type: 'ack', record: 2 ** 40, lease: 1, consumer: 'c-2' },
  release: { type: 'release', record: Number.MAX_SAFE_INTEGER, lease: 99, consumer: '' },
  'open-log': { type: 'open-log', logId: '0b6f1f3e-6c2d-4a59-9d0e-1a2b3c4d5e6f' },
  'claim-projection': { type: 'claim-projection', name: 'orders\u0000view', holder: 'runner-1', at: 1_700_000_000_000, leaseMs: 15_000 },
  'save-projection': {
    type: 'save-projection',
    name: 'p',
    holder: 'h',
    generation: 300,
    checkpoint: '1.abc.17.def',
    lastError: 'boom',
    at: 1_700_000_000_001,
    leaseMs: 1,
  },
  'save-projection-null-error': {
    type: 'save-projection',
    name: 'p',
    holder: 'h',
    generation: 0,
    checkpoint: undefined,
    lastError: null,
    at: -5,
    leaseMs: 9,
  },
  'release-projection': { type: 'release-projection', name: 'p', holder: 'h' },
  'reset-projection': { type: 'reset-projection', name: 'p', checkpoint: '1.abc.0.def' },
};

const results: Record<string, CommandResult> = {
  ok: { type: 'ok' },
  appended: { type: 'appended', firstPosition: 2 ** 33, count: 300 },
  conflict: {
    type: 'conflict',
    actualSequence: 9,
    newEvents: [{ type: 'Noted', sequence: 8, timestamp: 1_700_000_000_123, data: '"ü"', position: 77 }],
  },
  claimed: {
    type: 'claimed',
    held: true,
    record: { name: 'proj', generation: 2, checkpoint: 'cp', holder: 'me', leaseUntil: 1_700_000_015_000, lastError: 'bad' },
  },
  'generation-changed': { type: 'generation-changed' },
  'invalid-sequence': { type: 'invalid-sequence', nextSequence: 12 },
  leased: { type: 'leased', record: 5, lease: 6, expiresAt: 1_700_000_030_000 },
  'nothing-available': { type: 'nothing-available', earliestExpiry: null },
  'nothing-available-until': { type: 'nothing-available', earliestExpiry: 1_700_000_030_000 },
  'lease-lost': { type: 'lease-lost' },
  'invalid-command': { type: 'invalid-command', reason: `undecodable command: ${LONG}` },
};

const entryData = Uint8Array.from([0, 1, 127, 128, 255]);
const walRecords: Record<string, WalRecord> = {
  'entry-command': { type: 'entry', entry: { term: 2 ** 33 + 7, index: 5, kind: 'command', proposalId: ASTRAL, data: entryData } },
  'entry-empty': { type: 'entry', entry: { term: 1, index: 1, kind: 'empty', proposalId: null, data: new Uint8Array(0) } },
  'hard-state': { type: 'hard-state', hardState: { term: 9, vote: 'n2-ü', commit: 2 ** 40 } },
  'hard-state-no-vote': { type: 'hard-state', hardState: { term: 0, vote: null, commit: 0 } },
  reset: { type: 'reset', index: 300, term: 4 },
};

const snapshot: Snapshot = { meta: { index: 2 ** 34, term: 3, voters: ['n1', 'n2', ASTRAL] }, data: entryData };

const messages: Record<string, Message> = {
  vote: { type: 'vote', from: 'n1', to: 'n2', term: 5, lastLogIndex: 128, lastLogTerm: 4 },
  'pre-vote-response': { type: 'pre-vote-response', from: '節点🚀', to: 'узел', term: 6, granted: true },
  append: {
    type: 'append',
    from: 'a',
    to: 'b',
    term: Number.MAX_SAFE_INTEGER,
    prevIndex: 2 ** 40,
    prevTerm: 127,
    entries: [
      { term: 1, index: 1, kind: 'empty', proposalId: null, data: new Uint8Array(0) },
      { term: 1, index: 2, kind: 'command', proposalId: '', data: entryData },
      { term: 1, index: 3, kind: 'command', proposalId: LONE, data: Uint8Array.from([1]) },
      { term: 1, index: 4, kind: 'command', proposalId: LONG, data: Uint8Array.from([2]) },
    ],
    commit: 128,
  },
  'append-response': { type: 'append-response', from: 'b', to: 'a', term: 3, index: 17, rejected: true, hintIndex: 9, hintTerm: 2 },
  heartbeat: { type: 'heartbeat', from: 'a', to: 'b', term: 3, commit: 9, context: null },
  'heartbeat-context': { type: 'heartbeat', from: 'a', to: 'b', term: 3, commit: 9, context: LONE },
  'heartbeat-response': { type: 'heartbeat-response', from: 'b', to: 'a', term: 3, context: '' },
  snapshot: { type: 'snapshot', from: 'a', to: 'b', term: 3, snapshot },
  propose: {
    type: 'propose',
    from: 'b',
    to: 'a',
    term: 3,
    proposals: [
      { id: 'p-1', data: entryData },
      { id: LONG, data: new Uint8Array(0) },
    ],
  },
  'read-index': { type: 'read-index', from: 'b', to: 'a', term: 3, context: 'ctx-ü' },
  'read-index-response': { type: 'read-index-response', from: 'a', to: 'b', term: 3, context: 'ctx', index: 2 ** 50 },
};

/** Every golden case by name: the bytes the current code writes for it. */
export async function goldenCases(): Promise<Record<string, Uint8Array>> {
  const out: Record<string, Uint8Array> = {};
  for (const [name, command] of Object.entries(commands)) out[`state/command/${name}`] = encodeCommand(command);
  for (const [name, result] of Object.entries(results)) out[`state/result/${name}`] = encodeResult(result);
  out['state/record/head'] = encodeHead({
    number: 300,
    firstSequence: 2 ** 33,
    snapshotSequence: 2 ** 33 + 5,
    status: 'open',
    statusTime: 1_700_000_000_123,
    labels: new Map([
      ['c', LONG],
      ['a', 'b'],
    ]),
  });
  out['state/record/head-bare'] = encodeHead({
    number: 1,
    firstSequence: 0,
    snapshotSequence: null,
    status: '',
    statusTime: 0,
    labels: new Map(),
  });
  out['state/record/event'] = encodeEvent({ type: 'Created', sequence: 4, timestamp: 1_700_000_000_123.5, data: ASTRAL }, 2 ** 36);
  out['state/record/text'] = encodeText(LONE);
  out['state/record/archive'] = encodeArchiveRecord('encoded\u0000id', '{"s":1}', 3, [
    { type: 'A', sequence: 3, timestamp: 10, data: '1', position: 200 },
    { type: LONG, sequence: 4, timestamp: -0, data: '', position: 201 },
  ]);
  out['state/record/lease'] = encodeLease({ leasedUntil: 1_700_000_030_000, lease: 129, holder: 'consumer-ü' });
  out['state/record/u64'] = encodeU64(2 ** 52 + 1);
  out['state/record/projection'] = encodeProjection({ generation: 1, leaseUntil: 0, holder: undefined, checkpoint: 'cp', lastError: LONG });
  out['state/image'] = await stateImage();
  for (const [name, record] of Object.entries(walRecords)) out[`wal/record/${name}`] = encodeRecord(record);
  out['wal/batch'] = encodeBatch(Object.values(walRecords).map((record) => encodeRecord(record))).bytes;
  out['wal/snapshot-file'] = await snapshotFile();
  for (const [name, message] of Object.entries(messages)) out[`transport/message/${name}`] = encodeMessageToBuffer(message);
  const hello = new ByteWriter(64, codecError);
  writeHello(hello, { channel: 'snapshot', clusterId: 'timebox-ü', from: 'n1', to: LONE }, 1 << 20);
  out['transport/hello'] = hello.take();
  out['node/envelope'] = wrapProposals('env-1', [
    { id: 'p-1', data: entryData },
    { id: ASTRAL, data: new Uint8Array(0) },
  ]).data;
  return out;
}

/** A state after a few commands of every kind, exported as a snapshot image. */
async function stateImage(): Promise<Uint8Array> {
  const dir = mkdtempSync(join(tmpdir(), 'timebox-raft-golden-'));
  const state = MaterializedState.open(dir);
  try {
    const applied = [commands['open-log']!, commands.append!, commands['append-labels-only']!, commands['claim-projection']!];
    await state.apply(
      applied.map((command, i) => ({ index: i + 1, kind: 'command', proposalId: `p${i + 1}`, data: encodeCommand(command) })),
    );
    await state.apply([{ index: 5, kind: 'command', proposalId: 'p5', data: encodeCommand({ type: 'archive', id: ['x'] }) }]);
    return await state.exportSnapshot();
  } finally {
    await state.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function snapshotFile(): Promise<Uint8Array> {
  const dir = mkdtempSync(join(tmpdir(), 'timebox-raft-golden-'));
  try {
    await writeSnapshotFile(dir, snapshot);
    const [name] = readdirSync(dir);
    return readFileSync(join(dir, name!));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * For the cases that have a decoder: decodes the golden bytes and encodes the result again, so a
 * decoder that misreads the old bytes shows up as a difference.
 */
export function reencode(name: string, bytes: Uint8Array): Uint8Array | undefined {
  const buffer = Buffer.from(bytes);
  const [layer, kind] = name.split('/');
  if (layer === 'state' && kind === 'command') return encodeCommand(decodeCommand(bytes));
  if (layer === 'state' && kind === 'result') return encodeResult(decodeResult(bytes));
  if (name === 'state/record/head' || name === 'state/record/head-bare') return encodeHead(decodeHead(bytes));
  if (name === 'state/record/event') {
    const event = decodeEvent(4, bytes);
    return encodeEvent(event, event.position);
  }
  if (name === 'state/record/text') return encodeText(decodeText(bytes));
  if (name === 'state/record/lease') return encodeLease(decodeLease(bytes));
  if (name === 'state/record/u64') return encodeU64(decodeU64(bytes));
  if (name === 'state/record/projection') return encodeProjection(decodeProjection(bytes));
  if (layer === 'wal' && kind === 'record') return encodeRecord(decodeRecord(buffer));
  if (layer === 'transport' && kind === 'message') return encodeMessageToBuffer(decodeMessage(buffer));
  if (name === 'transport/hello') {
    const hello = readHello(buffer.subarray(FRAME_HEADER_BYTES), { clusterId: 'timebox-ü', localId: LONE });
    const out = new ByteWriter(64, codecError);
    writeHello(out, hello, 1 << 20);
    return out.take();
  }
  if (name === 'node/envelope') {
    const carried = unwrapEnvelopes([{ index: 1, kind: 'command', proposalId: 'batch/env-1', data: bytes }]);
    return wrapProposals(
      'env-1',
      carried.map((entry) => ({ id: entry.proposalId!, data: entry.data })),
    ).data;
  }
  return undefined;
}
