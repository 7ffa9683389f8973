import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { AggregateId, StoredEventRecord } from '@timebox/core';
import { afterAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import postgres from 'postgres';
import { FeedNotifier } from '../src/feed-notifier.js';
import { FeedReader } from '../src/feed-reader.js';
import { PostgresBackend } from '../src/index.js';
import { adminSql, deletePrefix, randomPrefix, serverUrl } from './helpers.js';

const writerScript = fileURLToPath(new URL('./support/burst-writer.ts', import.meta.url));
const admin = adminSql();
const prefixes: string[] = [];
afterAll(async () => {
  for (const prefix of prefixes) await deletePrefix(admin, prefix);
  await admin.end();
});

/** Resolves with the first message from `child` that `pick` accepts. */
function nextMessage<T>(child: ReturnType<typeof fork>, pick: (message: Record<string, unknown>) => T | undefined): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onMessage = (message: Record<string, unknown>) => {
      if (typeof message.error === 'string') {
        cleanup();
        reject(new Error(`writer process: ${message.error}`));
        return;
      }
      const found = pick(message);
      if (found === undefined) return;
      cleanup();
      resolve(found);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`writer process exited (code ${code})`));
    };
    const cleanup = () => {
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

describe('postgres feed wake-ups', () => {
  it('the notifier coalesces: appends committing while a NOTIFY is in flight get exactly one more after it', async () => {
    const prefix = randomPrefix('notifier');
    const hash = createHash('md5').update(prefix).digest('hex');
    const heard: string[] = [];
    let sentinelHeard: (() => void) | undefined;
    const listening = await admin.listen('timebox_feed', (payload) => {
      if (payload === hash) heard.push(payload);
      if (payload === `${hash}-sentinel`) sentinelHeard?.();
    });
    // One connection: the sentinel, sent on it after the notifier is done, commits after every
    // NOTIFY of the notifier, and PostgreSQL delivers notifications in commit order.
    const sql = postgres(serverUrl(), { max: 1, onnotice: () => undefined, fetch_types: false });
    const countRound = async (calls: number): Promise<number> => {
      heard.length = 0;
      const notifier = new FeedNotifier(() => sql, prefix);
      // The one connection is busy for a moment, so the first NOTIFY is still pending while the
      // other calls come: they cannot know whether it was sent before their commits, so exactly
      // one more must follow it.
      const busy = sql`SELECT pg_sleep(0.2)`.execute();
      notifier.notify();
      await new Promise((resolve) => setImmediate(resolve));
      for (let i = 1; i < calls; i++) notifier.notify();
      await busy;
      await notifier.flush();
      const sentinel = new Promise<void>((resolve) => (sentinelHeard = resolve));
      await sql`SELECT pg_notify('timebox_feed', ${`${hash}-sentinel`})`;
      await sentinel;
      return heard.length;
    };
    try {
      expect(await countRound(1)).toBe(1);
      expect(await countRound(10)).toBe(2);
      expect(await countRound(2)).toBe(2);
    } finally {
      await listening.unlisten();
      await sql.end();
    }
  });

  it(
    'notifications alone (no safety read) deliver every event another process appends, burst after burst, promptly',
    { timeout: 120_000 },
    async () => {
      const prefix = randomPrefix('wakeup');
      prefixes.push(prefix);
      const aggregates = 40;
      const bursts = 25;
      // Opens the schema (and is the pool the reader reads through).
      const backend = new PostgresBackend({ url: serverUrl(), prefix, maxConns: 2 });
      await backend.ready();
      const sql = postgres(serverUrl(), { max: 2, onnotice: () => undefined, fetch_types: false });
      const delivered = new Map<string, number>();
      const gaps: string[] = [];
      let waiter: (() => void) | undefined;
      let count = 0;
      // The reader's backstop read is pushed past the test's end: only the writer's
      // notifications can wake it, so a lost wake-up leaves a burst undelivered.
      const reader = await FeedReader.open(
        sql,
        prefix,
        {
          events(id: AggregateId, records: readonly StoredEventRecord[]) {
            for (const record of records) {
              const key = `${id.join('/')}#${record.sequence}`;
              delivered.set(key, (delivered.get(key) ?? 0) + 1);
              count++;
            }
            waiter?.();
          },
          gap: (reason: string) => void gaps.push(reason),
        },
        async () => (await backend.logHead())[0]!,
        10 * 60_000,
      );
      const child = fork(writerScript, [serverUrl(), prefix, String(aggregates), '16'], {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const delays: number[] = [];
      try {
        await nextMessage(child, (m) => (m.ready === true ? true : undefined));
        for (let burst = 0; burst < bursts; burst++) {
          child.send({ burst });
          await nextMessage(child, (m) => (m.burst === burst && m.done === true ? true : undefined));
          const acknowledged = performance.now();
          const expected = (burst + 1) * aggregates;
          if (count < expected) {
            await new Promise<void>((resolve, reject) => {
              const timer = setTimeout(() => {
                waiter = undefined;
                reject(new Error(`burst ${burst}: ${count} of ${expected} events delivered 5 s after the writer's last acknowledgement`));
              }, 5_000);
              waiter = () => {
                if (count < expected) return;
                waiter = undefined;
                clearTimeout(timer);
                resolve();
              };
            });
          }
          delays.push(performance.now() - acknowledged);
        }
      } finally {
        child.send({ stop: true });
        await reader.close();
        await sql.end();
        await backend.close();
      }
      expect(gaps).toEqual([]);
      expect(delivered.size).toBe(aggregates * bursts);
      expect([...delivered.values()].every((n) => n === 1)).toBe(true);
      // Delivery follows the writer's last acknowledgement by a notification round trip and a read,
      // not by a polling period: the median burst is complete within 250 ms of it.
      delays.sort((a, b) => a - b);
      expect(delays[Math.floor(delays.length / 2)]).toBeLessThan(250);
    },
  );
});
