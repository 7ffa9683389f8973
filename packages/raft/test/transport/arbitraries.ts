import fc from 'fast-check';
import type { Entry, Message } from '../../src/consensus/types.js';

/** Any JS string: well-formed Unicode (astral too) or arbitrary UTF-16 with lone surrogates. */
export const anyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)), maxLength: 12 }),
  fc.string({ unit: 'grapheme-ascii', minLength: 22, maxLength: 80 }),
);
const nodeId = fc.oneof(
  fc.constantFrom('n1', 'n2', 'узел-3', '節点🚀'),
  anyString.filter((id) => id !== ''),
);
const counter = fc.oneof(fc.nat({ max: 300 }), fc.nat(), fc.maxSafeNat());
const bytes = fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ maxLength: 300 }));

const entry: fc.Arbitrary<Entry> = fc.oneof(
  fc.record({
    term: counter,
    index: counter,
    kind: fc.constant('command' as const),
    proposalId: fc.option(anyString, { nil: null }),
    data: bytes,
  }),
  fc.record({ term: counter, index: counter, kind: fc.constant('empty' as const), proposalId: fc.constant(null), data: bytes }),
  fc.record({
    term: counter,
    index: counter,
    kind: fc.constant('config' as const),
    proposalId: fc.option(anyString, { nil: null }),
    data: bytes,
  }),
);

const envelope = { from: nodeId, to: nodeId, term: counter };

/** Every variant of the consensus `Message` union, with edge values (null vote fields, empty arrays and data). */
export const message: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ type: fc.constantFrom('vote' as const, 'pre-vote' as const), ...envelope, lastLogIndex: counter, lastLogTerm: counter }),
  fc.record({
    type: fc.constant('vote' as const),
    ...envelope,
    lastLogIndex: counter,
    lastLogTerm: counter,
    transfer: fc.constant(true),
  }),
  fc.record({ type: fc.constant('timeout-now' as const), ...envelope }),
  fc.record({ type: fc.constantFrom('vote-response' as const, 'pre-vote-response' as const), ...envelope, granted: fc.boolean() }),
  fc.record({
    type: fc.constant('append' as const),
    ...envelope,
    prevIndex: counter,
    prevTerm: counter,
    entries: fc.array(entry, { maxLength: 8 }),
    commit: counter,
  }),
  fc.record({
    type: fc.constant('append-response' as const),
    ...envelope,
    index: counter,
    rejected: fc.boolean(),
    hintIndex: counter,
    hintTerm: counter,
  }),
  fc.record({ type: fc.constant('heartbeat' as const), ...envelope, commit: counter, context: fc.option(anyString, { nil: null }) }),
  fc.record({ type: fc.constant('heartbeat-response' as const), ...envelope, context: fc.option(anyString, { nil: null }) }),
  fc.record({
    type: fc.constant('snapshot' as const),
    ...envelope,
    snapshot: fc.record({ meta: fc.record({ index: counter, term: counter, voters: fc.array(nodeId, { maxLength: 5 }) }), data: bytes }),
  }),
  fc.record({
    type: fc.constant('snapshot' as const),
    ...envelope,
    snapshot: fc.record({
      meta: fc.record({
        index: counter,
        term: counter,
        voters: fc.array(nodeId, { maxLength: 5 }),
        learners: fc.array(nodeId, { minLength: 1, maxLength: 3 }),
        addresses: fc.dictionary(nodeId, anyString, { maxKeys: 3 }),
      }),
      data: bytes,
    }),
  }),
  fc.record({
    type: fc.constant('propose' as const),
    ...envelope,
    proposals: fc.array(fc.record({ id: anyString, data: bytes }), { maxLength: 5 }),
  }),
  fc.record({ type: fc.constant('read-index' as const), ...envelope, context: anyString }),
  fc.record({ type: fc.constant('read-index-response' as const), ...envelope, context: anyString, index: counter }),
);
