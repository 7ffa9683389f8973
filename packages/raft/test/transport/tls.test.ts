import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ByteWriter } from '../../src/bytes/byte-writer.js';
import type { SnapshotRequest } from '../../src/consensus/types.js';
import { encodeMessage } from '../../src/transport/codec.js';
import { codecError, HandshakeError } from '../../src/transport/errors.js';
import { FrameKind, beginFrame, endFrame, writeHello } from '../../src/transport/frames.js';
import { loadTlsCredentials, type TlsCredentials } from '../../src/transport/tls-credentials.js';
import { selfSignedCertificate, TestCa, type CertificateFiles } from '../support/certificates.js';
import { closeAll, heartbeat, startNode, waitFor, type TestNode } from './support.js';

/** A hello to `to` followed by one heartbeat: what a member sends first on a message connection. */
function helloAndHeartbeat(from: string, to: string): Buffer {
  const writer = new ByteWriter(128, codecError);
  writeHello(writer, { channel: 'messages', clusterId: 'test-cluster', from, to }, 1 << 20);
  const start = beginFrame(writer, FrameKind.message);
  encodeMessage(writer, heartbeat(from, to, 7));
  endFrame(writer, start, 1 << 20);
  return writer.take();
}

function portOf(node: TestNode): number {
  return Number(node.transport.address.split(':').pop());
}

/**
 * Dials `node` over TLS presenting `client` (no certificate when null; trusting the cluster CA, so the client side never
 * gives up first) and, once its side of the handshake is done, sends a valid hello and heartbeat.
 * Resolves when the connection is gone, with what the client saw.
 */
function tlsClientSendsHello(node: TestNode, client: CertificateFiles | null, ca: Buffer, from = 'a'): Promise<{ secured: boolean }> {
  return new Promise((resolve) => {
    let secured = false;
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: portOf(node),
      ...(client === null ? {} : { key: client.key, cert: client.cert }),
      ca,
      checkServerIdentity: () => undefined,
    });
    socket.on('secureConnect', () => {
      // With TLS 1.3 the client finishes first: the server checks the client's certificate after
      // this, so these bytes are on the wire before the server can refuse them.
      secured = true;
      socket.write(helloAndHeartbeat(from, node.id));
    });
    socket.on('error', () => {
      // 'close' follows.
    });
    // Read what the server says (a reject frame), so its end of the connection is seen.
    socket.resume();
    socket.on('close', () => resolve({ secured }));
    // A client the server accepted stays open: end it once its heartbeat arrived.
    const check = setInterval(() => {
      if (node.received.length > 0) socket.end();
    }, 10);
    socket.on('close', () => clearInterval(check));
  });
}

describe('TcpTransport over mutual TLS', { timeout: 60_000 }, () => {
  let ca: TestCa;
  let otherCa: TestCa;
  let credentials: Map<string, TlsCredentials>;
  let memberCerts: Map<string, CertificateFiles>;
  const open: TestNode[] = [];

  beforeAll(async () => {
    ca = await TestCa.create('cluster-ca');
    otherCa = await TestCa.create('other-ca');
    memberCerts = new Map();
    credentials = new Map();
    for (const id of ['a', 'b', 'c']) {
      const files = await ca.issue(id);
      memberCerts.set(id, files);
      credentials.set(id, loadTlsCredentials({ key: files.keyFile, cert: files.certFile, ca: ca.certFile, bindMemberId: true }, id)!);
    }
  });
  afterAll(async () => {
    await ca?.remove();
    await otherCa?.remove();
  });
  afterEach(async () => {
    await closeAll(open.splice(0));
  });

  async function tlsNode(id: string): Promise<TestNode> {
    const node = await startNode(id, { tls: credentials.get(id) });
    open.push(node);
    return node;
  }

  it('members with certificates from the cluster CA exchange messages and snapshots', async () => {
    const a = await tlsNode('a');
    const b = await tlsNode('b');
    a.transport.setPeer('b', b.transport.address);
    b.transport.setPeer('a', a.transport.address);
    a.transport.send(heartbeat('a', 'b', 1));
    b.transport.send(heartbeat('b', 'a', 2));
    await waitFor(() => b.received.length === 1 && a.received.length === 1, 'a heartbeat each way');
    expect(b.received).toEqual([heartbeat('a', 'b', 1)]);
    expect(a.received).toEqual([heartbeat('b', 'a', 2)]);

    // Snapshots go on a connection of their own, which must be TLS as well.
    const data = Buffer.alloc(3 << 20, 7);
    const snapshot: SnapshotRequest = {
      type: 'snapshot',
      from: 'a',
      to: 'b',
      term: 2,
      snapshot: { meta: { index: 10, term: 2, voters: ['a', 'b'] }, data },
    };
    a.transport.send(snapshot);
    await waitFor(() => a.snapshotsSent.length === 1, 'the snapshot to be acknowledged');
    expect(a.snapshotsSent).toEqual([{ peer: 'b', ok: true }]);
    const delivered = b.received.find((message): message is SnapshotRequest => message.type === 'snapshot');
    expect(Buffer.from(delivered!.snapshot.data).equals(data)).toBe(true);
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
  });

  it.each([
    ['no certificate', async () => null, /refused a TLS connection from 127\.0\.0\.1:\d+: it presented no certificate/],
    [
      'a self-signed certificate',
      async () => selfSignedCertificate(ca.dir, 'mallory'),
      /refused a TLS connection from 127\.0\.0\.1:\d+: its certificate is not signed by the cluster CA \(DEPTH_ZERO_SELF_SIGNED_CERT\)/,
    ],
    [
      'a certificate from another CA',
      async () => otherCa.issue('a'),
      /refused a TLS connection from 127\.0\.0\.1:\d+: its certificate is not signed by the cluster CA \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/,
    ],
    [
      'an expired certificate from the cluster CA',
      async () => ca.issue('old', -1),
      /refused a TLS connection from 127\.0\.0\.1:\d+: its certificate has expired \(CERT_HAS_EXPIRED\)/,
    ],
  ])('refuses a peer with %s during the handshake, before any frame is read', async (_, makeCert, reason) => {
    const b = await tlsNode('b');
    const rogue = await makeCert();
    const outcome = await tlsClientSendsHello(b, rogue, ca.cert);
    await waitFor(() => b.errors.length > 0, 'the refusal to be reported');
    // The rogue client finished its half of the handshake (TLS 1.3: the server checks the client
    // after that) and sent a valid hello and heartbeat…
    expect(outcome.secured).toBe(true);
    // …but the server refused it in the handshake: no connection reached the frame reader.
    expect(b.transport.acceptedConnections).toBe(0);
    expect(b.received).toEqual([]);
    expect(b.errors[0]).toBeInstanceOf(HandshakeError);
    expect(b.errors[0]?.message).toMatch(reason);

    // The same client with a certificate from the cluster CA gets through: the check can fail.
    const good = await tlsClientSendsHello(b, memberCerts.get('a')!, ca.cert);
    expect(good.secured).toBe(true);
    expect(b.transport.acceptedConnections).toBe(1);
    expect(b.received).toEqual([heartbeat('a', 'b', 7)]);
  });

  it('a member whose certificate another CA signed is refused both ways; the members it reaches keep working', async () => {
    const rogueFiles = await otherCa.issue('c');
    const rogue = await startNode('c', {
      tls: loadTlsCredentials({ key: rogueFiles.key, cert: rogueFiles.cert, ca: otherCa.cert }, 'c'),
    });
    open.push(rogue);
    const [a, b] = [await tlsNode('a'), await tlsNode('b')];
    for (const node of [a, b, rogue]) for (const other of [a, b, rogue]) node.transport.setPeer(other.id, other.transport.address);
    let commit = 0;
    await waitFor(() => {
      rogue.transport.send(heartbeat('c', 'a', commit++));
      a.transport.send(heartbeat('a', 'c', commit++));
      a.transport.send(heartbeat('a', 'b', commit++));
      return a.errors.length > 0 && rogue.errors.length > 0 && b.received.length > 0;
    }, 'the refusals and a delivery between the members');
    expect(rogue.received).toEqual([]);
    expect(a.received.filter((message) => message.from === 'c')).toEqual([]);
    expect(a.transport.acceptedConnections).toBe(0);
    // The rogue member says why its dials fail; `a` says why it refused the rogue and why its own dial to it failed.
    const notSigned = /TLS with peer "(a|c)" at .* failed: .*: the peer’s certificate is not signed by this member’s tls\.ca/;
    expect(rogue.errors.some((error) => notSigned.test(error.message))).toBe(true);
    expect(a.errors.some((error) => notSigned.test(error.message))).toBe(true);
    // And `a`'s listener says why it dropped the rogue's connections.
    expect(
      a.errors.some((error) =>
        /refused a TLS connection from 127\.0\.0\.1:\d+: (its certificate is not signed|it hung up)/.test(error.message),
      ),
    ).toBe(true);
    expect(b.errors).toEqual([]);
  });

  it('refuses a member whose hello claims another member than its certificate names', async () => {
    const b = await tlsNode('b');
    // `c` holds a valid certificate from the cluster CA, and says it is `a`.
    await tlsClientSendsHello(b, memberCerts.get('c')!, ca.cert, 'a');
    await waitFor(() => b.errors.length > 0, 'the refusal to be reported');
    expect(b.received).toEqual([]);
    expect(b.errors[0]).toBeInstanceOf(HandshakeError);
    expect(b.errors[0]?.message).toMatch(
      /refused a connection from 127\.0\.0\.1:\d+: its hello claims member "a", but its certificate names member "c" \(its subject's CN\), not "a"/,
    );

    // As itself it gets through: the check can fail.
    await tlsClientSendsHello(b, memberCerts.get('c')!, ca.cert, 'c');
    expect(b.received).toEqual([heartbeat('c', 'b', 7)]);
  });

  it('without bindMemberId, any certificate from the cluster CA may claim any member', async () => {
    const files = memberCerts.get('b')!;
    const b = await startNode('b', {
      tls: loadTlsCredentials({ key: files.key, cert: files.cert, ca: ca.cert }, 'b'),
    });
    open.push(b);
    await tlsClientSendsHello(b, memberCerts.get('c')!, ca.cert, 'a');
    expect(b.received).toEqual([heartbeat('a', 'b', 7)]);
    expect(b.errors).toEqual([]);
  });

  it('refuses to send to an address where another member answers', async () => {
    const a = await tlsNode('a');
    const c = await tlsNode('c');
    // `a` believes `b` is at `c`'s address (a stale address, or someone holding c's key there).
    a.transport.setPeer('b', c.transport.address);
    a.transport.setPeer('c', c.transport.address);
    const snapshot: SnapshotRequest = {
      type: 'snapshot',
      from: 'a',
      to: 'b',
      term: 2,
      snapshot: { meta: { index: 10, term: 2, voters: ['a', 'b'] }, data: Buffer.alloc(1024, 1) },
    };
    a.transport.send(snapshot);
    let commit = 0;
    const mismatch = /TLS with peer "b" at .* failed: its certificate names member "c" \(its subject's CN\), not "b"/;
    await waitFor(() => {
      a.transport.send(heartbeat('a', 'b', commit++));
      return a.errors.filter((error) => mismatch.test(error.message)).length >= 2 && a.snapshotsSent.length === 1;
    }, 'the refusals of the message link and the snapshot stream');
    expect(a.snapshotsSent).toEqual([{ peer: 'b', ok: false }]);
    expect(c.received).toEqual([]);
    // The same link to the member that is there works: the check can fail.
    a.transport.send(heartbeat('a', 'c', 99));
    await waitFor(() => c.received.length === 1, 'a heartbeat to c');
    expect(c.received).toEqual([heartbeat('a', 'c', 99)]);
  });

  it('refuses a plain-TCP client that sends a valid hello', async () => {
    const b = await tlsNode('b');
    const socket: Socket = netConnect({ host: '127.0.0.1', port: portOf(b) });
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('connect', () => socket.write(helloAndHeartbeat('a', 'b')));
    await closed;
    await waitFor(() => b.errors.length > 0, 'the refusal to be reported');
    expect(b.transport.acceptedConnections).toBe(0);
    expect(b.received).toEqual([]);
    expect(b.errors[0]?.message).toMatch(/refused a TLS connection from .*does not speak TLS/);
  });

  it('a TLS member and a plain member refuse each other, each saying why', async () => {
    const secure = await tlsNode('a');
    const plain = await startNode('b');
    open.push(plain);
    secure.transport.setPeer('b', plain.transport.address);
    plain.transport.setPeer('a', secure.transport.address);
    let commit = 0;
    const says = (node: TestNode, pattern: RegExp): boolean => node.errors.some((error) => pattern.test(error.message));
    // Each member reports its refusal of the other's dial; the TLS member also why its own dial
    // failed (the plain member's dial is dropped by the TLS listener without a word it could read).
    const reported = (): boolean =>
      says(secure, /refused a TLS connection from .*: the other side does not speak TLS \(configure tls on every member, or on none\)/) &&
      says(secure, /TLS with peer "b" at .* failed: .*the other side does not speak TLS/) &&
      says(plain, /refused a connection from .*: a TLS handshake arrived but this member has no tls configured/);
    await waitFor(() => {
      secure.transport.send(heartbeat('a', 'b', commit++));
      plain.transport.send(heartbeat('b', 'a', commit++));
      return reported();
    }, 'both sides to report the TLS mismatch');
    expect(secure.received).toEqual([]);
    expect(plain.received).toEqual([]);
    expect(secure.transport.acceptedConnections).toBe(0);
    for (const error of [...secure.errors, ...plain.errors]) expect(error).toBeInstanceOf(HandshakeError);
  });

  it('close() does not wait for a handshake a peer never finishes', async () => {
    const b = await tlsNode('b');
    const socket = netConnect({ host: '127.0.0.1', port: portOf(b) });
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    await new Promise((resolve) => socket.once('connect', resolve));
    // The listener's handshake timeout is 10 s; closing must not wait it out.
    const started = performance.now();
    await b.transport.close();
    await closed;
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
