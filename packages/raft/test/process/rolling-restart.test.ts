import { afterEach, describe, expect, it } from 'vitest';
import { CRASH_TIMINGS, ProcessCluster } from '../crash/process-cluster.js';
import type { CloseReport } from '../crash/protocol.js';
import { cleanUpRun } from './clean-up.js';
import { LoadBalancedWriter } from './load-balanced-writer.js';
import { storedWrites } from './stored-writes.js';

/**
 * A rolling restart of three member processes on loopback TCP while a client writes through
 * them behind a load balancer: each member in turn is taken out of rotation, stopped with
 * SIGTERM (a clean `close()`, which on a leader hands leadership over first, unless turned off),
 * started again and put back. The longest write pause is printed for both settings (speed is
 * the bench's business, not asserted); correctness is asserted.
 */

/**
 * Election timeouts of 1–2 s (50 ticks × 20 ms): long enough that a busy machine does not start
 * elections of its own during the run, so a leader change seen while a leader closes is the
 * handover (with transfer) or the one election that its absence causes (without).
 */
const TIMINGS = { ...CRASH_TIMINGS, electionTicks: 50 };
const START_MS = 60_000;
const CLOSE_MS = 60_000;

/** One member stopped during the rolling restart, and what it saw just before and after its close. */
interface Stop {
  readonly id: string;
  readonly closing: CloseReport;
  readonly closed: CloseReport;
  /** The longest write pause from taking it out of rotation until the next member's turn, and the member that write went through. */
  readonly pauseMs: number;
  readonly pauseVia: string | null;
}

describe('rolling restart of three member processes under write load', () => {
  let cluster: ProcessCluster | undefined;
  let writer: LoadBalancedWriter | undefined;
  let passed = false;

  afterEach(async () => {
    await cleanUpRun('rolling-restart', cluster, writer, passed);
    cluster = writer = undefined;
    passed = false;
  });

  /** Restarts every member once, the leader first, while writing; checks that nothing acknowledged was lost. */
  async function rollingRestart(transferLeadership: boolean): Promise<Stop[]> {
    const started = Date.now();
    cluster = await ProcessCluster.create(3, null, TIMINGS);
    const c = cluster;
    c.transferLeadershipOnClose = transferLeadership;
    await c.startAll();
    writer = new LoadBalancedWriter(() => c.handles);
    const w = writer;
    w.start();
    await w.more(20);

    // The leader first, so that a leader's close is part of every run; then the others.
    const leader = await c.leader();
    const order = [leader, ...[0, 1, 2].filter((i) => i !== leader)];
    const stops: Stop[] = [];
    for (const i of order) {
      w.resetPause();
      const handle = c.handle(i);
      // The load balancer sends it nothing new, and what it was serving settles, before it stops.
      await w.drain(handle.id);
      await handle.terminate(CLOSE_MS);
      const closing = JSON.parse(handle.report('closing') ?? 'null') as CloseReport;
      const closed = JSON.parse(handle.report('closed') ?? 'null') as CloseReport;
      // The other two go on taking writes while it is down.
      await w.more(10);
      await c.start(i).waitFor('ready', START_MS);
      w.readmit(handle.id);
      await w.more(10);
      stops.push({ id: handle.id, closing, closed, pauseMs: w.longestPauseMs, pauseVia: w.longestPauseVia });
    }
    const pauseMs = Math.max(...stops.map((stop) => stop.pauseMs));
    await w.stop();

    const all = [0, 1, 2];
    await c.converged(all);
    expect(c.crashed(), 'member processes that died on their own').toEqual([]);
    const finalTerm = c.handle(0).status?.term ?? 0;
    await c.closeAll();
    const stored = await storedWrites(c, all, w.acknowledged);
    for (const member of stored) {
      expect(member.missing, `${member.id} lost acknowledged writes (folder ${c.dir})`).toEqual([]);
      expect(member.problems, `${member.id}'s state (folder ${c.dir})`).toEqual([]);
    }
    expect(w.acknowledged.length).toBeGreaterThanOrEqual(80);
    const firstTerm = stops[0]?.closing.term ?? 0;
    console.log(
      `rolling restart (transfer ${transferLeadership ? 'on' : 'off'}): longest write pause ${pauseMs.toFixed(0)} ms; ` +
        `${w.acknowledged.length} writes acknowledged, ${w.failures} failed; terms ${firstTerm} → ${finalTerm}; ` +
        `stops ${stops.map((s) => `${s.id} ${s.closing.role}@${s.closing.term} → leader ${s.closed.leader}@${s.closed.term} (pause ${s.pauseMs.toFixed(0)} ms via ${s.pauseVia})`).join(', ')}; ` +
        `${Date.now() - started} ms in all`,
    );
    return stops;
  }

  it('with leadership transfer: each closing leader hands over in one term, nothing acknowledged lost', { timeout: 120_000 }, async () => {
    const stops = await rollingRestart(true);
    const leaderStops = stops.filter((stop) => stop.closing.role === 'leader');
    expect(leaderStops.length, JSON.stringify(stops)).toBeGreaterThanOrEqual(1);
    for (const stop of leaderStops) {
      // The closing leader saw another member lead before it shut down (the handover, not a later
      // election), one term on: the new leader won the campaign TimeoutNow started, the first one.
      expect(stop.closed.leader, JSON.stringify(stop)).not.toBeNull();
      expect(stop.closed.leader, JSON.stringify(stop)).not.toBe(stop.id);
      expect(stop.closed.term, JSON.stringify(stop)).toBe(stop.closing.term + 1);
    }
    passed = true;
  });

  it('without leadership transfer: the leader just stops, nothing acknowledged lost', { timeout: 120_000 }, async () => {
    const stops = await rollingRestart(false);
    expect(stops.filter((stop) => stop.closing.role === 'leader').length, JSON.stringify(stops)).toBeGreaterThanOrEqual(1);
    passed = true;
  });
});
