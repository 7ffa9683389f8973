/**
 * End-to-end transport throughput over loopback TCP, as a script (no timed test assertion):
 * `npx tsx test/transport/transport-speed.ts`. One node sends appends of 64 entries × 200 bytes
 * (64 per tick, at most 256 in flight, like consensus's default window) to another and the
 * receiver counts entries delivered per second. Both nodes share one process and one core.
 */
import type { Message } from '../../src/consensus/types.js';
import { TcpTransport } from '../../src/transport/tcp-transport.js';

const ENTRIES = 64;
const APPENDS = 5_000;
const DATA = Array.from({ length: ENTRIES }, (_, position) => new Uint8Array(200).fill(position));
let received = 0;
let done: () => void = () => {};
const finished = new Promise<void>((resolve) => (done = resolve));
const b = new TcpTransport({
  localId: 'b',
  listen: '127.0.0.1:0',
  peers: new Map(),
  clusterId: 'speed',
  events: {
    onMessage: () => {
      if (++received === APPENDS) done();
    },
  },
});
await b.start();
let unreachable = 0;
const a = new TcpTransport({
  localId: 'a',
  listen: '127.0.0.1:0',
  peers: new Map([['b', b.address]]),
  clusterId: 'speed',
  events: { onMessage: () => {}, onUnreachable: () => unreachable++ },
});
const progress = setInterval(() => console.log(`received ${received}, unreachable reports ${unreachable}`), 2000);
await a.start();

function append(round: number): Message {
  return {
    type: 'append',
    from: 'a',
    to: 'b',
    term: 3,
    prevIndex: round * ENTRIES,
    prevTerm: 3,
    commit: round * ENTRIES,
    entries: Array.from({ length: ENTRIES }, (_, position) => ({
      term: 3,
      index: round * ENTRIES + position + 1,
      kind: 'command' as const,
      proposalId: `proposal-${round}-${position}-0123456789abcdef`,
      data: DATA[position] as Uint8Array,
    })),
  };
}
const messages = Array.from({ length: APPENDS }, (_, round) => append(round));
const started = performance.now();
for (let round = 0; round < APPENDS; round += 64) {
  for (let index = round; index < Math.min(APPENDS, round + 64); index++) a.send(messages[index] as Message);
  // Flow control as consensus does it (maxInflightMessages 256): wait while too much is in flight.
  do await new Promise((resolve) => setImmediate(resolve));
  while (round + 64 - received > 256);
}
await finished;
clearInterval(progress);
const seconds = (performance.now() - started) / 1000;
console.log(
  `${APPENDS} appends (${APPENDS * ENTRIES} entries) in ${seconds.toFixed(2)} s: ${Math.round(APPENDS / seconds).toLocaleString('en')} appends/s, ${Math.round((APPENDS * ENTRIES) / seconds).toLocaleString('en')} entries/s`,
);
await a.close();
await b.close();
