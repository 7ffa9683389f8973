import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../crash/member-handle.js';
import { CRASH_TIMINGS, ProcessCluster } from '../crash/process-cluster.js';
import { cleanUpRun } from './clean-up.js';
import { LoadBalancedWriter } from './load-balanced-writer.js';
import { storedWrites } from './stored-writes.js';

/**
 * A member's machine dies for good while the cluster takes writes, and a new machine takes its
 * place: three members as OS processes on loopback TCP; the victim's process is SIGKILLed and
 * its data folder deleted; the leader removes it; a brand-new member process (a new ID) joins,
 * is added as a learner, catches up by InstallSnapshot (the survivors compacted their logs) and
 * is promoted. Writes go on throughout, through a member that stays.
 */

/** Small snapshots and margins: the survivors compact their logs quickly, so the newcomer needs a snapshot. */
const TIMINGS = { ...CRASH_TIMINGS, electionTicks: 25, snapshotEvery: 20, compactionMargin: 5 };
/** Generous: a 2-core machine shared with other test runs. */
const START_MS = 60_000;

describe('replacing a killed member process under write load', () => {
  let cluster: ProcessCluster | undefined;
  let writer: LoadBalancedWriter | undefined;
  let passed = false;

  afterEach(async () => {
    await cleanUpRun('replace-member', cluster, writer, passed);
    cluster = writer = undefined;
    passed = false;
  });

  it(
    'SIGKILL, delete its data, remove it, join a new member by snapshot, promote it: nothing acknowledged lost',
    { timeout: 120_000 },
    async () => {
      const started = Date.now();
      cluster = await ProcessCluster.create(3, null, TIMINGS);
      const c = cluster;
      await c.startAll();
      // Writes go through n1, which stays; the victim is a follower other than n1.
      const via = 0;
      writer = new LoadBalancedWriter(() => [c.handles[via]]);
      writer.start();
      await writer.more(20);

      const leader = await c.leader();
      const victim = [1, 2].find((i) => i !== leader) as number;
      const victimId = c.handle(victim).id;
      const survivors = [0, 1, 2].filter((i) => i !== victim);
      await c.kill([victim]);
      rmSync(c.members[victim]?.dataDir as string, { recursive: true, force: true });
      await writer.more(20);
      // The survivors' logs no longer start at index 1: a new member can only catch up by InstallSnapshot.
      await c.compactedPast(1, survivors, 60_000);

      await c.callLeader('remove', [victimId], survivors);
      const fresh = await c.join('n4');
      const newcomer = c.start(fresh);
      // A joining member knows no leader (and is not ready) until the leader adds it.
      await newcomer.waitFor('open', START_MS);
      await c.callLeader('add-learner', ['n4', c.members[fresh]?.address as string], survivors);
      await newcomer.waitFor('ready', START_MS);
      await writer.more(10);
      // Caught up: the newcomer applied what the leader had committed a moment ago.
      const target = c.handle(await c.leader(30_000, survivors)).status?.commit ?? 0;
      await waitFor(
        () => (newcomer.status?.applied ?? 0) >= target,
        60_000,
        () => `n4 to apply index ${target}; ${c.describe()}`,
      );
      const running = [...survivors, fresh];
      await c.callLeader('promote', ['n4'], running);
      await writer.more(20);
      await writer.stop();

      await c.converged(running);
      const configuration = c.handle(await c.leader(30_000, running)).status;
      const expectedVoters = running.map((i) => c.members[i]?.localId).sort();
      expect([...(configuration?.voters ?? [])].sort(), c.describe()).toEqual(expectedVoters);
      expect(configuration?.learners, c.describe()).toEqual([]);
      expect(newcomer.status?.restores, `n4 installed no snapshot; ${c.describe()}`).toBeGreaterThanOrEqual(1);
      expect(c.crashed(), 'member processes that died on their own').toEqual([]);

      await c.closeAll();
      const stored = await storedWrites(c, running, writer.acknowledged);
      for (const member of stored) {
        expect(member.missing, `${member.id} lost acknowledged writes (folder ${c.dir})`).toEqual([]);
        expect(member.problems, `${member.id}'s state (folder ${c.dir})`).toEqual([]);
      }
      expect(writer.acknowledged.length).toBeGreaterThanOrEqual(70);
      console.log(
        `replace-member: ${writer.acknowledged.length} writes acknowledged, ${writer.failures} failed, ` +
          `longest write pause ${writer.longestPauseMs.toFixed(0)} ms, ${Date.now() - started} ms in all`,
      );
      passed = true;
    },
  );
});
