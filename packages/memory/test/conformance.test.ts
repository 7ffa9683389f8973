import { describeConformance } from '@timebox/core/conformance';
import { MemoryBackend, MemoryDatabase } from '../src/index.js';

const ARCHIVE_LEASE_MS = 200;

describeConformance({
  name: 'memory',
  capabilities: { archive: true, archiveRedeliveryMs: ARCHIVE_LEASE_MS, hub: true, readSide: true },
  namespace: () => {
    // One database is one isolated store; each connection is a backend over it, like a process.
    const database = new MemoryDatabase(ARCHIVE_LEASE_MS);
    return { connect: () => new MemoryBackend({ database }) };
  },
});
