import { afterEach, describe, expect, it } from 'vitest';
import type { Message } from '../../src/consensus/types.js';
import { closeAll, commitsFrom, heartbeat, nextTick, startCluster, waitFor, type TestNode } from './support.js';

const MESSAGES_PER_LINK = 10_000;

function withHexData(message: Message): unknown {
  if (message.type !== 'append') return message;
  return { ...message, entries: message.entries.map((entry) => ({ ...entry, data: Buffer.from(entry.data).toString('hex') })) };
}

describe('TcpTransport delivery', { timeout: 60_000 }, () => {
  let nodes: Map<string, TestNode> = new Map();
  afterEach(async () => closeAll(nodes.values()));

  it('three transports exchange 10,000 messages per link, all delivered in order', async () => {
    nodes = await startCluster(['a', 'b', 'c']);
    const ids = [...nodes.keys()];
    // Sent in bursts across ticks, so both the coalesced write of a tick and many writes are exercised.
    for (let sent = 0; sent < MESSAGES_PER_LINK;) {
      const burst = Math.min(MESSAGES_PER_LINK - sent, 1 + (sent % 700));
      for (let index = sent; index < sent + burst; index++) {
        for (const from of ids) {
          for (const to of ids) if (from !== to) nodes.get(from)?.transport.send(heartbeat(from, to, index));
        }
      }
      sent += burst;
      await nextTick();
    }
    const expected = Array.from({ length: MESSAGES_PER_LINK }, (_, index) => index);
    await waitFor(() => [...nodes.values()].every((node) => node.received.length === 2 * MESSAGES_PER_LINK), 'every message');
    for (const node of nodes.values()) {
      for (const from of ids) if (from !== node.id) expect(commitsFrom(node, from)).toEqual(expected);
      expect(node.errors).toEqual([]);
      expect(node.unreachable).toEqual([]);
      for (const message of node.received) expect(message.to).toBe(node.id);
    }
  });

  it('carries appends with raw entry bytes intact', async () => {
    nodes = await startCluster(['a', 'b']);
    const appends: Message[] = [];
    for (let index = 0; index < 200; index++) {
      appends.push({
        type: 'append',
        from: 'a',
        to: 'b',
        term: 2,
        prevIndex: index * 64,
        prevTerm: 2,
        commit: index,
        entries: Array.from({ length: 64 }, (_, position) => ({
          term: 2,
          index: index * 64 + position + 1,
          kind: 'command' as const,
          proposalId: `p-${index}-${position}`,
          data: Uint8Array.from({ length: 200 }, (_, byte) => (index + position + byte) & 0xff),
        })),
      });
    }
    for (const append of appends) nodes.get('a')?.transport.send(append);
    const b = nodes.get('b') as TestNode;
    await waitFor(() => b.received.length === appends.length, 'all appends');
    // Compared with data as hex: deep equality on thousands of typed arrays is very slow.
    expect(b.received.map(withHexData)).toEqual(appends.map(withHexData));
  });

  it('coalesces the messages of one tick into one socket write', async () => {
    nodes = await startCluster(['a', 'b']);
    const a = nodes.get('a') as TestNode;
    const b = nodes.get('b') as TestNode;
    a.transport.send(heartbeat('a', 'b', 0)); // opens the connection
    await waitFor(() => b.received.length === 1, 'the first message');
    // Spy on the one outbound socket: count write calls while 500 messages are sent in one tick.
    const { Socket } = await import('node:net');
    // eslint-disable-next-line @typescript-eslint/unbound-method -- kept to restore it, and called only through original.apply(socket, ...)
    const original = Socket.prototype.write;
    let writes = 0;
    Socket.prototype.write = function (this: InstanceType<typeof Socket>, ...args: Parameters<typeof original>) {
      writes++;
      return original.apply(this, args);
    } as typeof original;
    try {
      for (let index = 1; index <= 500; index++) a.transport.send(heartbeat('a', 'b', index));
      await nextTick();
    } finally {
      Socket.prototype.write = original;
    }
    expect(writes).toBe(1);
    await waitFor(() => b.received.length === 501, 'the burst');
  });
});
