import { afterAll } from 'vitest';
import { describeConformance } from '@timebox/core/conformance';
import { PostgresBackend } from '../src/index.js';
import { adminSql, deletePrefix, randomPrefix, serverUrl } from './helpers.js';

const ARCHIVE_LEASE_MS = 300;
const admin = adminSql();
afterAll(() => admin.end());

describeConformance({
  name: 'postgres',
  capabilities: { archive: true, archiveRedeliveryMs: ARCHIVE_LEASE_MS, hub: true, readSide: true },
  writers: 50,
  namespace: () => {
    // One prefix is one isolated store; each connection is a backend with its own pool, like a process.
    const prefix = randomPrefix('conformance');
    return {
      connect: () => new PostgresBackend({ url: serverUrl(), prefix, maxConns: 4, archiveLeaseMs: ARCHIVE_LEASE_MS }),
      dispose: () => deletePrefix(admin, prefix),
    };
  },
});
