import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createMemoryStore } from '@timebox/memory';
import { describe, expect, it } from 'vitest';
import { ORDER_STATUSES, orderStoreConfig, orderTotals } from '../order-domain.js';
import { OrderReadModel } from '../order-read-model.js';
import { runOrderTraffic } from '../order-traffic.js';

const exampleDir = fileURLToPath(new URL('..', import.meta.url));

describe('the order projection example', () => {
  it('keeps orders by status with totals equal to what the aggregates hold', async () => {
    const store = createMemoryStore(orderStoreConfig);
    const model = new OrderReadModel();
    await store.subscribe(model.handler);
    const summary = await runOrderTraffic(store, 'run', 24);
    for (let i = 0; i < 200 && model.eventsSeen < summary.events; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(model.eventsSeen).toBe(summary.events);
    const states = Object.values(summary.orders);
    for (const row of model.byStatus()) {
      const inStatus = states.filter((state) => state.status === row.status);
      expect(row.orders).toBe(inStatus.length);
      expect(row.items).toBe(inStatus.reduce((sum, state) => sum + orderTotals(state).itemCount, 0));
      expect(row.totalCents).toBe(inStatus.reduce((sum, state) => sum + orderTotals(state).totalCents, 0));
    }
    expect(model.byStatus().map((row) => row.status)).toEqual([...ORDER_STATUSES]);
    expect(model.byStatus().every((row) => row.orders === 6)).toBe(true);
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
    expect(output).toMatch(/Checked: every order's status matches its aggregate/);
  });
});
