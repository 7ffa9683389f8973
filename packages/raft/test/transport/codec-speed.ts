/**
 * Codec throughput, as a script (not a test: the machine is shared, so no timed assertion):
 * `npx tsx test/transport/codec-speed.ts`. Encodes and decodes an append of 64 entries × 200 bytes
 * (plus a heartbeat) in a loop and prints operations per second.
 */
import type { Message } from '../../src/consensus/types.js';
import { ByteWriter } from '../../src/bytes/byte-writer.js';
import { codecError } from '../../src/transport/errors.js';
import { decodeOwnedMessage, encodeMessage } from '../../src/transport/codec.js';
import { FrameKind, beginFrame, endFrame } from '../../src/transport/frames.js';

const append: Message = {
  type: 'append',
  from: 'node-1',
  to: 'node-2',
  term: 7,
  prevIndex: 123_456,
  prevTerm: 7,
  commit: 123_400,
  entries: Array.from({ length: 64 }, (_, position) => ({
    term: 7,
    index: 123_457 + position,
    kind: 'command' as const,
    proposalId: `${crypto.randomUUID()}`,
    data: Uint8Array.from({ length: 200 }, (_, byte) => (position * 31 + byte) & 0xff),
  })),
};
const heartbeat: Message = { type: 'heartbeat', from: 'node-1', to: 'node-2', term: 7, commit: 123_400, context: null };

function measure(name: string, message: Message, seconds: number): void {
  const writer = new ByteWriter(32 * 1024, codecError);
  let operations = 0;
  let bytes = 0;
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(Math.round(seconds * 1e9));
  while (process.hrtime.bigint() < deadline) {
    for (let round = 0; round < 100; round++) {
      writer.truncate(0);
      const start = beginFrame(writer, FrameKind.message);
      encodeMessage(writer, message);
      endFrame(writer, start, 16 << 20);
      const frame = writer.view();
      bytes = frame.length;
      // As the receiver does for a frame cut from a socket chunk: one copy, then views.
      decodeOwnedMessage(frame.subarray(5), false);
      operations++;
    }
  }
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  const perSecond = operations / elapsed;
  const entries = message.type === 'append' ? message.entries.length : 0;
  console.log(
    `${name}: ${Math.round(perSecond).toLocaleString('en')} encode+decode/s, ${bytes} bytes/frame` +
      (entries > 0
        ? `, ${Math.round(perSecond * entries).toLocaleString('en')} entries/s, ${((perSecond * bytes) / 2 ** 20).toFixed(0)} MiB/s`
        : ''),
  );
}

measure('warm-up', append, 1);
measure('append 64 × 200 B', append, 3);
measure('heartbeat', heartbeat, 2);
