import { afterAll, describe, expect, it } from 'vitest';
import { VersionConflictError } from '@timebox/core';
import { createPostgresStore } from '../src/index.js';
import { adminSql, deletePrefix, randomPrefix, serverUrl } from './helpers.js';

const admin = adminSql();
afterAll(() => admin.end());

type RaceEvents = { Wrote: { token: string } };

describe('archiving under concurrent appends', () => {
  it('puts every stored event either in exactly one archive record or in the live log; each life gap-free, each starting past the last', async () => {
    const prefix = randomPrefix('archive-race');
    const stores = [0, 1, 2].map(() =>
      createPostgresStore<RaceEvents>({}, { url: serverUrl(), prefix, maxConns: 3, archiveLeaseMs: 5000 }),
    );
    const id = ['contended'];
    try {
      const stored: string[] = [];
      let writing = true;
      const writer = async (w: number) => {
        const store = stores[w % stores.length]!;
        // Where this writer believes the aggregate's log goes on: a conflict tells it the actual
        // next sequence, which after an archive is the new life's start.
        let expected = 0;
        for (let n = 0; writing; n++) {
          const token = `${w}-${n}`;
          for (;;) {
            try {
              await store.appendEvents(id, expected, [{ type: 'Wrote', data: { token } }]);
              stored.push(token);
              expected++;
              break;
            } catch (error) {
              if (!(error instanceof VersionConflictError)) throw error;
              expected = error.actualSequence;
            }
          }
        }
      };
      const writers = Array.from({ length: 6 }, (_, w) => writer(w));
      for (let round = 0; round < 6; round++) {
        await new Promise((resolve) => setTimeout(resolve, 30));
        await stores[round % stores.length]!.archive(id);
      }
      writing = false;
      await Promise.all(writers);

      const archived: string[][] = [];
      const lives: number[][] = [];
      for (;;) {
        const got = await stores[0]!
          .consumeArchive(
            (record) => {
              lives.push(record.events.map((event) => event.sequence));
              archived.push(record.events.map((event) => (event.payload as { token: string }).token));
            },
            { signal: AbortSignal.timeout(500) },
          )
          .then(
            () => true,
            () => false,
          );
        if (!got) break;
      }
      const live = await stores[0]!.getEvents(id);
      if (live.length > 0) lives.push(live.map((event) => event.sequence));
      // Each life is gap-free; the first starts at 0, each next one at the archived life's next
      // sequence plus one (an archive of an ID with no live data archives nothing).
      let start = 0;
      for (const life of lives) {
        expect(life.length).toBeGreaterThan(0);
        expect(life).toEqual(life.map((_, i) => start + i));
        start = start + life.length + 1;
      }
      const everywhere = [...archived.flat(), ...live.map((event) => event.payload.token)];
      expect(archived.length).toBeGreaterThan(0);
      expect([...everywhere].sort()).toEqual([...stored].sort());
    } finally {
      await Promise.all(stores.map((store) => store.close()));
      await deletePrefix(admin, prefix);
    }
  });
});
