import { ConfigError, InvalidArgumentError, StoreClosedError } from '@timebox/core';
import { afterEach, describe, expect, it } from 'vitest';
import { RaftNodeFailedError, RaftUnavailableError } from '../../src/node/errors.js';
import { RaftServer } from '../../src/node/raft-server.js';
import { ServerCluster, waitFor } from './support/cluster.js';
import { CounterStateMachine, encodeCommand } from './support/counter-state.js';
import { InProcessNetwork } from './support/in-process-network.js';
import { MemoryDurableLog } from './support/memory-durable-log.js';

let cluster: ServerCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

describe('RaftServer on one node', () => {
  it('elects itself, proposes and applies, answering with the state machine result', async () => {
    cluster = new ServerCluster(['solo']);
    await cluster.startAll();
    const server = cluster.server('solo');
    await server.ready();
    expect(server.status()).toMatchObject({ lifecycle: 'running', role: 'leader', leader: 'solo' });
    const first = await cluster.propose('solo', 'a', 2);
    const second = await cluster.propose('solo', 'a', 3);
    expect(first.value).toBe(2);
    expect(second.value).toBe(5);
    expect(second.index).toBeGreaterThan(first.index);
    expect(cluster.state('solo').counters.get('a')).toBe(5);
    expect(server.status().applied).toBe(cluster.state('solo').appliedIndex());
  });

  it('batches proposals made during a save into one later write (group commit)', async () => {
    cluster = new ServerCluster(['solo']);
    await cluster.startAll();
    await cluster.server('solo').ready();
    const savesBefore = cluster.log('solo').saves;
    const results = await Promise.all(Array.from({ length: 50 }, () => cluster!.propose('solo', 'k')));
    expect(results.map((r) => r.value).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    // 50 proposals: far fewer saves than proposals proves they shared writes.
    expect(cluster.log('solo').saves - savesBefore).toBeLessThan(25);
  });

  it('carries the proposals of one burst in one envelope entry; each still gets its own result, once', async () => {
    cluster = new ServerCluster(['solo']);
    await cluster.startAll();
    await cluster.server('solo').ready();
    const lastBefore = cluster.storage('solo').lastIndex();
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => cluster!.propose('solo', `k${i % 4}`)));
    // Every result is its own: the four counters each counted to 10.
    for (let k = 0; k < 4; k++)
      expect(results.filter((_, i) => i % 4 === k).map((r) => r.value)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    // One burst, a handful of entries: the proposals shared envelopes, unpacked at their envelope's index.
    const entries = cluster.storage('solo').lastIndex() - lastBefore;
    expect(entries).toBeLessThan(10);
    expect(new Set(results.map((r) => r.index)).size).toBe(entries);
    expect(cluster.state('solo').order).toHaveLength(40);
    expect(cluster.state('solo').duplicates).toBe(0);
  });

  it('restarts from its log and state, and restores a fresh state from the log snapshot', async () => {
    cluster = new ServerCluster(['solo'], { tickMs: 10, electionTicks: 10, heartbeatTicks: 1, snapshotEvery: 5, compactionMargin: 2 });
    await cluster.startAll();
    for (let i = 0; i < 12; i++) await cluster.propose('solo', 'n');
    expect(cluster.log('solo').snapshotsCreated).toBeGreaterThan(0);
    const snapshotIndex = cluster.storage('solo').snapshot().meta.index;
    expect(snapshotIndex).toBeGreaterThan(0);
    expect(cluster.storage('solo').firstIndex()).toBeGreaterThan(1);
    await cluster.stop('solo');

    // Same log, same state: nothing to restore, nothing applied twice.
    await cluster.start('solo');
    await cluster.server('solo').ready();
    expect(cluster.state('solo').restores).toBe(0);
    expect((await cluster.propose('solo', 'n')).value).toBe(13);
    await cluster.stop('solo');

    // A lost state (say, its files were deleted) comes back from the snapshot, then the log tail.
    const fresh = cluster.wipeState('solo');
    await cluster.start('solo');
    expect(fresh.restores).toBe(1);
    await cluster.server('solo').ready();
    expect((await cluster.propose('solo', 'n')).value).toBe(14);
    expect(fresh.order).toHaveLength(14);
  });

  it('close rejects pending proposals and ready() with StoreClosedError, then closes the log', async () => {
    // One of three voters, alone: no leader, so everything stays pending.
    cluster = new ServerCluster(['n1', 'n2', 'n3']);
    const server = await cluster.start('n1');
    const proposal = cluster.propose('n1', 'x');
    const ready = server.ready();
    await waitFor(() => server.status().pendingProposals === 1, 'the proposal to be pending');
    await server.close();
    await expect(proposal).rejects.toBeInstanceOf(StoreClosedError);
    await expect(ready).rejects.toBeInstanceOf(StoreClosedError);
    expect(cluster.log('n1').closed).toBe(true);
    await expect(server.propose(encodeCommand({ key: 'x', by: 1 }))).rejects.toBeInstanceOf(StoreClosedError);
    expect(server.status().lifecycle).toBe('closed');
    await server.close();
  });

  it('rejects a proposal with RaftUnavailableError when no leader appears within the timeout', async () => {
    cluster = new ServerCluster(['n1', 'n2', 'n3'], { tickMs: 10, electionTicks: 10, heartbeatTicks: 1, proposalTimeoutMs: 300 });
    await cluster.start('n1');
    const error = await cluster.propose('n1', 'x').then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RaftUnavailableError);
    expect((error as RaftUnavailableError).message).toMatch(/no leader known within 300 ms \(no leader was ever known\)/);
    expect((error as RaftUnavailableError).reason).toBe('no-leader');
    expect(cluster.state('n1').counters.size).toBe(0);
  });

  it('stops for good when the log fails a write: pending and later calls reject with RaftNodeFailedError', async () => {
    cluster = new ServerCluster(['solo']);
    await cluster.startAll();
    const server = cluster.server('solo');
    await server.ready();
    cluster.log('solo').failNext = new Error('EIO: disk on fire');
    const error = await cluster.propose('solo', 'x').then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RaftNodeFailedError);
    expect((error as RaftNodeFailedError).message).toMatch(/disk on fire/);
    expect(server.status().lifecycle).toBe('failed');
    await expect(cluster.propose('solo', 'y')).rejects.toBeInstanceOf(RaftNodeFailedError);
    expect(cluster.state('solo').counters.size).toBe(0);
  });

  it('stops for good when the state machine fails to apply', async () => {
    cluster = new ServerCluster(['solo']);
    await cluster.startAll();
    await cluster.server('solo').ready();
    cluster.state('solo').failNext = new Error('lmdb: map full');
    await expect(cluster.propose('solo', 'x')).rejects.toThrow(/map full/);
    expect(cluster.server('solo').status().lifecycle).toBe('failed');
    await expect(cluster.server('solo').ready()).rejects.toBeInstanceOf(RaftNodeFailedError);
    await expect(cluster.propose('solo', 'y')).rejects.toBeInstanceOf(RaftNodeFailedError);
  });
});

describe('RaftServer options', () => {
  const base = () => ({
    id: 'n1',
    voters: ['n1'],
    log: new MemoryDurableLog(),
    state: new CounterStateMachine(),
    connect: new InProcessNetwork().connector('n1'),
  });

  it.each([
    ['tickMs', { tickMs: 0 }, /tickMs must be an integer > 0/],
    ['electionTicks', { electionTicks: 1.5 }, /electionTicks must be an integer > 0/],
    ['heartbeatTicks', { electionTicks: 3, heartbeatTicks: 3 }, /heartbeatTicks must be below electionTicks \(3\)/],
    ['proposalTimeoutMs', { proposalTimeoutMs: -1 }, /proposalTimeoutMs must be an integer > 0/],
    ['snapshotEvery', { snapshotEvery: 0 }, /snapshotEvery must be an integer > 0/],
    ['compactionMargin', { compactionMargin: -1 }, /compactionMargin must be an integer ≥ 0/],
    ['voters', { voters: ['n2'] }, /voters must include the local node "n1"/],
    ['id', { id: '' }, /id must be a non-empty string/],
    ['seed', { seed: -2 }, /seed must be an integer ≥ 0/],
    ['log', { log: {} }, /log must have a save\(\) method/],
    ['state', { state: { appliedIndex: () => 0 } }, /state must have a apply\(\) method/],
    ['connect', { connect: 'tcp' }, /connect must be a function/],
  ])('refuses a bad %s with ConfigError', (field, patch, message) => {
    const attempt = () => new RaftServer({ ...base(), ...(patch as object) });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(message);
    try {
      attempt();
    } catch (error) {
      expect((error as ConfigError).field).toBe(field);
    }
  });

  it('refuses a command that is not bytes', async () => {
    const server = new RaftServer(base());
    await expect(server.propose('text' as unknown as Uint8Array)).rejects.toBeInstanceOf(InvalidArgumentError);
    await server.close();
  });
});
