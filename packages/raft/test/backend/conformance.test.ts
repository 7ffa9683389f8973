import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeConformance } from '@timebox/core/conformance';
import { LocalReplicator } from '../../src/local-replicator.js';
import { MaterializedState } from '../../src/state/materialized-state.js';
import { RaftBackend } from '../../src/raft-backend.js';

const ARCHIVE_LEASE_MS = 200;

describeConformance({
  name: 'raft (local replicator, LMDB state)',
  capabilities: { archive: true, archiveRedeliveryMs: ARCHIVE_LEASE_MS, hub: true, readSide: true },
  timeoutMs: 60_000,
  namespace: () => {
    // One LMDB state and one replicator are one store; each connection is a backend over them,
    // as each process of a cluster is a backend over its node.
    const dir = mkdtempSync(join(tmpdir(), 'timebox-raft-conformance-'));
    const state = MaterializedState.open(dir);
    const replicator = new LocalReplicator(state);
    return {
      connect: () => new RaftBackend({ state, replicator, archiveLeaseMs: ARCHIVE_LEASE_MS }),
      dispose: async () => {
        await replicator.close();
        await state.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
});
