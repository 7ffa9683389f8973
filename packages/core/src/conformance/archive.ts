import { describe, expect, it } from 'vitest';
import { ArchiveHandlerMissingError, ArchivingDisabledError, VersionConflictError } from '../errors.js';
import type { Index } from '../indexer.js';
import type { ArchiveHandler, ArchiveRecord, Store } from '../store.js';
import type { Harness } from './harness.js';
import { makeEvents, payloadIndexer, sleep, sortIds, T0 } from './util.js';

type ArchiveEvents = { Set: Index; Counted: { n: number } };

/** Consumes one record, failing the test if none arrives within `ms`. */
async function consumeOne(store: Store<ArchiveEvents>, handler: ArchiveHandler, ms = 5000): Promise<void> {
  await store.consumeArchive(handler, { signal: AbortSignal.timeout(ms) });
}

/**
 * `'nothing'` when no record arrives within `ms` (the call rejects with the abort reason, handler
 * unused); otherwise what happened instead, so a failing assertion says which it was.
 */
async function nothingWithin(store: Store<ArchiveEvents>, ms: number): Promise<string> {
  const received: string[] = [];
  const error = await store
    .consumeArchive(
      (record) => {
        received.push(JSON.stringify(record.aggregateId));
      },
      { signal: AbortSignal.timeout(ms) },
    )
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  if (received.length > 0) return `a record for ${received.join(', ')} within ${ms} ms`;
  if (error instanceof DOMException && error.name === 'TimeoutError') return 'nothing';
  if (error === undefined) return 'consumeArchive resolved without a record';
  if (error instanceof Error) return `consumeArchive rejected with ${error.name}: ${error.message}`;
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- describes any non-Error rejection value as is
  return `consumeArchive rejected with ${String(error)}`;
}

export function archiveSuite(h: Harness): void {
  if (!h.target.capabilities.archive) {
    describe('archiving (not supported)', () => {
      it('rejects archive and consumeArchive with ArchivingDisabledError', async () => {
        const store = await h.store();
        await expect(store.archive(['a'])).rejects.toBeInstanceOf(ArchivingDisabledError);
        await expect(store.consumeArchive(async () => undefined)).rejects.toBeInstanceOf(ArchivingDisabledError);
      });
    });
    return;
  }

  describe('archiving', () => {
    it('moves snapshot and events into the archive and clears live records and index', async () => {
      const store = await h.store<ArchiveEvents>({ indexer: payloadIndexer });
      await store.appendEvents(['order', 'a:1'], 0, [
        { type: 'Set', data: { status: 'open', labels: { region: 'west' } }, timestamp: new Date(T0) },
        ...makeEvents(2, 1).map((event) => ({ ...event, type: 'Counted' as const })),
      ]);
      await store.putSnapshot(['order', 'a:1'], { upTo: 2 }, 2);
      await store.appendEvents(['keep'], 0, [
        { type: 'Set', data: { status: 'open', labels: { region: 'west' } }, timestamp: new Date(T0) },
      ]);

      await store.archive(['order', 'a:1']);

      await expect(store.getEvents(['order', 'a:1'])).resolves.toEqual([]);
      expect((await store.getSnapshot(['order', 'a:1'])).value).toBeUndefined();
      await expect(store.listAggregates()).resolves.toEqual([['keep']]);
      await expect(store.getAggregateStatus(['order', 'a:1'])).resolves.toBe('');
      await expect(store.listAggregatesByStatus('open')).resolves.toEqual([{ id: ['keep'], timestamp: new Date(T0) }]);
      await expect(store.listAggregatesByLabel('region', 'west')).resolves.toEqual([['keep']]);

      let received: ArchiveRecord | undefined;
      await consumeOne(store, (record) => {
        received = record;
      });
      expect(received).toBeDefined();
      expect(typeof received!.streamId).toBe('string');
      expect(received!.aggregateId).toEqual(['order', 'a:1']);
      expect(JSON.parse(received!.snapshotData!)).toEqual({ upTo: 2 });
      expect(received!.snapshotSequence).toBe(2);
      expect(received!.events.map((event) => event.sequence)).toEqual([0, 1, 2]);
      expect(received!.events.map((event) => event.type)).toEqual(['Set', 'Counted', 'Counted']);
      expect(received!.events[1]!.payload).toEqual({ n: 1 });
      expect(received!.events[0]!.aggregateId).toEqual(['order', 'a:1']);
      expect(await nothingWithin(store, 100)).toBe('nothing');
    });

    it('archives an aggregate in every state, after which no index query or listing shows it', async () => {
      const store = await h.store<ArchiveEvents>({ indexer: payloadIndexer, trimEvents: true });
      const states = ['events', 'trimmed', 'snapshot-only'] as const;
      const setAt = (state: string, at: number) => ({
        type: 'Set' as const,
        data: { status: 'open', labels: { kind: state, shared: 'yes', [`only-${state}`]: 'here' } },
        timestamp: new Date(T0 + at),
      });
      const counted = (n: number, start: number) => makeEvents(n, start).map((event) => ({ ...event, type: 'Counted' as const }));
      await store.appendEvents(['st', 'keep'], 0, [setAt('keep', 0)]);
      for (const [i, state] of states.entries()) await store.appendEvents(['st', state], 0, [setAt(state, i + 1), ...counted(2, 1)]);
      await store.putSnapshot(['st', 'trimmed'], { upTo: 2 }, 2);
      await store.putSnapshot(['st', 'snapshot-only'], { upTo: 3 }, 3);
      // Each is in the state it is named for, and indexed, before it is archived.
      expect((await store.getEvents(['st', 'events'])).map((event) => event.sequence)).toEqual([0, 1, 2]);
      expect((await store.getEvents(['st', 'trimmed'])).map((event) => event.sequence)).toEqual([2]);
      expect(await store.getEvents(['st', 'snapshot-only'])).toEqual([]);
      expect(await store.listAggregatesByStatus('open')).toHaveLength(4);
      expect(await store.listLabelValues('kind')).toEqual(['events', 'keep', 'snapshot-only', 'trimmed']);

      for (const state of states) await store.archive(['st', state]);

      const keep = { id: ['st', 'keep'], timestamp: new Date(T0) };
      await expect(store.listAggregatesByStatus('open')).resolves.toEqual([keep]);
      await expect(store.listAggregatesByLabel('shared', 'yes')).resolves.toEqual([['st', 'keep']]);
      await expect(store.listLabelValues('kind')).resolves.toEqual(['keep']);
      await expect(store.listAggregates(['st'])).resolves.toEqual([['st', 'keep']]);
      await expect(store.listAggregates()).resolves.toEqual([['st', 'keep']]);
      for (const state of states) {
        await expect(store.getAggregateStatus(['st', state]), state).resolves.toBe('');
        await expect(store.listAggregatesByLabel('kind', state), state).resolves.toEqual([]);
        await expect(store.listLabelValues(`only-${state}`), state).resolves.toEqual([]);
        await expect(store.getEvents(['st', state]), state).resolves.toEqual([]);
        expect((await store.getSnapshot(['st', state])).value, state).toBeUndefined();
      }
      const archived: string[] = [];
      for (let k = 0; k < states.length; k++) {
        await consumeOne(store, (record) => {
          archived.push(record.aggregateId[1]!);
        });
      }
      expect(archived.sort()).toEqual(['events', 'snapshot-only', 'trimmed']);

      // A new life is indexed afresh, with nothing of the archived one.
      const next = (await store.getSnapshot(['st', 'snapshot-only'])).nextSequence;
      await store.appendEvents(['st', 'snapshot-only'], next, [
        { type: 'Set', data: { status: 'reborn', labels: { kind: 'reborn' } }, timestamp: new Date(T0 + 9) },
      ]);
      await expect(store.listAggregatesByStatus('open')).resolves.toEqual([keep]);
      await expect(store.listAggregatesByStatus('reborn')).resolves.toEqual([{ id: ['st', 'snapshot-only'], timestamp: new Date(T0 + 9) }]);
      await expect(store.listLabelValues('kind')).resolves.toEqual(['keep', 'reborn']);
      await expect(store.listLabelValues('shared')).resolves.toEqual(['yes']);
      await expect(store.listLabelValues('only-snapshot-only')).resolves.toEqual([]);
      expect(sortIds(await store.listAggregates(['st']))).toEqual([
        ['st', 'keep'],
        ['st', 'snapshot-only'],
      ]);
    });

    it('starts a new life after an archived one, numbered past it: no sequence is reused', async () => {
      const store = await h.store<ArchiveEvents>();
      const counted = (n: number) => makeEvents(n).map((event) => ({ ...event, type: 'Counted' as const }));
      await store.appendEvents(['again'], 0, counted(3));
      await store.archive(['again']);
      const conflict = await store.appendEvents(['again'], 0, counted(1)).catch((e: unknown) => e);
      expect(conflict).toBeInstanceOf(VersionConflictError);
      const next = (conflict as VersionConflictError).actualSequence;
      expect(next).toBeGreaterThan(3);
      expect((await store.getSnapshot(['again'])).nextSequence).toBe(next);
      await store.appendEvents(['again'], next, counted(1));
      expect((await store.getEvents(['again'])).map((event) => event.sequence)).toEqual([next]);
    });

    it('archiving an unknown aggregate succeeds and archives nothing', async () => {
      const store = await h.store<ArchiveEvents>();
      await expect(store.archive(['ghost'])).resolves.toBeUndefined();
      expect(await nothingWithin(store, 150)).toBe('nothing');
    });

    it('redelivers a record whose handler threw', async () => {
      const store = await h.store<ArchiveEvents>();
      await store.appendEvents(
        ['r'],
        0,
        makeEvents(1).map((event) => ({ ...event, type: 'Counted' as const })),
      );
      await store.archive(['r']);
      const failure = new Error('handler failed');
      await expect(
        consumeOne(store, () => {
          throw failure;
        }),
      ).rejects.toBe(failure);
      const seen: string[][] = [];
      await consumeOne(store, (record) => {
        seen.push([...record.aggregateId]);
      });
      expect(seen).toEqual([['r']]);
      expect(await nothingWithin(store, 100)).toBe('nothing');
    });

    it('an aborted signal rejects with its reason and calls nothing', async () => {
      const store = await h.store<ArchiveEvents>();
      await store.appendEvents(
        ['r'],
        0,
        makeEvents(1).map((event) => ({ ...event, type: 'Counted' as const })),
      );
      await store.archive(['r']);
      const reason = new Error('stop now');
      let called = false;
      await expect(
        store.consumeArchive(
          () => {
            called = true;
          },
          { signal: AbortSignal.abort(reason) },
        ),
      ).rejects.toBe(reason);
      expect(called).toBe(false);
      let delivered = 0;
      await consumeOne(store, () => {
        delivered++;
      });
      expect(delivered).toBe(1);
    });

    it('aborting stops a consumer that is waiting', async () => {
      const store = await h.store<ArchiveEvents>();
      const controller = new AbortController();
      const reason = new Error('shutting down');
      const waiting = store.consumeArchive(() => undefined, { signal: controller.signal });
      await sleep(50);
      controller.abort(reason);
      await expect(waiting).rejects.toBe(reason);
    });

    it('wakes a waiting consumer when a record arrives', async () => {
      const [consumerStore, writerStore] = await h.stores<ArchiveEvents>(2);
      const received: string[][] = [];
      const waiting = consumeOne(consumerStore!, (record) => {
        received.push([...record.aggregateId]);
      });
      await sleep(50);
      await writerStore!.appendEvents(
        ['late'],
        0,
        makeEvents(1).map((event) => ({ ...event, type: 'Counted' as const })),
      );
      await writerStore!.archive(['late']);
      await waiting;
      expect(received).toEqual([['late']]);
    });

    it('rejects a missing handler with ArchiveHandlerMissingError', async () => {
      const store = await h.store<ArchiveEvents>();
      await expect(store.consumeArchive(undefined as unknown as ArchiveHandler)).rejects.toBeInstanceOf(ArchiveHandlerMissingError);
      await expect(store.consumeArchive('handler' as unknown as ArchiveHandler)).rejects.toBeInstanceOf(ArchiveHandlerMissingError);
    });

    it('gives each record to one consumer at a time', async () => {
      const stores = await h.stores<ArchiveEvents>(4);
      const writer = stores[0]!;
      const count = 12;
      for (let i = 0; i < count; i++) {
        await writer.appendEvents(
          ['job', String(i)],
          0,
          makeEvents(1).map((event) => ({ ...event, type: 'Counted' as const })),
        );
        await writer.archive(['job', String(i)]);
      }
      const holding = new Set<string>();
      const handled: string[] = [];
      let overlap = false;
      const consumer = async (store: Store<ArchiveEvents>) => {
        for (;;) {
          if (handled.length >= count) return;
          const done = await store
            .consumeArchive(
              async (record) => {
                const key = record.aggregateId.join('/');
                if (holding.has(key)) overlap = true;
                holding.add(key);
                await sleep(5);
                holding.delete(key);
                handled.push(key);
              },
              { signal: AbortSignal.timeout(400) },
            )
            .then(
              () => false,
              () => true,
            );
          if (done) return;
        }
      };
      await Promise.all(stores.map((store) => consumer(store)));
      expect(overlap).toBe(false);
      expect([...handled].sort()).toEqual(Array.from({ length: count }, (_, i) => `job/${i}`).sort());
    });

    const redeliveryMs = h.target.capabilities.archiveRedeliveryMs;
    it.skipIf(redeliveryMs === undefined)('redelivers a record held by a consumer that died', async () => {
      const [first, second] = await h.stores<ArchiveEvents>(2);
      await first!.appendEvents(
        ['stuck'],
        0,
        makeEvents(1).map((event) => ({ ...event, type: 'Counted' as const })),
      );
      await first!.archive(['stuck']);
      let taken!: () => void;
      const tookIt = new Promise<void>((resolve) => (taken = resolve));
      // The first consumer takes the record and its process dies mid-handler: the handler never
      // finishes and the store's connection goes away. (A live consumer keeps renewing its hold on
      // a record however long its handler takes, so only the close makes it give the record up.)
      void first!
        .consumeArchive(() => {
          taken();
          return new Promise<void>(() => undefined);
        })
        .catch(() => undefined);
      await tookIt;
      await first!.close();
      expect(await nothingWithin(second!, Math.max(20, redeliveryMs! / 4))).toBe('nothing');
      const received: string[][] = [];
      await consumeOne(
        second!,
        (record) => {
          received.push([...record.aggregateId]);
        },
        redeliveryMs! * 4 + 2000,
      );
      expect(received).toEqual([['stuck']]);
    });

    it.skipIf(redeliveryMs === undefined)('keeps a record with a live consumer whose handler outlasts the redelivery timeout', async () => {
      const [first, second] = await h.stores<ArchiveEvents>(2);
      await first!.appendEvents(
        ['slow'],
        0,
        makeEvents(1).map((event) => ({ ...event, type: 'Counted' as const })),
      );
      await first!.archive(['slow']);
      const handlingMs = redeliveryMs! * 3;
      let taken!: () => void;
      const tookIt = new Promise<void>((resolve) => (taken = resolve));
      const firstDone = consumeOne(
        first!,
        async () => {
          taken();
          await sleep(handlingMs);
        },
        handlingMs + 10_000,
      );
      await tookIt;
      // The second consumer waits the whole time the first one handles the record, and a bit more.
      const stolen: string[][] = [];
      const secondDone = second!
        .consumeArchive(
          (record) => {
            stolen.push([...record.aggregateId]);
          },
          { signal: AbortSignal.timeout(handlingMs + redeliveryMs!) },
        )
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      await firstDone;
      const secondOutcome = await secondDone;
      expect(stolen).toEqual([]);
      expect(secondOutcome).toBeInstanceOf(DOMException);
      expect((secondOutcome as DOMException).name).toBe('TimeoutError');
      // Acknowledged by the first consumer: gone for good, even after another timeout.
      expect(await nothingWithin(second!, redeliveryMs! * 2)).toBe('nothing');
    });
  });
}
