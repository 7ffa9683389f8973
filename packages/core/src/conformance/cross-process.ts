import { expect } from 'vitest';
import type { Event } from '../event.js';

/**
 * For a hub test across OS processes, in the subscriber process: checks that `events` are exactly
 * what a writer process appended — to `['writer', '<n>']` for each n below `counts.length`,
 * `counts[n]` events in all, each payload `{ n: <position>, pid: <writer pid> }` — every event
 * once, in sequence order per aggregate. (The writer runs outside vitest, so it cannot import
 * this module; packages/redis/test/support/hub-writer.ts is one.)
 */
export function expectHubPattern(events: readonly Event[], counts: readonly number[], pid: number): void {
  expect(events).toHaveLength(counts.reduce((sum, n) => sum + n, 0));
  for (let a = 0; a < counts.length; a++) {
    const mine = events.filter((event) => event.aggregateId[1] === String(a));
    expect(mine.map((event) => event.sequence)).toEqual(Array.from({ length: counts[a] as number }, (_, i) => i));
    expect(mine.map((event) => (event.payload as { n: number }).n)).toEqual(mine.map((_, i) => i));
    expect(mine.every((event) => (event.payload as { pid: number }).pid === pid)).toBe(true);
  }
}
