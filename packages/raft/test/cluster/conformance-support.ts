import type { ConformanceTarget } from '@timebox/core/conformance';
import { afterAll } from 'vitest';
import { LocalRaftCluster } from '../../src/local-cluster.js';

/** Archive lease of the conformance namespaces, so the redelivery case runs quickly. */
export const ARCHIVE_LEASE_MS = 200;

/** Consensus timings of the conformance clusters. */
export interface Timings {
  readonly tickMs: number;
  readonly electionTicks: number;
}

/** Fast consensus timings on loopback: elections within a few hundred ms. */
export const CONFORMANCE_TIMINGS: Timings = { tickMs: 10, electionTicks: 10 };

/**
 * A single member has nobody to lose touch with, so a short election timeout only speeds up the
 * first election of each fresh cluster.
 */
export const SINGLE_MEMBER_TIMINGS: Timings = { tickMs: 10, electionTicks: 3 };

/**
 * The conformance target over real clusters: each namespace is a fresh cluster of `size` members
 * (real WAL files, LMDB state and TCP on loopback) in a fresh temporary folder; `connect()` hands
 * out backends round-robin over the members, so the stores of one test sit on different members.
 *
 * The next test's cluster is started (and has elected its leader) while the current test runs:
 * still a fresh cluster per namespace, without waiting for an election in every test.
 */
export function clusterTarget(size: number, timings: Timings = CONFORMANCE_TIMINGS): ConformanceTarget {
  const startCluster = async (): Promise<LocalRaftCluster> => {
    const cluster = await LocalRaftCluster.start({ size, member: timings });
    try {
      await cluster.ready();
    } catch (error) {
      await cluster.close();
      throw error;
    }
    return cluster;
  };
  let spare: Promise<LocalRaftCluster> | undefined;
  afterAll(async () => {
    const last = spare;
    spare = undefined;
    await (await last?.catch(() => undefined))?.close();
  });
  return {
    name: `raft (${size}-member cluster over TCP)`,
    capabilities: { archive: true, archiveRedeliveryMs: ARCHIVE_LEASE_MS, hub: true, readSide: true },
    timeoutMs: 60_000,
    namespace: async () => {
      const taken = spare ?? startCluster();
      spare = startCluster();
      // A spare that fails is reported by the test that takes it, not as an unhandled rejection now.
      spare.catch(() => undefined);
      const cluster = await taken;
      let next = 0;
      return {
        connect: () => cluster.member(next++ % size).backend({ archiveLeaseMs: ARCHIVE_LEASE_MS }),
        dispose: () => cluster.close(),
      };
    },
  };
}
