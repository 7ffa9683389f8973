import { afterAll, describe, expect, it } from 'vitest';
import { VersionConflictError } from '@timebox/core';
import { createPostgresStore } from '../src/index.js';
import { adminSql, deletePrefix, randomPrefix, serverUrl } from './helpers.js';

const admin = adminSql();
afterAll(() => admin.end());

type RaceEvents = { Wrote: { token: string } };

describe('archiving under concurrent appends', () => {
  it('puts every stored event either in exactly one archive record or in the live log, gap-free', async () => {
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
        for (let n = 0; writing; n++) {
          const token = `${w}-${n}`;
          for (;;) {
            const expected = (await store.getEvents(id)).at(-1)?.sequence;
            try {
              await store.appendEvents(id, expected === undefined ? 0 : expected + 1, [{ type: 'Wrote', data: { token } }]);
              stored.push(token);
              break;
            } catch (error) {
              if (!(error instanceof VersionConflictError)) throw error;
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
      for (;;) {
        const got = await stores[0]!
          .consumeArchive(
            (record) => {
              expect(record.events.map((event) => event.sequence)).toEqual(record.events.map((_, i) => i));
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
      expect(live.map((event) => event.sequence)).toEqual(live.map((_, i) => i));
      const everywhere = [...archived.flat(), ...live.map((event) => event.payload.token)];
      expect(archived.length).toBeGreaterThan(0);
      expect([...everywhere].sort()).toEqual([...stored].sort());
    } finally {
      await Promise.all(stores.map((store) => store.close()));
      await deletePrefix(admin, prefix);
    }
  });
});
