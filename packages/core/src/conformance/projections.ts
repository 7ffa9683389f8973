import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, InvalidCheckpointError, ProjectionError } from '../errors.js';
import type { Event } from '../event.js';
import { makeDispatcher } from '../event-handlers.js';
import type { Projection, ProjectionContext } from '../projection.js';
import type { Store } from '../store.js';
import type { Harness } from './harness.js';
import { makeEvents, projectionStoreOf } from './util.js';

type ShopEvents = { Placed: { total: number }; Shipped: { carrier: string }; Noted: { text: string } };

function keyOf(event: Event): string {
  return `${JSON.stringify(event.aggregateId)}#${event.sequence}`;
}

/** Appends `orders` orders of three events each, sequentially. */
async function placeOrders(store: Store<ShopEvents>, orders: number, from = 0): Promise<string[]> {
  const keys: string[] = [];
  for (let i = from; i < from + orders; i++) {
    const events = await store.appendEvents(['order', String(i)], 0, [
      { type: 'Placed', data: { total: i } },
      { type: 'Noted', data: { text: `n${i}` } },
      { type: 'Shipped', data: { carrier: i % 2 === 0 ? 'ups' : 'dhl' } },
    ]);
    keys.push(...events.map(keyOf));
  }
  return keys;
}

/** A signal that aborts after `ms`, so a wait that never ends fails the test with a clear reason. */
function within(ms: number): { signal: AbortSignal } {
  return { signal: AbortSignal.timeout(ms) };
}

export function projectionSuite(h: Harness): void {
  const quick = { leaseMs: 400, pollMs: 20 } as const;

  describe('projections', () => {
    it('hands every stored event to the handler once, in log order, then follows new appends', async () => {
      const store = await h.store<ShopEvents>();
      const before = await placeOrders(store, 40);
      const seen: string[] = [];
      const contexts: ProjectionContext[] = [];
      const projection = store.project(
        'all-events',
        (event, context) => {
          seen.push(keyOf(event));
          contexts.push(context);
        },
        { ...quick, batchSize: 7 },
      );
      await projection.caughtUp(within(10_000));
      expect(seen).toEqual(before);
      const after = await placeOrders(store, 5, 40);
      await projection.caughtUp(within(10_000));
      expect(seen).toEqual([...before, ...after]);
      expect(contexts[0]!.projection).toBe('all-events');
      const status = await store.projectionStatus('all-events');
      expect(status.lag).toBe(0);
      expect(status.holder).toBe(projection.runnerId);
      expect(status.checkpoint).toBe(contexts.at(-1)!.checkpoint);
      await projection.stop();
      expect((await store.projectionStatus('all-events')).holder).toBeUndefined();
    });

    it('gives typed events to a dispatcher and to a batch handler, filtered by type', async () => {
      const store = await h.store<ShopEvents>();
      await placeOrders(store, 10);
      const totals: number[] = [];
      const dispatcher = store.project(
        'totals',
        makeDispatcher<ShopEvents>({
          Placed: (placed) => {
            totals.push(placed.total);
          },
        }),
        quick,
      );
      const batches: number[] = [];
      const carriers: string[] = [];
      const batched = store.project(
        'carriers',
        {
          handleBatch: (events) => {
            batches.push(events.length);
            for (const event of events) carriers.push(event.payload.carrier);
          },
        },
        { ...quick, types: ['Shipped'], batchSize: 3 },
      );
      await dispatcher.caughtUp(within(10_000));
      await batched.caughtUp(within(10_000));
      expect(totals).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(carriers).toEqual(['ups', 'dhl', 'ups', 'dhl', 'ups', 'dhl', 'ups', 'dhl', 'ups', 'dhl']);
      expect(Math.max(...batches)).toBeLessThanOrEqual(3);
    });

    it('resumes from its stored checkpoint in another process, without handling anything twice after a clean stop', async () => {
      const [first, second] = await h.stores<ShopEvents>(2);
      const seen: string[] = [];
      const record = (event: Event) => void seen.push(keyOf(event));
      const initial = await placeOrders(first!, 6);
      const one = first!.project('resume', record, quick);
      await one.caughtUp(within(10_000));
      await one.stop();
      const later = await placeOrders(first!, 4, 6);
      const two = second!.project('resume', record, quick);
      await two.caughtUp(within(10_000));
      expect(seen).toEqual([...initial, ...later]);
    });

    it('starts from now, or after a given checkpoint, when nothing is stored', async () => {
      const store = await h.store<ShopEvents>();
      const early = await placeOrders(store, 3);
      const middle = (await store.readAll({ limit: 3 })).checkpoint;
      const fromNow: string[] = [];
      const fromMiddle: string[] = [];
      const now = store.project('from-now', (event) => void fromNow.push(keyOf(event)), { ...quick, start: 'now' });
      const after = store.project('from-middle', (event) => void fromMiddle.push(keyOf(event)), { ...quick, start: { after: middle } });
      await now.caughtUp(within(10_000));
      const late = await placeOrders(store, 2, 3);
      await now.caughtUp(within(10_000));
      await after.caughtUp(within(10_000));
      expect(fromNow).toEqual(late);
      expect(fromMiddle).toEqual([...early.slice(3), ...late]);
    });

    it('runs one runner per name across processes; a standby takes over when the active one stops', async () => {
      const stores = await h.stores<ShopEvents>(2);
      await placeOrders(stores[0]!, 20);
      let inHandler = 0;
      let overlap = false;
      const seen: { runner: number; key: string }[] = [];
      const runners: Projection[] = stores.map((store, runner) =>
        store.project(
          'contested',
          async (event) => {
            inHandler++;
            if (inHandler > 1) overlap = true;
            seen.push({ runner, key: keyOf(event) });
            await Promise.resolve();
            inHandler--;
          },
          { ...quick, batchSize: 5 },
        ),
      );
      await runners[0]!.caughtUp(within(10_000));
      expect(runners.filter((runner) => runner.active)).toHaveLength(1);
      const active = runners.findIndex((runner) => runner.active);
      const first = seen.length;
      expect(new Set(seen.map((entry) => entry.runner))).toEqual(new Set([active]));
      await runners[active]!.stop();
      const more = await placeOrders(stores[0]!, 5, 20);
      const standby = runners[1 - active]!;
      await standby.caughtUp(within(10_000));
      expect(standby.active).toBe(true);
      expect(seen.slice(first).map((entry) => entry.key)).toEqual(more);
      expect(seen.slice(first).every((entry) => entry.runner === 1 - active)).toBe(true);
      expect(overlap).toBe(false);
    });

    it('a runner that dies mid-batch loses its hold; the standby handles that batch again, so nothing is lost', async () => {
      const [doomed, survivor] = await h.stores<ShopEvents>(2);
      const keys = await placeOrders(doomed!, 10);
      let release: () => void = () => undefined;
      const stuck = new Promise<void>((resolve) => (release = resolve));
      const dying: string[] = [];
      let holding: () => void = () => undefined;
      const victimHolds = new Promise<void>((resolve) => (holding = resolve));
      const victim = doomed!.project(
        'dies',
        async (event) => {
          dying.push(keyOf(event));
          holding();
          if (dying.length === 4) await stuck; // hangs mid-batch, as a process that froze or died
        },
        { ...quick, batchSize: 6 },
      );
      const handled: string[] = [];
      // The standby comes up once the victim holds the projection.
      await victimHolds;
      expect(victim.active).toBe(true);
      const standby = survivor!.project('dies', (event) => void handled.push(keyOf(event)), { ...quick, batchSize: 6 });
      // The victim's process dies: its connection is gone, so its hold is no longer renewed.
      await doomed!.backend.close();
      try {
        await standby.caughtUp(within(15_000));
        expect(standby.active).toBe(true);
        // The batch the victim never finished is handled again from its start.
        expect(handled).toEqual(keys);
        expect(dying.slice(0, 4)).toEqual(keys.slice(0, 4));
      } finally {
        release();
      }
    });

    it('retries a throwing handler with backoff, reports it, and never moves the checkpoint past the failed batch', async () => {
      const store = await h.store<ShopEvents>();
      const keys = await placeOrders(store, 4);
      let failures = 0;
      const reported: ProjectionError[] = [];
      let firstReport: () => void = () => undefined;
      const reportedOnce = new Promise<void>((resolve) => (firstReport = resolve));
      const seen: string[] = [];
      const projection = store.project(
        'flaky',
        (event) => {
          if (event.sequence === 1 && failures < 3) {
            failures++;
            throw new Error(`transient failure ${failures}`);
          }
          seen.push(keyOf(event));
        },
        {
          ...quick,
          retry: { initialDelayMs: 10, maxDelayMs: 40, reportAfter: 2 },
          onError: (error) => {
            reported.push(error);
            firstReport();
          },
        },
      );
      await reportedOnce;
      const during = await store.projectionStatus('flaky');
      expect(during.lastError).toMatch(/transient failure/);
      expect(during.lag).toBe(12);
      await projection.caughtUp(within(10_000));
      expect(failures).toBe(3);
      expect(reported.length).toBeGreaterThanOrEqual(1);
      expect(reported[0]).toBeInstanceOf(ProjectionError);
      expect(reported[0]!.message).toMatch(/flaky/);
      // At-least-once: the batch is handled again from its start, so its first event may repeat.
      expect([...new Set(seen)]).toEqual(keys);
      expect((await store.projectionStatus('flaky')).lastError).toBeUndefined();
    });

    it('rebuilds after resetProjection, from the start or from a checkpoint', async () => {
      const store = await h.store<ShopEvents>();
      const keys = await placeOrders(store, 5);
      const seen: string[] = [];
      const projection = store.project('rebuild', (event) => void seen.push(keyOf(event)), quick);
      await projection.caughtUp(within(10_000));
      expect(seen).toEqual(keys);
      seen.length = 0;
      await store.resetProjection('rebuild');
      await projection.caughtUp(within(10_000));
      // Rebuilt from the start: every event again, once (a batch in flight at the reset may repeat).
      expect([...new Set(seen)]).toEqual(keys);
      const checkpoint = (await store.readAll({ limit: 12 })).checkpoint;
      seen.length = 0;
      await store.resetProjection('rebuild', checkpoint);
      await projection.caughtUp(within(10_000));
      expect([...new Set(seen)]).toEqual(keys.slice(12));
    });

    it('reports the lag of a projection that is behind, and the status of one never run', async () => {
      const store = await h.store<ShopEvents>();
      await placeOrders(store, 4);
      const never = await store.projectionStatus('never-run');
      expect(never).toEqual({ name: 'never-run', checkpoint: undefined, lag: 12, holder: undefined, lastError: undefined });
      const projection = store.project('lagging', () => undefined, quick);
      await projection.caughtUp(within(10_000));
      await projection.stop();
      await placeOrders(store, 2, 4);
      expect((await store.projectionStatus('lagging')).lag).toBe(6);
    });

    it('reports a stored checkpoint it cannot read instead of starting over', async () => {
      const store = await h.store<ShopEvents>();
      await placeOrders(store, 2);
      await projectionStoreOf(store).reset('corrupt', 'not-a-checkpoint');
      const handled: string[] = [];
      const reported: ProjectionError[] = [];
      const projection = store.project('corrupt', (event) => void handled.push(keyOf(event)), {
        ...quick,
        onError: (error) => void reported.push(error),
      });
      const outcome = await projection.done.then(
        () => 'stopped',
        (error: unknown) => error,
      );
      expect(outcome).toBeInstanceOf(ProjectionError);
      expect((outcome as ProjectionError).cause).toBeInstanceOf(InvalidCheckpointError);
      expect(reported).toHaveLength(1);
      expect(handled).toEqual([]);
      expect((await store.projectionStatus('corrupt').catch((e: unknown) => e)) instanceof InvalidCheckpointError).toBe(true);
      const stored = await projectionStoreOf(store).load('corrupt');
      expect(stored?.checkpoint).toBe('not-a-checkpoint');
      expect(stored?.lastError).toMatch(/cannot be read/);
    });

    it('refuses bad names, options and checkpoints with typed errors', async () => {
      const [store, other] = [await h.store<ShopEvents>(), await h.store<ShopEvents>()];
      await other.appendEvents(
        ['x'],
        0,
        makeEvents(1).map((event) => ({ ...event, type: 'Noted' as const, data: { text: 'x' } })),
      );
      const theirs = (await other.readAll()).checkpoint;
      const noop = () => undefined;
      for (const name of ['', 42, null, undefined, 'a'.repeat(201)]) {
        expect(() => store.project(name as string, noop), String(name)).toThrow(InvalidArgumentError);
        await expect(store.projectionStatus(name as string)).rejects.toBeInstanceOf(InvalidArgumentError);
        await expect(store.resetProjection(name as string)).rejects.toBeInstanceOf(InvalidArgumentError);
      }
      for (const batchSize of [0, 10_001, 2.5, '10']) {
        expect(() => store.project('p', noop, { batchSize: batchSize as number }), String(batchSize)).toThrow(InvalidArgumentError);
      }
      expect(() => store.project('p', noop, { leaseMs: 10 })).toThrow(InvalidArgumentError);
      expect(() => store.project('p', noop, { start: 'yesterday' as 'now' })).toThrow(InvalidArgumentError);
      expect(() => store.project('p', noop, { start: { after: theirs } })).toThrow(InvalidCheckpointError);
      expect(() => store.project('p', 'handler' as unknown as typeof noop)).toThrow(InvalidArgumentError);
      await expect(store.resetProjection('p', theirs)).rejects.toBeInstanceOf(InvalidCheckpointError);
      await expect(store.resetProjection('p', 'garbage')).rejects.toBeInstanceOf(InvalidCheckpointError);
      expect(await projectionStoreOf(store).load('p')).toBeUndefined();
    });
  });
}
