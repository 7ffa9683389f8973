/* eslint-disable @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-return --
   this suite passes wrongly typed values (cast to `Loose`) into the API on purpose, to check they are rejected at run time */
import { describe, expect, it } from 'vitest';
import type { Backend } from '../backend.js';
import { resolveConfig } from '../config.js';
import {
  ConfigError,
  InvalidAggregateIdError,
  InvalidArgumentError,
  InvalidEventError,
  InvalidPayloadError,
  InvalidSequenceError,
  TimeboxError,
} from '../errors.js';
import type { NewEvent } from '../event.js';
import { createExecutor } from '../executor.js';
import type { AggregateId } from '../id.js';
import type { Index } from '../indexer.js';
import { createStore, type Store } from '../store.js';
import type { Harness } from './harness.js';
import { fingerprint, makeEvents, payloadIndexer } from './util.js';

type Loose = any; // eslint-disable-line @typescript-eslint/no-explicit-any -- bad input on purpose

const BAD_IDS: [string, unknown][] = [
  ['a string', 'order-1'],
  ['undefined', undefined],
  ['null', null],
  ['a number', 42],
  ['an object', { id: 'x' }],
  ['an empty array', []],
  ['a number part', ['order', 1]],
  ['a null part', ['order', null]],
  ['an undefined part', [undefined]],
  ['an object part', [{}]],
  ['a lone high surrogate in a part', ['order', 'a\uD800b']],
  ['a lone low surrogate in a part', ['\uDC00']],
];

const BAD_SEQUENCES: [string, unknown][] = [
  ['negative', -1],
  ['fractional', 1.5],
  ['NaN', NaN],
  ['Infinity', Infinity],
  ['unsafe', 2 ** 53],
  ['a string', '1'],
  ['undefined', undefined],
];

function cyclic(): unknown {
  const value: Record<string, unknown> = { name: 'loop' };
  value.self = value;
  return value;
}

const BAD_PAYLOADS: [string, unknown][] = [
  ['a BigInt', 10n],
  ['a nested BigInt', { amount: 10n }],
  ['a cycle', cyclic()],
  ['a function', () => 1],
  ['a nested function', { f: () => 1 }],
  ['undefined', undefined],
  ['a symbol', Symbol('s')],
  ['NaN', { n: NaN }],
];

const BAD_EVENTS: [string, unknown, new (...args: never[]) => TimeboxError][] = [
  ['null', null, InvalidEventError],
  ['a string', 'Created', InvalidEventError],
  ['an empty type', { type: '', data: {} }, InvalidEventError],
  ['a missing type', { data: {} }, InvalidEventError],
  ['a numeric type', { type: 7, data: {} }, InvalidEventError],
  ['a type with a lone surrogate', { type: 'Created\uD83D', data: {} }, InvalidEventError],
  ['an invalid Date', { type: 'A', data: {}, timestamp: new Date('nope') }, InvalidEventError],
  ['a string timestamp', { type: 'A', data: {}, timestamp: '2024-01-01' }, InvalidEventError],
  ...BAD_PAYLOADS.map(([name, data]): [string, unknown, new (...args: never[]) => TimeboxError] => [
    `a payload that is ${name}`,
    { type: 'A', data },
    InvalidPayloadError,
  ]),
];

/** A store with some data, and a way to show it is unchanged. */
async function seeded(h: Harness): Promise<{ store: Store; unchanged: () => Promise<void> }> {
  const store = await h.store({ indexer: payloadIndexer, trimEvents: true });
  const ids: AggregateId[] = [
    ['seed', '1'],
    ['seed', '2'],
  ];
  await store.appendEvents(ids[0]!, 0, [{ type: 'Set', data: { status: 'open', labels: { tier: 'gold' } } }, ...makeEvents(2)]);
  await store.appendEvents(ids[1]!, 0, makeEvents(3));
  await store.putSnapshot(ids[1]!, { upTo: 2 }, 2);
  const before = await fingerprint(store, [...ids, ['victim']], ['tier'], ['open']);
  return {
    store,
    unchanged: async () => expect(await fingerprint(store, [...ids, ['victim']], ['tier'], ['open'])).toEqual(before),
  };
}

export function badInputSuite(h: Harness): void {
  describe('bad input', () => {
    it('rejects bad aggregate IDs on every entry point', async () => {
      const { store, unchanged } = await seeded(h);
      const executor = createExecutor(store, { initialState: () => 0, appliers: {} });
      for (const [name, id] of BAD_IDS) {
        const calls: [string, () => Promise<unknown>][] = [
          ['appendEvents', () => store.appendEvents(id as Loose, 0, makeEvents(1))],
          ['getEvents', () => store.getEvents(id as Loose)],
          ['getSnapshot', () => store.getSnapshot(id as Loose)],
          ['putSnapshot', () => store.putSnapshot(id as Loose, {}, 0)],
          ['getAggregateStatus', () => store.getAggregateStatus(id as Loose)],
          ['exec', () => executor.exec(id as Loose, (_s, aggregator) => aggregator.raise('A', {}))],
          ['get', () => executor.get(id as Loose)],
          ['saveSnapshot', () => executor.saveSnapshot(id as Loose)],
        ];
        if (h.target.capabilities.archive) calls.push(['archive', () => store.archive(id as Loose)]);
        for (const [call, run] of calls) {
          const error = await run().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(error, `${call} with ${name}`).toBeInstanceOf(InvalidAggregateIdError);
          expect((error as Error).message).toMatch(/aggregate ID/);
        }
      }
      await unchanged();
    });

    it('rejects bad listing prefixes', async () => {
      const { store, unchanged } = await seeded(h);
      for (const prefix of ['seed', 42, null, [1], ['seed', undefined], ['seed', '\uDFFF']]) {
        await expect(store.listAggregates(prefix as Loose), String(prefix)).rejects.toBeInstanceOf(InvalidAggregateIdError);
      }
      await unchanged();
    });

    it('rejects bad sequences', async () => {
      const { store, unchanged } = await seeded(h);
      for (const [name, sequence] of BAD_SEQUENCES) {
        const append = await store.appendEvents(['victim'], sequence as Loose, makeEvents(1)).catch((e: unknown) => e);
        expect(append, `appendEvents with ${name}`).toBeInstanceOf(InvalidSequenceError);
        expect((append as Error).message).toMatch(/expectedSequence/);
        if (sequence !== undefined) {
          await expect(store.getEvents(['seed', '1'], sequence as Loose), `getEvents with ${name}`).rejects.toBeInstanceOf(
            InvalidSequenceError,
          );
        }
        await expect(store.putSnapshot(['seed', '1'], { bad: true }, sequence as Loose), `putSnapshot with ${name}`).rejects.toBeInstanceOf(
          InvalidSequenceError,
        );
      }
      await unchanged();
    });

    it('rejects bad events and stores none of the batch', async () => {
      const { store, unchanged } = await seeded(h);
      for (const [name, event, type] of BAD_EVENTS) {
        for (const id of [['victim'], ['seed', '1']] as AggregateId[]) {
          const next = (await store.getSnapshot(id)).nextSequence + (await store.getSnapshot(id)).events.length;
          const batch = [{ type: 'Fine', data: { ok: true } }, event] as NewEvent[];
          const error = await store.appendEvents(id, next, batch).catch((e: unknown) => e);
          expect(error, `${name} on ${JSON.stringify(id)}`).toBeInstanceOf(type);
          expect((error as Error).message).toMatch(/event|payload/);
        }
      }
      await expect(store.appendEvents(['victim'], 0, 'not events' as Loose)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(store.appendEvents(['victim'], 0, undefined as Loose)).rejects.toBeInstanceOf(InvalidArgumentError);
      await unchanged();
    });

    it('rejects bad raised events inside exec and stores nothing', async () => {
      const { store, unchanged } = await seeded(h);
      const executor = createExecutor<number, Record<string, unknown>>(store, { initialState: () => 0, appliers: {} });
      for (const [name, data] of BAD_PAYLOADS) {
        const error = await executor
          .exec(['victim'], (_s, aggregator) => {
            aggregator.raise('Fine', { ok: true });
            aggregator.raise('Bad', data);
          })
          .catch((e: unknown) => e);
        expect(error, name).toBeInstanceOf(InvalidPayloadError);
      }
      await expect(executor.exec(['victim'], (_s, aggregator) => aggregator.raise('', {}))).rejects.toBeInstanceOf(InvalidEventError);
      await expect(executor.exec(['victim'], 'not a command' as Loose)).rejects.toBeInstanceOf(InvalidArgumentError);
      await unchanged();
    });

    it('rejects snapshot values JSON cannot carry', async () => {
      const { store, unchanged } = await seeded(h);
      for (const [name, value] of BAD_PAYLOADS) {
        const error = await store.putSnapshot(['seed', '1'], value, 3).catch((e: unknown) => e);
        expect(error, name).toBeInstanceOf(InvalidPayloadError);
        expect((error as Error).message).toMatch(/snapshot/);
      }
      await unchanged();
    });

    it('rejects bad index query arguments', async () => {
      const { store, unchanged } = await seeded(h);
      await expect(store.listAggregatesByStatus(7 as Loose)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(store.listAggregatesByStatus(undefined as Loose)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(store.listAggregatesByLabel('', 'x')).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(store.listAggregatesByLabel(1 as Loose, 'x')).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(store.listAggregatesByLabel('tier', null as Loose)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(store.listLabelValues('')).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(store.listLabelValues({} as Loose)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(store.listAggregatesByLabel('tier', 'gold\uD800')).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(store.listAggregatesByStatus('\uDC00open')).rejects.toBeInstanceOf(InvalidArgumentError);
      await unchanged();
    });

    it('rejects an indexer result of the wrong shape and stores nothing', async () => {
      const namespace = await h.namespace();
      const store = await h.store({ indexer: (() => 'nope') as Loose }, namespace);
      await expect(store.appendEvents(['i'], 0, makeEvents(1))).rejects.toBeInstanceOf(InvalidArgumentError);
      const labelled = await h.store({ indexer: () => [{ labels: { tier: 5 } }] as Loose }, namespace);
      await expect(labelled.appendEvents(['i'], 0, makeEvents(1))).rejects.toBeInstanceOf(InvalidArgumentError);
      // Text a UTF-8 store would silently change is refused, whichever index field holds it.
      const surrogateIndexes: Index[] = [
        { status: 'open\uD800' },
        { labels: { 'tier\uDC00': 'gold' } },
        { labels: { tier: '\uD83Dgold' } },
      ];
      for (const bad of surrogateIndexes) {
        const surrogate = await h.store({ indexer: () => [bad] }, namespace);
        const error = await surrogate.appendEvents(['i'], 0, makeEvents(1)).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error, JSON.stringify(bad)).toBeInstanceOf(InvalidArgumentError);
        expect((error as Error).message).toMatch(/lone UTF-16 surrogate/);
      }
      await expect(store.getEvents(['i'])).resolves.toEqual([]);
      await expect(store.listAggregates()).resolves.toEqual([]);
    });

    it('rejects invalid config values with ConfigError naming the field', async () => {
      const namespace = await h.namespace();
      const cases: [string, unknown][] = [
        ['snapshotRatio', -0.5],
        ['snapshotRatio', 'big'],
        ['maxRetries', 0],
        ['maxRetries', 2.5],
        ['cacheSize', 0],
        ['cacheSize', -3],
        ['trimEvents', 'yes'],
        ['indexer', 'not a function'],
      ];
      const backend: Backend = await namespace.connect();
      try {
        for (const [field, value] of cases) {
          const error = (() => {
            try {
              createStore(backend, { [field]: value } as Loose);
            } catch (e) {
              return e;
            }
            return undefined;
          })();
          expect(error, `${field}=${String(value)}`).toBeInstanceOf(ConfigError);
          expect((error as ConfigError).field).toBe(field);
          expect((error as Error).message).toContain(field);
        }
        expect(resolveConfig({})).toMatchObject({ trimEvents: false, snapshotRatio: 1, maxRetries: 16, cacheSize: 128 });
      } finally {
        await backend.close();
      }
    });

    it('treats IDs, labels and values as data, never as patterns or code', async () => {
      const store = await h.store({ indexer: payloadIndexer });
      const hostile = ["'; DROP TABLE timebox_events; --", '*', '$$ || 1 $$', 'redis.call("FLUSHALL")', '..\\..\\x', '%s%n', '{shard}'];
      for (const [i, text] of hostile.entries()) {
        await store.appendEvents([text, text], 0, [{ type: 'Set', data: { status: text, labels: { [text]: text } } }]);
        await expect(store.getEvents([text, text]), text).resolves.toHaveLength(1);
        await expect(store.listAggregatesByLabel(text, text)).resolves.toEqual([[text, text]]);
        await expect(store.listLabelValues(text)).resolves.toEqual([text]);
        await expect(store.listAggregatesByStatus(text)).resolves.toHaveLength(1);
        await expect(store.listAggregates([text])).resolves.toEqual([[text, text]]);
        expect(await store.listAggregates()).toHaveLength(i + 1);
      }
      await expect(store.listAggregatesByLabel('*', '?')).resolves.toEqual([]);
    });
  });
}
