import { performance } from 'node:perf_hooks';
import { InvalidArgumentError, type Store } from '@timebox/core';
import { afterEach, describe, expect, it } from 'vitest';
import { RAFT_DEFAULTS } from '../../src/consensus/config.js';
import { transportLimitsFor } from '../../src/entry-limits.js';
import { RaftEntryTooLargeError } from '../../src/errors.js';
import { MEMBER_DEFAULTS } from '../../src/options.js';
import { encodeCommand, type CommandResult } from '../../src/state/commands.js';
import { LocalCluster } from '../member/support.js';
import { storeOn } from './support.js';

// The event of issue 19: 17 MiB of payload, over the transport's old fixed 16 MiB frame limit.
const BIG = 17 * 2 ** 20;
const bigEvent = () => [{ type: 'E', data: { s: 'y'.repeat(BIG) } }];
const small = (n: number) => [{ type: 'Small', data: { n } }];

/** Payload sizes of `id`'s events as member `i`'s local state holds them (sizes: the payloads are megabytes). */
function payloadSizes(cluster: LocalCluster, i: number, id: string[]): number[] {
  return cluster
    .member(i)
    .state.loadEvents(id, 0)
    .map((event) => event.data.length);
}

/** One small append through each member's store, one after another, then every member agrees. */
async function writeThroughEveryMember(cluster: LocalCluster, stores: readonly Store[], id: string[]): Promise<void> {
  for (const [i, store] of stores.entries()) await store.appendEvents(id, i, small(i));
  await cluster.converged();
  for (let i = 0; i < stores.length; i++) expect(payloadSizes(cluster, i, id)).toHaveLength(stores.length);
}

describe('entry limits on a three-member cluster over TCP', () => {
  let cluster: LocalCluster | undefined;
  const stores: Store[] = [];

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
    await cluster?.close();
    cluster = undefined;
  });

  async function start(extra: Parameters<typeof LocalCluster.start>[1] = {}): Promise<LocalCluster> {
    cluster = await LocalCluster.start(3, extra);
    for (let i = 0; i < 3; i++) stores.push(storeOn(cluster, i));
    await Promise.all(stores.map((store) => store.ready()));
    return cluster;
  }

  it(
    'issue 19: a 17 MiB event is refused at once with RaftEntryTooLargeError, on the leader and on a follower, and every member keeps taking writes',
    { timeout: 90_000 },
    async () => {
      const cluster = await start();
      const leader = await cluster.leader();
      const follower = (leader + 1) % 3;
      await cluster.converged();
      const before = cluster.member(leader).status().lastIndex;

      for (const i of [leader, follower]) {
        const started = performance.now();
        const error = await stores[i]!.appendEvents(['big'], 0, bigEvent()).then(
          () => null,
          (e: unknown) => e,
        );
        const elapsed = performance.now() - started;
        expect(error).toBeInstanceOf(RaftEntryTooLargeError);
        // Users who handle bad input already catch it.
        expect(error).toBeInstanceOf(InvalidArgumentError);
        const tooLarge = error as RaftEntryTooLargeError;
        expect(tooLarge.code).toBe('INVALID_ARGUMENT');
        expect(tooLarge.limit).toBe(MEMBER_DEFAULTS.maxEntryBytes);
        expect(tooLarge.bytes).toBeGreaterThan(BIG);
        expect(tooLarge.message).toContain(`maxEntryBytes of ${MEMBER_DEFAULTS.maxEntryBytes} (8 MiB)`);
        // Refused before it was proposed, not after the proposal timeout (10 s) as in the issue.
        expect(elapsed).toBeLessThan(MEMBER_DEFAULTS.proposalTimeoutMs / 2);
      }

      // Nothing reached the log, and nothing was stored.
      expect(cluster.member(leader).status().lastIndex).toBe(before);
      for (let i = 0; i < 3; i++) expect(await stores[i]!.getEvents(['big'])).toEqual([]);
      await writeThroughEveryMember(cluster, stores, ['after']);
    },
  );

  it(
    'with maxEntryBytes raised to 20 MiB, the 17 MiB event is accepted, commits through a follower and reaches every member',
    { timeout: 120_000 },
    async () => {
      const cluster = await start({ maxEntryBytes: 20 << 20 });
      const leader = await cluster.leader();
      const follower = (leader + 1) % 3;
      await stores[follower]!.appendEvents(['big'], 0, bigEvent());
      await cluster.converged();
      for (let i = 0; i < 3; i++) expect(payloadSizes(cluster, i, ['big'])).toEqual([BIG + '{"s":""}'.length]);
      await writeThroughEveryMember(cluster, stores, ['after']);
    },
  );

  it(
    'an entry over maxEntryBytes that got into the log anyway (proposed below the check) is still replicated alone, and later writes succeed',
    { timeout: 120_000 },
    async () => {
      const cluster = await start();
      const leader = await cluster.leader();
      const follower = (leader + 1) % 3;
      // The 17 MiB of issue 19: over maxEntryBytes (8 MiB), the append messages' size budget (1 MiB)
      // and the frame limit (16 MiB and a little): it travels alone, in several frames.
      const payload = JSON.stringify({ s: 'z'.repeat(BIG) });
      const command = encodeCommand({
        type: 'append',
        id: ['injected'],
        expectedSequence: 0,
        events: [{ type: 'E', sequence: 0, timestamp: Date.now(), data: payload }],
      });
      expect(command.byteLength).toBeGreaterThan(
        transportLimitsFor(MEMBER_DEFAULTS.maxEntryBytes, RAFT_DEFAULTS.maxMessageBytes).maxFrameBytes,
      );
      // Small writes in flight around it share append messages with it where they fit.
      const around = [stores[leader]!.appendEvents(['around'], 0, small(0))];
      const result: CommandResult = await cluster.member(follower).server.propose(command);
      around.push(stores[follower]!.appendEvents(['around'], 1, small(1)));
      await Promise.all(around);
      expect(result).toMatchObject({ type: 'appended', count: 1 });
      await cluster.converged();
      for (let i = 0; i < 3; i++) expect(payloadSizes(cluster, i, ['injected'])).toEqual([payload.length]);
      await writeThroughEveryMember(cluster, stores, ['after']);
    },
  );
});
