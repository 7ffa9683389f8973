import { afterEach, describe, expect, it } from 'vitest';
import type { Message } from '../../src/consensus/types.js';
import { ByteWriter } from '../../src/bytes/byte-writer.js';
import { codecError } from '../../src/transport/errors.js';
import { FrameKind, FrameReader, beginFrame, endMessageFrames } from '../../src/transport/frames.js';
import { closeAll, heartbeat, startCluster, waitFor, type TestNode } from './support.js';

const FRAME = 4096;

/** An append carrying one entry of `bytes` bytes of data (a recognisable pattern). */
function bigAppend(bytes: number, index: number): Message {
  return {
    type: 'append',
    from: 'a',
    to: 'b',
    term: 3,
    prevIndex: index - 1,
    prevTerm: 3,
    commit: index - 1,
    entries: [
      {
        term: 3,
        index,
        kind: 'command',
        proposalId: `big-${index}`,
        data: Uint8Array.from({ length: bytes }, (_, i) => (i * 7 + index) & 0xff),
      },
    ],
  };
}

function summary(message: Message): string {
  if (message.type !== 'append') return JSON.stringify(message);
  return message.entries.map((entry) => `${entry.index}:${Buffer.from(entry.data).toString('base64')}`).join(',');
}

describe('messages larger than one frame', { timeout: 60_000 }, () => {
  let nodes: Map<string, TestNode> = new Map();
  afterEach(async () => closeAll(nodes.values()));

  it('a message over maxFrameBytes is cut into parts of at most maxFrameBytes, the last one a message frame', () => {
    const writer = new ByteWriter(64, codecError);
    const start = beginFrame(writer, FrameKind.message);
    writer.raw(new Uint8Array(3 * FRAME));
    endMessageFrames(writer, start, FRAME);
    const kinds: number[] = [];
    new FrameReader(FRAME).push(writer.take(), (kind, body) => {
      expect(body.length + 1).toBeLessThanOrEqual(FRAME);
      kinds.push(kind);
    });
    expect(kinds).toEqual([FrameKind.messagePart, FrameKind.messagePart, FrameKind.messagePart, FrameKind.message]);
  });

  it('an entry larger than the frame limit and the whole queue reaches the peer intact, between small messages in order', async () => {
    // Before, such a message was refused by the sender ("exceeds maxFrameBytes") and never arrived:
    // replication stopped at that entry for good.
    nodes = await startCluster(['a', 'b'], { maxFrameBytes: FRAME, maxQueueBytes: 2 * FRAME });
    const a = nodes.get('a') as TestNode;
    const b = nodes.get('b') as TestNode;
    a.transport.send(heartbeat('a', 'b', 1));
    await waitFor(() => b.received.length === 1, 'the connection');
    const sent = [bigAppend(100 * FRAME, 10), heartbeat('a', 'b', 2), bigAppend(FRAME + 1, 11), heartbeat('a', 'b', 3)];
    for (const message of sent) {
      a.transport.send(message);
      // One message at a time: the queue limit (two frames) would otherwise drop the small ones behind a big one.
      const expected = b.received.length + 1;
      await waitFor(() => b.received.length === expected, `message ${expected}`);
    }
    expect(b.received.slice(1).map(summary)).toEqual(sent.map(summary));
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
    expect(a.unreachable).toEqual([]);
  });
});
