import { describeConformance } from '@timebox/core/conformance';
import { Redis } from 'ioredis';
import { afterAll, inject } from 'vitest';
import { namespaceOver } from './namespaces.js';

const CLAIM_IDLE_MS = 200;
const url = inject('redisUrl');
const admin = new Redis(url);
afterAll(() => admin.quit());

describeConformance({
  name: 'redis',
  capabilities: { archive: true, archiveRedeliveryMs: CLAIM_IDLE_MS, hub: true, readSide: true },
  // Each connect() opens its own connection, as another process would.
  namespace: () => namespaceOver(admin, { url, archiveClaimIdleMs: CLAIM_IDLE_MS, archiveBlockMs: 100 }),
});

// The same suite with ioredis auto-pipelining, which changes how commands reach the socket.
describeConformance({
  name: 'redis (auto-pipelining)',
  capabilities: { archive: true, archiveRedeliveryMs: CLAIM_IDLE_MS, hub: true, readSide: true },
  namespace: () => namespaceOver(admin, { url, autoPipelining: true, archiveClaimIdleMs: CLAIM_IDLE_MS, archiveBlockMs: 100 }),
});

// The same suite on a store spread over several shards of one server: every query, the log and
// the feed read each shard and merge (test/cluster.test.ts runs it on a real Cluster).
describeConformance({
  name: 'redis (shards: 7)',
  capabilities: { archive: true, archiveRedeliveryMs: CLAIM_IDLE_MS, hub: true, readSide: true },
  namespace: () => namespaceOver(admin, { url, shards: 7, archiveClaimIdleMs: CLAIM_IDLE_MS, archiveBlockMs: 100 }),
});
