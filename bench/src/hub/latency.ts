/**
 * Hub delivery latency: the time from an append being acknowledged to the writer to the event
 * reaching a subscriber's handler in another OS process over the same server. The writer sends
 * each acknowledgement time to the subscriber over IPC; both read the same clock
 * (`performance.timeOrigin + performance.now()`). A negative latency means the handler ran before
 * the writer's acknowledgement arrived, which the feed allows (it fires on commit).
 */
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { percentile } from '../stats.js';
import { createThrowawayDatabase } from '../postgres-database.js';
import { now, openHubStore, type HubBackend, type HubTarget } from './stores.js';

export interface LatencyResult {
  readonly backend: HubBackend;
  readonly inFlight: number;
  readonly samples: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
}

const subscriberScript = fileURLToPath(new URL('./subscriber.ts', import.meta.url));

/** Appends `appends` one-event batches, `inFlight` at a time (one aggregate each), and measures delivery. */
export async function measureDelivery(backend: HubBackend, appends: number, inFlight: number): Promise<LatencyResult> {
  const database = backend === 'postgres' ? await createThrowawayDatabase('timebox_hub') : undefined;
  try {
    return await measureOn({ backend, prefix: `bench-hub-${randomUUID().slice(0, 8)}`, postgresUrl: database?.url }, appends, inFlight);
  } finally {
    await database?.drop();
  }
}

async function measureOn(target: HubTarget, appends: number, inFlight: number): Promise<LatencyResult> {
  const { backend } = target;
  const child = fork(subscriberScript, [JSON.stringify(target)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const messages: unknown[] = [];
  const waiters: (() => void)[] = [];
  child.on('message', (message) => {
    messages.push(message);
    waiters.splice(0).forEach((wake) => wake());
  });
  const next = async <T>(pick: (message: unknown) => T | undefined): Promise<T> => {
    for (;;) {
      for (const message of messages) {
        const found = pick(message);
        if (found !== undefined) return found;
      }
      await new Promise<void>((resolve, reject) => {
        waiters.push(resolve);
        child.once('exit', (code) => reject(new Error(`the subscriber process exited (code ${code})`)));
      });
    }
  };
  let store: ReturnType<typeof openHubStore> | undefined;
  let flusher: ReturnType<typeof setInterval> | undefined;
  let latencies: number[];
  try {
    await next((m) => ((m as { ready?: true }).ready ? true : undefined));
    const opened = openHubStore(target);
    store = opened;
    await opened.ready();
    let issued = 0;
    let pending: [string, number][] = [];
    const flush = () => {
      if (pending.length > 0) child.send({ ack: pending });
      pending = [];
    };
    flusher = setInterval(flush, 5);
    // Each worker appends to its own aggregate, so appends never conflict.
    await Promise.all(
      Array.from({ length: inFlight }, async (_, worker) => {
        for (let sequence = 0; issued < appends; sequence++) {
          issued++;
          await opened.appendEvents(['hub', String(worker)], sequence, [{ type: 'Pinged', data: { worker } }]);
          pending.push([`hub/${worker}#${sequence}`, now()]);
        }
      }),
    );
    clearInterval(flusher);
    flush();
    child.send({ done: true });
    ({ latencies } = await next((m) =>
      (m as { latencies?: number[] }).latencies !== undefined ? (m as { latencies: number[] }) : undefined,
    ));
  } catch (error) {
    // A failed measurement must not leave the subscriber process or the flusher holding this
    // process open after the run.
    child.kill();
    throw error;
  } finally {
    clearInterval(flusher);
    await store?.close().catch(() => undefined);
  }
  latencies.sort((x, y) => x - y);
  return {
    backend,
    inFlight,
    samples: latencies.length,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    p999Ms: percentile(latencies, 99.9),
  };
}
