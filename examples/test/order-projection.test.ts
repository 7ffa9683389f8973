import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createMemoryStore } from '@timebox/memory';
import { describe, expect, it } from 'vitest';
import { ORDER_STATUSES, orderStoreConfig, orderTotals } from '../order-domain.js';
import { checkReadModel } from '../order-read-model-check.js';
import { OrderReadModel } from '../order-read-model.js';
import { runOrderTraffic } from '../order-traffic.js';

const exampleDir = fileURLToPath(new URL('..', import.meta.url));

describe('the order projection example', () => {
  it('keeps orders by status with totals equal to what the aggregates hold', async () => {
    const store = createMemoryStore(orderStoreConfig);
    const model = new OrderReadModel();
    const projection = store.project('orders-by-status', model.handler);
    const summary = await runOrderTraffic(store, 'run', 24);
    await projection.caughtUp();
    expect(model.eventsApplied).toBe(summary.events);
    const states = Object.values(summary.orders);
    for (const row of model.byStatus()) {
      const inStatus = states.filter((state) => state.status === row.status);
      expect(row.orders).toBe(inStatus.length);
      expect(row.items).toBe(inStatus.reduce((sum, state) => sum + orderTotals(state).itemCount, 0));
      expect(row.totalCents).toBe(inStatus.reduce((sum, state) => sum + orderTotals(state).totalCents, 0));
    }
    expect(model.byStatus().map((row) => row.status)).toEqual([...ORDER_STATUSES]);
    expect(model.byStatus().every((row) => row.orders === 6)).toBe(true);
    expect(await checkReadModel(model, store, { summary })).toEqual([]);
    await projection.stop();
    await store.close();
  });

  it('applies each event once however often it is handed, and survives a round trip through its file', async () => {
    const store = createMemoryStore(orderStoreConfig);
    const summary = await runOrderTraffic(store, 'run', 8);
    const { events } = await store.readAll({ limit: 1000 });
    const model = new OrderReadModel();
    for (const event of events.slice(0, 30)) model.apply(event);
    // A crash after the file was written and before the checkpoint was stored: the batch comes again.
    const folder = await mkdtemp(join(tmpdir(), 'timebox-example-read-model-'));
    try {
      const file = join(folder, 'orders.json');
      await model.save(file);
      const reloaded = await OrderReadModel.load(file);
      expect(reloaded.toJSON()).toEqual(model.toJSON());
      for (const event of events.slice(20)) reloaded.apply(event);
      expect(reloaded.duplicatesSkipped).toBe(10);
      expect(reloaded.eventsApplied).toBe(summary.events);
      expect(await checkReadModel(reloaded, store, { summary })).toEqual([]);
      // No temporary file is left beside it.
      expect(await readdir(folder)).toEqual(['orders.json']);
      expect((await OrderReadModel.load(join(folder, 'missing.json'))).eventsApplied).toBe(0);
    } finally {
      await rm(folder, { recursive: true, force: true });
      await store.close();
    }
  });

  it('tells the status index apart from a model that lost or miscounted an order', async () => {
    const store = createMemoryStore(orderStoreConfig);
    const summary = await runOrderTraffic(store, 'run', 8);
    const { events } = await store.readAll({ limit: 1000 });
    const model = new OrderReadModel();
    // Everything but the last event of order 3 (delivered, so its status would be shipped).
    const last = events.filter((event) => event.aggregateId[2] === '3').at(-1);
    for (const event of events) if (event !== last) model.apply(event);
    expect(await checkReadModel(model, store, { summary })).toEqual([
      'order/run/3: the read model says shipped, the status index delivered',
      'shipped: the read model counts 3 orders, the status index 2',
      'delivered: the read model counts 1 orders, the status index 2',
      'shipped: the read model counts 3 orders, the aggregates 2',
      expect.stringContaining('shipped: the read model counts'),
      expect.stringContaining('shipped: the read model totals'),
      'delivered: the read model counts 1 orders, the aggregates 2',
      expect.stringContaining('delivered: the read model counts'),
      expect.stringContaining('delivered: the read model totals'),
      `the read model applied ${summary.events - 1} distinct events, the commands appended ${summary.events}`,
    ]);
    await store.close();
  });

  it('runs as a program and checks itself against the store', { timeout: 60_000 }, async () => {
    const output = await new Promise<string>((resolve, reject) => {
      execFile(
        'npx',
        ['tsx', 'order-projection.ts'],
        { cwd: exampleDir, env: { ...process.env, TIMEBOX_BACKEND: 'memory', ORDERS: '12' } },
        (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)),
      );
    });
    expect(output).toContain('Commands appended');
    expect(output).toMatch(/Checked: the kept read model holds every order with the status the store's status index gives it/);
  });
});
