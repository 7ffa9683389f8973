import { createServer, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Message } from '../../src/consensus/types.js';
import { decodeOwnedMessage } from '../../src/transport/codec.js';
import { FrameKind, FrameReader } from '../../src/transport/frames.js';
import { closeAll, commitsFrom, heartbeat, startNode, waitFor, type TestNode } from './support.js';

/** A heartbeat padded to about 1 KiB through its context, so queue bounds are easy to reason about. */
function padded(from: string, to: string, commit: number): Message {
  return heartbeat(from, to, commit, 'x'.repeat(1000));
}

describe('TcpTransport reconnect', { timeout: 60_000 }, () => {
  const open: TestNode[] = [];
  afterEach(async () => {
    await closeAll(open.splice(0));
  });

  async function node(id: string, options: Parameters<typeof startNode>[1] = {}): Promise<TestNode> {
    const started = await startNode(id, options);
    open.push(started);
    return started;
  }

  /** Keeps sending numbered heartbeats from `a` to `b` until `b` got one at or above `from`. */
  async function sendUntilReceived(a: TestNode, b: TestNode, from: number): Promise<number> {
    let commit = from;
    const deadline = Date.now() + 20_000;
    while (!commitsFrom(b, 'a').some((value) => value >= from)) {
      if (Date.now() > deadline) throw new Error(`b never received a message numbered ${from} or above`);
      a.transport.send(heartbeat('a', 'b', commit++));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return commit;
  }

  it('a peer restarted on the same port gets messages again; sends while it is down are dropped, reported, bounded', async () => {
    const maxQueueBytes = 64 * 1024;
    const a = await node('a', { maxQueueBytes });
    let b = await node('b');
    const port = b.transport.address.split(':').pop() as string;
    a.transport.setPeer('b', b.transport.address);
    await sendUntilReceived(a, b, 0);

    await b.transport.close();
    // Wait until a noticed: its connection closed and it reported b unreachable.
    await waitFor(() => a.unreachable.includes('b'), 'a to report b unreachable');
    const reportsBefore = a.unreachable.length;
    const downSent = 5000;
    for (let index = 0; index < downSent; index++) {
      a.transport.send(padded('a', 'b', 1_000_000 + index));
      // Spread over about a second, so several rate-limit intervals pass.
      if (index % 100 === 99) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const reports = a.unreachable.length - reportsBefore;
    expect(reports).toBeGreaterThanOrEqual(1);
    expect(reports).toBeLessThan(downSent / 10); // rate-limited, not once per message

    b = await node('b', { listen: `127.0.0.1:${port}` });
    await sendUntilReceived(a, b, 2_000_000);
    // Of the ~5 MB sent while b was down, at most the queue bound (plus one message) was kept for it.
    const downDelivered = commitsFrom(b, 'a').filter((value) => value >= 1_000_000 && value < 2_000_000);
    expect(downDelivered.length * 1000).toBeLessThanOrEqual(maxQueueBytes + 1100);
    // Whatever was delivered came in order.
    const all = commitsFrom(b, 'a');
    expect(all).toEqual([...all].sort((x, y) => x - y));
    expect(a.errors).toEqual([]);
  });

  it('a peer that stops reading: at most the queue bound is buffered, the rest dropped and reported', async () => {
    const maxQueueBytes = 256 * 1024;
    const a = await node('a', { maxQueueBytes });
    // A raw receiver that accepts, then does not read until told to.
    const sockets: Socket[] = [];
    const decoded: Message[] = [];
    const server = createServer((socket) => {
      sockets.push(socket);
      socket.pause();
      const reader = new FrameReader(16 << 20);
      socket.on('data', (chunk: Buffer) =>
        reader.push(chunk, (kind, body, owned) => {
          if (kind === FrameKind.message) decoded.push(decodeOwnedMessage(body, owned));
        }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      a.transport.setPeer('b', `127.0.0.1:${(server.address() as AddressInfo).port}`);
      a.transport.send(padded('a', 'b', 0));
      await waitFor(() => sockets.length === 1, 'the connection');
      const sent = 50_000; // ~50 MB, far beyond the bound and the kernel's socket buffers
      for (let index = 1; index <= sent; index++) {
        a.transport.send(padded('a', 'b', index));
        if (index % 500 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
      }
      expect(a.unreachable).toContain('b');
      for (const socket of sockets) socket.resume();
      const sentinel = 10_000_000;
      let next = sentinel;
      await waitFor(() => {
        a.transport.send(heartbeat('a', 'b', next++));
        return decoded.some((message) => message.type === 'heartbeat' && message.commit >= sentinel);
      }, 'the sentinel after resuming');
      const early = decoded.filter((message) => message.type === 'heartbeat' && message.commit <= sent);
      // Buffered: the queue bound plus what the kernel's socket buffers held; far from all 50,000.
      expect(early.length).toBeLessThan(sent / 4);
      const commits = decoded.map((message) => (message.type === 'heartbeat' ? message.commit : -1));
      expect(commits).toEqual([...commits].sort((x, y) => x - y));
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('a restarted peer that connects is dialed back at once, not at the end of the redial backoff', async () => {
    // A backoff far longer than the test may take: only the peer's own connection can end it.
    const a = await node('a', { reconnect: { initialMs: 60_000, maxMs: 60_000 } });
    let b = await node('b');
    const port = b.transport.address.split(':').pop() as string;
    a.transport.setPeer('b', b.transport.address);
    await sendUntilReceived(a, b, 0);
    await b.transport.close();
    await waitFor(() => a.unreachable.includes('b'), 'a to report b unreachable (its link now waits 30–60 s to redial)');

    b = await node('b', { listen: `127.0.0.1:${port}` });
    b.transport.setPeer('a', a.transport.address);
    b.transport.send(heartbeat('b', 'a', 1));
    await waitFor(() => commitsFrom(a, 'b').includes(1), 'b to reach a');
    // Without the redial, a's sends to b would be dropped for the rest of the backoff (past the
    // 20 s within which this must get one through).
    await sendUntilReceived(a, b, 1000);
    expect(a.errors).toEqual([]);
  });

  it('a peer that moved to another port is reached after setPeer', async () => {
    const a = await node('a');
    const b = await node('b');
    a.transport.setPeer('b', b.transport.address);
    await sendUntilReceived(a, b, 0);
    await b.transport.close();

    const moved = await node('b');
    expect(moved.transport.address).not.toBe(b.transport.address);
    a.transport.setPeer('b', moved.transport.address);
    await sendUntilReceived(a, moved, 1000);
    expect(a.errors).toEqual([]);
  });

  it('a peer that was never up is reported unreachable, and reached once it starts', async () => {
    const a = await node('a', { reconnect: { initialMs: 10, maxMs: 100 } });
    const probe = await node('probe');
    const freePort = probe.transport.address.split(':').pop() as string;
    await probe.transport.close();
    a.transport.setPeer('b', `127.0.0.1:${freePort}`);
    a.transport.send(heartbeat('a', 'b', 0));
    await waitFor(() => a.unreachable.includes('b'), 'b unreachable');
    const b = await node('b', { listen: `127.0.0.1:${freePort}` });
    await sendUntilReceived(a, b, 0);
  });

  it('messages to a peer with no known address are reported unreachable, never thrown', async () => {
    const a = await node('a');
    expect(() => a.transport.send(heartbeat('a', 'nobody', 1))).not.toThrow();
    await waitFor(() => a.unreachable.includes('nobody'), 'nobody unreachable');
  });

  it('after close, send is a silent no-op and close is idempotent', async () => {
    const a = await node('a');
    const b = await node('b');
    a.transport.setPeer('b', b.transport.address);
    await a.transport.close();
    await a.transport.close();
    expect(() => a.transport.send(heartbeat('a', 'b', 1))).not.toThrow();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(b.received).toEqual([]);
    expect(a.unreachable).toEqual([]);
  });
});
