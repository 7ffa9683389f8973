import { InvalidArgumentError } from '@timebox/core';
import { afterEach, describe, expect, it } from 'vitest';
import { LinkFaults } from '../../src/transport/faults.js';
import { closeAll, commitsFrom, heartbeat, startCluster, waitFor, type TestNode } from './support.js';

describe('LinkFaults rules', { timeout: 60_000 }, () => {
  it('decides per directed link; blackhole wins over drop, drop over delay', () => {
    const faults = new LinkFaults();
    expect(faults.verdict('a', 'b')).toEqual({ kind: 'deliver', delayMs: 0 });
    faults.delay('a', 'b', 30);
    expect(faults.verdict('a', 'b')).toEqual({ kind: 'deliver', delayMs: 30 });
    expect(faults.verdict('b', 'a')).toEqual({ kind: 'deliver', delayMs: 0 });
    faults.drop('a', 'b');
    expect(faults.verdict('a', 'b')).toEqual({ kind: 'drop' });
    faults.blackhole('a', 'b');
    expect(faults.verdict('a', 'b')).toEqual({ kind: 'blackhole' });
    faults.heal('a', 'b');
    expect(faults.verdict('a', 'b')).toEqual({ kind: 'deliver', delayMs: 0 });
  });

  it('isolate, partition and the heal forms', () => {
    const faults = new LinkFaults();
    faults.isolate('c');
    for (const [from, to] of [
      ['a', 'c'],
      ['c', 'a'],
      ['c', 'z'],
      ['z', 'c'],
    ] as const)
      expect(faults.verdict(from, to).kind).toBe('blackhole');
    expect(faults.verdict('a', 'b').kind).toBe('deliver');
    faults.heal('a', 'c'); // a link heal leaves an isolated endpoint isolated
    expect(faults.verdict('a', 'c').kind).toBe('blackhole');
    faults.heal('c');
    expect(faults.verdict('a', 'c').kind).toBe('deliver');

    faults.partition(['a'], ['b', 'c']);
    for (const [from, to] of [
      ['a', 'b'],
      ['b', 'a'],
      ['a', 'c'],
      ['c', 'a'],
    ] as const)
      expect(faults.verdict(from, to).kind).toBe('blackhole');
    expect(faults.verdict('b', 'c').kind).toBe('deliver');
    faults.heal(undefined, 'b'); // one node given: every link to or from it
    expect(faults.verdict('a', 'b').kind).toBe('deliver');
    expect(faults.verdict('b', 'a').kind).toBe('deliver');
    expect(faults.verdict('a', 'c').kind).toBe('blackhole');
    faults.heal();
    expect(faults.verdict('a', 'c').kind).toBe('deliver');
  });

  it('drops with a seeded probability: same seed, same losses', () => {
    const run = (seed: number): boolean[] => {
      const faults = new LinkFaults({ seed }).drop('a', 'b', 0.3);
      return Array.from({ length: 2000 }, () => faults.verdict('a', 'b').kind === 'drop');
    };
    const first = run(42);
    expect(run(42)).toEqual(first);
    expect(run(43)).not.toEqual(first);
    const dropped = first.filter(Boolean).length;
    expect(dropped).toBeGreaterThan(450);
    expect(dropped).toBeLessThan(750);
  });

  it('refuses bad arguments with InvalidArgumentError', () => {
    const faults = new LinkFaults();
    expect(() => faults.drop('a', 'b', 1.5)).toThrow(InvalidArgumentError);
    expect(() => faults.delay('a', 'b', -1)).toThrow(/ms/);
    expect(() => faults.blackhole('', 'b')).toThrow(/from/);
    expect(() => faults.partition(['a', 'b'], ['b'])).toThrow(/"b" is in both/);
    expect(() => new LinkFaults({ seed: 1.5 })).toThrow(/seed/);
  });
});

describe('LinkFaults on live transports', { timeout: 60_000 }, () => {
  let nodes = new Map<string, TestNode>();
  afterEach(async () => closeAll(nodes.values()));

  function node(id: string): TestNode {
    return nodes.get(id) as TestNode;
  }

  let counter = 0;
  /** Sends one numbered heartbeat per link given, returning its number. */
  function send(from: string, to: string): number {
    const commit = counter++;
    node(from).transport.send(heartbeat(from, to, commit));
    return commit;
  }

  /**
   * Proves `commit` never arrives on from→to without sleeping: after healing, a later message on
   * the same (ordered) link arrives, so anything sent before it would have arrived first.
   */
  async function expectLost(from: string, to: string, commits: readonly number[], faults: LinkFaults): Promise<void> {
    faults.heal(from, to);
    const probe = send(from, to);
    await waitFor(() => commitsFrom(node(to), from).includes(probe), `the probe on ${from}→${to}`);
    for (const commit of commits) expect(commitsFrom(node(to), from)).not.toContain(commit);
  }

  async function setUp(): Promise<LinkFaults> {
    const faults = new LinkFaults({ seed: 7 });
    nodes = await startCluster(['a', 'b', 'c'], { faults });
    // Open every connection first, so losses below are the faults' doing, not connection setup.
    for (const from of ['a', 'b', 'c']) for (const to of ['a', 'b', 'c']) if (from !== to) send(from, to);
    await waitFor(() => [...nodes.values()].every((each) => each.received.length === 2), 'the warm-up');
    for (const each of nodes.values()) each.unreachable.length = 0;
    return faults;
  }

  it('drop loses messages and reports the peer unreachable; heal restores the link', async () => {
    const faults = await setUp();
    faults.drop('a', 'b');
    const lost = [send('a', 'b'), send('a', 'b')];
    const kept = send('b', 'a'); // the other direction is a different link
    await waitFor(() => node('a').unreachable.includes('b'), 'the unreachable report');
    await waitFor(() => commitsFrom(node('a'), 'b').includes(kept), 'b→a');
    await expectLost('a', 'b', lost, faults);
  });

  it('drop with a probability loses about that share, keeping order among the rest', async () => {
    const faults = await setUp();
    faults.drop('a', 'b', 0.5);
    const sent = Array.from({ length: 1000 }, () => send('a', 'b'));
    faults.heal('a', 'b');
    const last = send('a', 'b');
    await waitFor(() => commitsFrom(node('b'), 'a').includes(last), 'the last message');
    const arrived = commitsFrom(node('b'), 'a').filter((commit) => sent.includes(commit));
    expect(arrived.length).toBeGreaterThan(350);
    expect(arrived.length).toBeLessThan(650);
    expect(arrived).toEqual([...arrived].sort((x, y) => x - y));
  });

  it('delay holds messages for the given time and keeps their order when the delay ends', async () => {
    const faults = await setUp();
    faults.delay('a', 'b', 300);
    const sentAt = Date.now();
    const delayed = Array.from({ length: 50 }, () => send('a', 'b'));
    faults.heal('a', 'b');
    const after = Array.from({ length: 50 }, () => send('a', 'b')); // must queue behind the delayed ones
    const direct = send('a', 'c');
    await waitFor(() => commitsFrom(node('c'), 'a').includes(direct), 'the undelayed link');
    await waitFor(() => commitsFrom(node('b'), 'a').includes(after.at(-1) as number), 'the delayed messages');
    const b = node('b');
    const firstIndex = b.received.findIndex((message) => message.type === 'heartbeat' && message.commit === delayed[0]);
    expect((b.arrivals[firstIndex] as number) - sentAt).toBeGreaterThanOrEqual(290);
    expect(commitsFrom(b, 'a').slice(-100)).toEqual([...delayed, ...after]);
  });

  it('blackhole makes messages vanish silently, one direction only', async () => {
    const faults = await setUp();
    faults.blackhole('a', 'b');
    const lost = [send('a', 'b'), send('a', 'b')];
    const kept = send('b', 'a');
    await waitFor(() => commitsFrom(node('a'), 'b').includes(kept), 'b→a');
    await expectLost('a', 'b', lost, faults);
    expect(node('a').unreachable).toEqual([]);
  });

  it('isolate cuts every link to and from a node; the others still talk', async () => {
    const faults = await setUp();
    faults.isolate('c');
    const lost = { ac: send('a', 'c'), ca: send('c', 'a'), bc: send('b', 'c'), cb: send('c', 'b') };
    const kept = send('a', 'b');
    await waitFor(() => commitsFrom(node('b'), 'a').includes(kept), 'a→b');
    faults.heal('c');
    await expectLost('a', 'c', [lost.ac], faults);
    await expectLost('c', 'a', [lost.ca], faults);
    await expectLost('b', 'c', [lost.bc], faults);
    await expectLost('c', 'b', [lost.cb], faults);
    for (const each of nodes.values()) expect(each.unreachable).toEqual([]);
  });

  it('partition cuts both directions between the groups only; healAll restores everything', async () => {
    const faults = await setUp();
    faults.partition(['a'], ['b', 'c']);
    const lost = { ab: send('a', 'b'), ba: send('b', 'a'), ac: send('a', 'c'), ca: send('c', 'a') };
    const kept = send('b', 'c');
    await waitFor(() => commitsFrom(node('c'), 'b').includes(kept), 'b→c inside the group');
    faults.healAll();
    for (const [link, commit] of Object.entries(lost)) {
      const [from, to] = [link[0] as string, link[1] as string];
      const probe = send(from, to);
      await waitFor(() => commitsFrom(node(to), from).includes(probe), `the probe on ${from}→${to}`);
      expect(commitsFrom(node(to), from)).not.toContain(commit);
    }
  });
});
