import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { Message, SnapshotRequest } from '../../src/consensus/types.js';
import { LinkFaults } from '../../src/transport/faults.js';
import { closeAll, heartbeat, startCluster, waitFor, type TestNode } from './support.js';

function snapshotMessage(data: Uint8Array): SnapshotRequest {
  return { type: 'snapshot', from: 'a', to: 'b', term: 4, snapshot: { meta: { index: 9000, term: 3, voters: ['a', 'b', 'c'] }, data } };
}

function snapshotsIn(node: TestNode): SnapshotRequest[] {
  return node.received.filter((message): message is SnapshotRequest => message.type === 'snapshot');
}

describe('TcpTransport snapshot streams', { timeout: 120_000 }, () => {
  let nodes = new Map<string, TestNode>();
  afterEach(async () => closeAll(nodes.values()));

  it('streams a 20 MB snapshot in chunks while heartbeats keep arriving, and reports it sent', async () => {
    const faults = new LinkFaults();
    const chunkBytes = 256 * 1024;
    nodes = await startCluster(['a', 'b'], { faults, chunkBytes });
    const a = nodes.get('a') as TestNode;
    const b = nodes.get('b') as TestNode;
    // Slow the stream down (each chunk waits 10 ms: 80 chunks, about a second) so that heartbeats
    // sent meanwhile would visibly queue behind it if they shared its connection.
    faults.delay('a', 'b', 10);
    const data = randomBytes(20 * 1024 * 1024);
    let commit = 0;
    a.transport.send(heartbeat('a', 'b', commit++));
    await waitFor(() => b.received.length === 1, 'the first heartbeat');
    a.transport.send(snapshotMessage(data));
    const beat = setInterval(() => a.transport.send(heartbeat('a', 'b', commit++)), 5);
    try {
      await waitFor(() => snapshotsIn(b).length === 1, 'the snapshot');
    } finally {
      clearInterval(beat);
    }
    const snapshotIndex = b.received.findIndex((message) => message.type === 'snapshot');
    const delivered = snapshotsIn(b)[0] as SnapshotRequest;
    expect({ ...delivered, snapshot: { ...delivered.snapshot, data: null } }).toEqual({
      ...snapshotMessage(data),
      snapshot: { ...snapshotMessage(data).snapshot, data: null },
    });
    expect(Buffer.from(delivered.snapshot.data).equals(data)).toBe(true);

    // It came in chunks.
    expect(b.progress.length).toBe(data.length / chunkBytes);
    expect(b.progress.every((step) => step.from === 'a' && step.totalBytes === data.length)).toBe(true);
    expect(b.progress.at(-1)?.receivedBytes).toBe(data.length);
    // Heartbeats delivered between the first chunk's arrival and the snapshot's completion.
    const firstChunkAt = b.progress[0]?.at as number;
    const completedAt = b.arrivals[snapshotIndex] as number;
    const during = b.received.filter(
      (message, index) => message.type === 'heartbeat' && (b.arrivals[index] as number) >= firstChunkAt && index < snapshotIndex,
    );
    expect(during.length).toBeGreaterThanOrEqual(5);
    expect(completedAt).toBeGreaterThan(firstChunkAt);

    await waitFor(() => a.snapshotsSent.length === 1, 'onSnapshotSent');
    expect(a.snapshotsSent).toEqual([{ peer: 'b', ok: true }]);
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
  });

  it('an empty and a small snapshot arrive whole (one chunk or none)', async () => {
    nodes = await startCluster(['a', 'b']);
    const a = nodes.get('a') as TestNode;
    const b = nodes.get('b') as TestNode;
    a.transport.send(snapshotMessage(new Uint8Array(0)));
    a.transport.send(snapshotMessage(Uint8Array.from([1, 2, 3])));
    await waitFor(() => a.snapshotsSent.length === 2, 'both reports');
    expect(a.snapshotsSent).toEqual([
      { peer: 'b', ok: true },
      { peer: 'b', ok: true },
    ]);
    const sizes = snapshotsIn(b)
      .map((message) => message.snapshot.data.length)
      .sort();
    expect(sizes).toEqual([0, 3]);
  });

  it('a transfer cut by closing the receiver reports onSnapshotSent(peer, false)', async () => {
    const faults = new LinkFaults();
    nodes = await startCluster(['a', 'b'], { faults, chunkBytes: 64 * 1024 });
    const a = nodes.get('a') as TestNode;
    const b = nodes.get('b') as TestNode;
    faults.delay('a', 'b', 20);
    a.transport.send(snapshotMessage(randomBytes(20 * 1024 * 1024)));
    await waitFor(() => b.progress.length >= 2, 'the transfer under way');
    await b.transport.close();
    await waitFor(() => a.snapshotsSent.length === 1, 'the failure report');
    expect(a.snapshotsSent).toEqual([{ peer: 'b', ok: false }]);
    expect(snapshotsIn(b)).toEqual([]);
  });

  it('a transfer to a peer that is down fails and is reported', async () => {
    nodes = await startCluster(['a', 'b']);
    const a = nodes.get('a') as TestNode;
    await (nodes.get('b') as TestNode).transport.close();
    a.transport.send(snapshotMessage(randomBytes(1024)));
    await waitFor(() => a.snapshotsSent.length === 1, 'the failure report');
    expect(a.snapshotsSent).toEqual([{ peer: 'b', ok: false }]);
    expect(a.unreachable).toContain('b');
  });

  it('a snapshot stream into a blackhole fails; one cut mid-way by a partition fails too', async () => {
    const faults = new LinkFaults();
    nodes = await startCluster(['a', 'b'], { faults, chunkBytes: 64 * 1024 });
    const a = nodes.get('a') as TestNode;
    const b = nodes.get('b') as TestNode;
    faults.blackhole('a', 'b');
    a.transport.send(snapshotMessage(randomBytes(1024)));
    await waitFor(() => a.snapshotsSent.length === 1, 'the blackhole report');
    faults.healAll().delay('a', 'b', 20);
    a.transport.send(snapshotMessage(randomBytes(8 * 1024 * 1024)));
    await waitFor(() => b.progress.length >= 2, 'the transfer under way');
    faults.partition(['a'], ['b']);
    await waitFor(() => a.snapshotsSent.length === 2, 'the partition report');
    expect(a.snapshotsSent).toEqual([
      { peer: 'b', ok: false },
      { peer: 'b', ok: false },
    ]);
    expect(snapshotsIn(b)).toEqual([]);
    await waitFor(() => b.errors.length > 0, 'the receiver to notice the cut stream');
    expect(b.errors[0]?.message).toMatch(/snapshot stream from "a" was cut after \d+ of 8388608 bytes/);
  });

  it('messages on the main connection are not affected by a snapshot stream failing', async () => {
    const faults = new LinkFaults();
    nodes = await startCluster(['a', 'b'], { faults });
    const a = nodes.get('a') as TestNode;
    const b = nodes.get('b') as TestNode;
    faults.blackhole('a', 'b');
    a.transport.send(snapshotMessage(randomBytes(1024)));
    faults.healAll();
    const sent: Message[] = [];
    for (let index = 0; index < 100; index++) {
      const message = heartbeat('a', 'b', index);
      sent.push(message);
      a.transport.send(message);
    }
    await waitFor(() => b.received.length === 100, 'the heartbeats');
    expect(b.received).toEqual(sent);
  });
});
