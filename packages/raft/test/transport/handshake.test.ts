import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ByteWriter } from '../../src/bytes/byte-writer.js';
import { encodeMessage } from '../../src/transport/codec.js';
import { codecError, HandshakeError, TransportError } from '../../src/transport/errors.js';
import { FrameKind, beginFrame, endFrame, writeHello } from '../../src/transport/frames.js';
import { closeAll, heartbeat, startNode, waitFor, type TestNode } from './support.js';

/** Connects a raw socket to `node` and resolves with it plus a promise of its close. */
async function rawConnect(node: TestNode): Promise<{ socket: Socket; closed: Promise<void>; received: Buffer[] }> {
  const [host, port] = [node.transport.address.replace(/:\d+$/, ''), Number(node.transport.address.split(':').pop())];
  const socket = connect({ host, port });
  const received: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, closed, received };
}

function helloBytes(clusterId: string, from: string, to: string): Buffer {
  const writer = new ByteWriter(64, codecError);
  writeHello(writer, { channel: 'messages', clusterId, from, to }, 1 << 20);
  return writer.take();
}

describe('TcpTransport handshake and bad input', { timeout: 60_000 }, () => {
  const open: TestNode[] = [];
  afterEach(async () => {
    await closeAll(open.splice(0));
  });

  it('a cluster-ID mismatch delivers nothing; both sides report why through onError', async () => {
    const a = await startNode('a', { clusterId: 'cluster-one' });
    const b = await startNode('b', { clusterId: 'cluster-two' });
    open.push(a, b);
    a.transport.setPeer('b', b.transport.address);
    let commit = 0;
    await waitFor(() => {
      a.transport.send(heartbeat('a', 'b', commit++));
      return b.errors.length > 0 && a.errors.length > 0;
    }, 'both sides to report the mismatch');
    // Keep sending a little longer: still nothing may be delivered.
    for (let index = 0; index < 20; index++) {
      a.transport.send(heartbeat('a', 'b', commit++));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(b.received).toEqual([]);
    const receiverError = b.errors[0];
    expect(receiverError).toBeInstanceOf(HandshakeError);
    expect(receiverError?.message).toContain('cluster ID mismatch');
    expect(receiverError?.message).toContain('"cluster-one"');
    expect(receiverError?.message).toContain('"cluster-two"');
    const senderError = a.errors[0];
    expect(senderError).toBeInstanceOf(HandshakeError);
    expect(senderError?.message).toMatch(/peer "b" at .* refused this node: cluster ID mismatch/);
  });

  it('refuses another protocol version', async () => {
    const b = await startNode('b');
    open.push(b);
    const { socket, closed } = await rawConnect(b);
    const writer = new ByteWriter(64, codecError);
    const start = beginFrame(writer, FrameKind.hello);
    writer.u32be(0x54425246);
    writer.u16be(99);
    endFrame(writer, start, 1 << 20);
    socket.write(writer.take());
    await closed;
    await waitFor(() => b.errors.length > 0, 'the version error');
    expect(b.errors[0]?.message).toContain('protocol version 99 is not supported (this node speaks version 1)');
  });

  it('refuses a hello meant for another node', async () => {
    const b = await startNode('b');
    open.push(b);
    const { socket, closed } = await rawConnect(b);
    socket.write(helloBytes('test-cluster', 'a', 'c'));
    socket.write(encodeFrame(heartbeat('a', 'c', 1)));
    await closed;
    expect(b.received).toEqual([]);
    expect(b.errors[0]?.message).toContain('meant to reach "c", but this is node "b"');
  });

  it('closes on garbage before a hello, reporting it', async () => {
    const b = await startNode('b');
    open.push(b);
    const { socket, closed } = await rawConnect(b);
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await closed;
    await waitFor(() => b.errors.length > 0, 'the error');
    expect(b.errors[0]).toBeInstanceOf(TransportError);
    expect(b.errors[0]?.message).toMatch(/closed the connection from .*frame length \d+ exceeds maxFrameBytes/);
    expect(b.received).toEqual([]);
  });

  it('closes on a garbage frame after a valid hello, keeping what came before', async () => {
    const b = await startNode('b');
    open.push(b);
    const { socket, closed } = await rawConnect(b);
    socket.write(Buffer.concat([helloBytes('test-cluster', 'a', 'b'), encodeFrame(heartbeat('a', 'b', 1))]));
    await waitFor(() => b.received.length === 1, 'the valid message');
    const garbage = Buffer.from([0, 0, 0, 6, FrameKind.message, 99, 1, 2, 3, 4]);
    socket.write(Buffer.concat([garbage, encodeFrame(heartbeat('a', 'b', 2))]));
    await closed;
    expect(b.received).toEqual([heartbeat('a', 'b', 1)]);
    expect(b.errors[0]?.message).toMatch(/closed the connection from "a" .*unknown message type tag 99/);
  });

  it('closes on a truncated message inside a frame', async () => {
    const b = await startNode('b');
    open.push(b);
    const { socket, closed } = await rawConnect(b);
    const whole = encodeFrame(heartbeat('a', 'b', 300));
    const body = whole.subarray(5, whole.length - 1);
    const frame = Buffer.concat([Buffer.from([0, 0, 0, body.length + 1, FrameKind.message]), body]);
    socket.write(Buffer.concat([helloBytes('test-cluster', 'a', 'b'), frame]));
    await closed;
    expect(b.received).toEqual([]);
    expect(b.errors[0]?.message).toContain('truncated input');
  });

  it('refuses a message whose sender differs from the hello', async () => {
    const b = await startNode('b');
    open.push(b);
    const { socket, closed } = await rawConnect(b);
    socket.write(Buffer.concat([helloBytes('test-cluster', 'a', 'b'), encodeFrame(heartbeat('mallory', 'b', 1))]));
    await closed;
    expect(b.received).toEqual([]);
    expect(b.errors[0]?.message).toContain('a message from "mallory" arrived on the connection of "a"');
  });

  it('a throwing onMessage is reported and does not close the connection', async () => {
    let calls = 0;
    const errors: Error[] = [];
    const { TcpTransport } = await import('../../src/transport/tcp-transport.js');
    const b = new TcpTransport({
      localId: 'b',
      listen: '127.0.0.1:0',
      peers: new Map(),
      clusterId: 'test-cluster',
      events: {
        onMessage: () => {
          calls++;
          throw new Error('driver bug');
        },
      },
      onError: (error) => errors.push(error),
    });
    await b.start();
    const a = await startNode('a');
    open.push(a);
    try {
      a.transport.setPeer('b', b.address);
      a.transport.send(heartbeat('a', 'b', 1));
      a.transport.send(heartbeat('a', 'b', 2));
      await waitFor(() => calls === 2, 'both messages');
      expect(errors.map((error) => error.message)).toEqual([
        expect.stringContaining('onMessage threw for a heartbeat message from "a": driver bug'),
        expect.stringContaining('onMessage threw'),
      ]);
    } finally {
      await b.close();
    }
  });
});

function encodeFrame(message: Parameters<typeof encodeMessage>[1]): Buffer {
  const writer = new ByteWriter(64, codecError);
  const start = beginFrame(writer, FrameKind.message);
  encodeMessage(writer, message);
  endFrame(writer, start, 1 << 20);
  return writer.take();
}
