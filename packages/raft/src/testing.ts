/**
 * Helpers for testing an application's own failover against a real cluster: a fault injector to
 * pass as a member's `faults` option (drops, delays, black-holes and partitions between members)
 * and a free loopback port for members opened by hand.
 *
 * ```ts
 * import { startLocalCluster } from '@timebox/raft';
 * import { LinkFaults } from '@timebox/raft/testing';
 *
 * const faults = new LinkFaults();
 * const cluster = await startLocalCluster({ size: 3, member: { faults } });
 * faults.isolate('n1'); // n1 can neither send nor receive until faults.heal()
 * ```
 *
 * @packageDocumentation
 */
export { LinkFaults, type LinkFaultsOptions, type LinkVerdict } from './transport/faults.js';
export { freeLoopbackPort } from './local-cluster.js';
