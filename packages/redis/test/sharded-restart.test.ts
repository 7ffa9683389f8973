import { randomUUID } from 'node:crypto';
import type { Store } from '@timebox/core';
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisStore } from '../src/index.js';
import { shardOf, shardTags, slotOfTag } from '../src/slots.js';
import { encodeAggregateId } from '@timebox/core';
import { ThrowawayCluster } from './cluster.js';
import { freshPrefix } from './namespaces.js';

const SHARDS = 16;
const WRITERS = 16;
const IDS_PER_WRITER = 8;
/** Acknowledged appends before the kill, and again after the restart. */
const PHASE = 1500;

let cluster: ThrowawayCluster;
let client: Cluster;

beforeAll(async () => {
  // Every write is fsynced before it is acknowledged; the other masters keep serving their slots
  // while one is down.
  cluster = await ThrowawayCluster.start(3, ['--appendonly', 'yes', '--appendfsync', 'always', '--cluster-require-full-coverage', 'no']);
  client = cluster.client();
}, 90_000);

afterAll(async () => {
  client?.disconnect();
  await cluster?.stop();
});

/** Resolves once `count()` reaches `target`; checked whenever `tick` is called. */
class Threshold {
  #waiting: { target: number; resolve: () => void }[] = [];
  constructor(private readonly count: () => number) {}
  reached(target: number): Promise<void> {
    if (this.count() >= target) return Promise.resolve();
    return new Promise((resolve) => this.#waiting.push({ target, resolve }));
  }
  tick(): void {
    const now = this.count();
    this.#waiting = this.#waiting.filter((waiter) => (now >= waiter.target ? (waiter.resolve(), false) : true));
  }
}

describe('redis cluster: a master restarted mid-load', () => {
  it('loses no acknowledged append of a sharded store (appendfsync always)', async () => {
    const prefix = freshPrefix('restart');
    const store: Store = createRedisStore({}, { client, shards: SHARDS, prefix });
    const tags = shardTags(SHARDS);
    // The master that serves shard 0's slot is the one restarted.
    const slots = await client.cluster('SLOTS');
    const portOf = (slot: number) => slots.find(([from, to]) => slot >= from && slot <= to)![2]![1];
    const victimPort = portOf(slotOfTag(tags[0]!));
    const victim = cluster.nodes.find((node) => node.port === victimPort)!;
    const onVictim = (id: string[]) => portOf(slotOfTag(tags[shardOf(encodeAggregateId(id), SHARDS)]!)) === victimPort;

    /** Acknowledged events per aggregate: sequence → payload. */
    const acknowledged = new Map<string, Map<number, string>>();
    let acks = 0;
    let acksOnVictimBeforeKill = 0;
    let failures = 0;
    let killed = false;
    let stop = false;
    const threshold = new Threshold(() => acks);

    const writer = async (w: number): Promise<void> => {
      const ids = Array.from({ length: IDS_PER_WRITER }, (_, i) => ['w', String(w), String(i)]);
      const next = ids.map(() => 0);
      for (let round = 0; !stop; round++) {
        const i = round % ids.length;
        const id = ids[i]!;
        const token = randomUUID();
        try {
          await store.appendEvents(id, next[i]!, [{ type: 'Wrote', data: { token } }]);
          const key = JSON.stringify(id);
          if (!acknowledged.has(key)) acknowledged.set(key, new Map());
          acknowledged.get(key)!.set(next[i]!, token);
          next[i]!++;
          acks++;
          if (!killed && onVictim(id)) acksOnVictimBeforeKill++;
          threshold.tick();
        } catch {
          // Unknown outcome (the master died with the call in flight, or is down): learn where the
          // aggregate stands once it answers again, as a retrying client would.
          failures++;
          for (let attempt = 0; !stop; attempt++) {
            try {
              next[i] = (await store.getEvents(id)).length;
              break;
            } catch {
              await new Promise((resolve) => setTimeout(resolve, Math.min(20 * 2 ** attempt, 500)));
            }
          }
        }
      }
    };
    const writers = Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));

    await threshold.reached(PHASE);
    killed = true;
    await victim.kill();
    await victim.launch();
    const resumedAt = acks;
    await threshold.reached(resumedAt + PHASE);
    stop = true;
    await writers;

    expect(acksOnVictimBeforeKill, 'the restarted master held acknowledged appends').toBeGreaterThan(0);
    expect(failures, 'appends were in flight to the master when it died').toBeGreaterThan(0);

    // Every acknowledged append is there, with its payload, on the load path and in the log.
    let checked = 0;
    for (const [key, events] of acknowledged) {
      const stored = await store.getEvents(JSON.parse(key) as string[]);
      for (const [sequence, token] of events) {
        expect((stored[sequence]?.payload as { token: string } | undefined)?.token, `${key}#${sequence}`).toBe(token);
        checked++;
      }
    }
    expect(checked).toBe(acks);
    const logged = new Set<string>();
    let page = await store.readAll({ limit: 1000 });
    for (;;) {
      for (const event of page.events) logged.add(`${JSON.stringify(event.aggregateId)}#${event.sequence}`);
      if (page.end) break;
      page = await store.readAll({ after: page.checkpoint, limit: 1000 });
    }
    for (const [key, events] of acknowledged) for (const sequence of events.keys()) expect(logged.has(`${key}#${sequence}`)).toBe(true);
    await store.close();
  }, 180_000);
});
