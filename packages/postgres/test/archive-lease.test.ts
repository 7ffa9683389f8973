import { afterAll, describe, expect, it } from 'vitest';
import { createPostgresStore } from '../src/index.js';
import { adminSql, deletePrefix, randomPrefix, serverUrl } from './helpers.js';

const admin = adminSql();
afterAll(() => admin.end());

const LEASE_MS = 300;

/** Starts a consumer whose handler runs until released; resolves once it holds the record. */
async function holdWithSlowHandler(prefix: string) {
  const store = createPostgresStore({}, { url: serverUrl(), prefix, maxConns: 2, archiveLeaseMs: LEASE_MS });
  await store.appendEvents(['a'], 0, [{ type: 'T', data: {} }]);
  await store.archive(['a']);
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let taken!: () => void;
  const tookIt = new Promise<void>((resolve) => (taken = resolve));
  const consuming = store.consumeArchive(async () => {
    taken();
    await released;
  });
  await tookIt;
  return { store, release, consuming };
}

async function archiveRows(prefix: string) {
  return admin<{ lease: string; leased_until: string; left_ms: number }[]>`
    SELECT lease::text, leased_until::text,
           (leased_until - (extract(epoch FROM clock_timestamp()) * 1000)::bigint)::float8 AS left_ms
      FROM timebox_archive WHERE prefix = ${prefix}`;
}

describe('archive lease renewal', () => {
  it('a slow handler keeps its lease fresh, and the row is deleted once it resolves', async () => {
    const prefix = randomPrefix('archive-lease');
    const { store, release, consuming } = await holdWithSlowHandler(prefix);
    try {
      await new Promise((resolve) => setTimeout(resolve, LEASE_MS * 3));
      const [row] = await archiveRows(prefix);
      // Taken once (lease 1), and its expiry still ahead: nobody else may take it.
      expect(row?.lease).toBe('1');
      expect(row!.left_ms).toBeGreaterThan(0);
      release();
      await consuming;
      expect(await archiveRows(prefix)).toEqual([]);
    } finally {
      release();
      await store.close();
      await deletePrefix(admin, prefix);
    }
  });

  it('renewing never extends a lease another consumer took over', async () => {
    const prefix = randomPrefix('archive-lease');
    const { store, release, consuming } = await holdWithSlowHandler(prefix);
    try {
      // Another consumer takes the row, as it would after a missed renewal: a new lease number.
      await admin`UPDATE timebox_archive SET lease = lease + 1, leased_until = 1 WHERE prefix = ${prefix}`;
      await new Promise((resolve) => setTimeout(resolve, LEASE_MS * 2));
      const rows = await archiveRows(prefix);
      expect(rows.map(({ lease, leased_until }) => [lease, leased_until])).toEqual([['2', '1']]);
      release();
      await consuming;
    } finally {
      release();
      await store.close();
      await deletePrefix(admin, prefix);
    }
  });
});
