import { connect as netConnect, createServer as netCreateServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as tlsCreateServer } from 'node:tls';
import type { HostPort } from './address.js';
import { TLS_MIN_VERSION, type TlsCredentials } from './tls-credentials.js';

/** An outbound connection being opened, and the event after which it may carry frames. */
export interface Dialed {
  readonly socket: Socket;
  /** `'connect'` for plain TCP; `'secureConnect'` for TLS (after the handshake). */
  readonly readyEvent: 'connect' | 'secureConnect';
}

/**
 * Dials member `peer` over plain TCP, or over TLS when `tls` is given. With TLS the peer's
 * certificate must chain to the cluster CA (`rejectUnauthorized`, the CA as the only trust anchor)
 * and this member presents its own. The host name is not checked against the certificate: members
 * are often addressed by IP. What is checked (with `bindMemberId`) is the member: the certificate
 * must name `peer` as its CN, so an address that now leads to another member (or to a holder of a
 * stolen certificate for another one) is refused (see "Security" in the README).
 */
export function dial(address: HostPort, tls: TlsCredentials | undefined, peer: string): Dialed {
  if (tls === undefined) return { socket: netConnect({ host: address.host, port: address.port }), readyEvent: 'connect' };
  const socket = tlsConnect({
    host: address.host,
    port: address.port,
    secureContext: tls.clientContext,
    minVersion: TLS_MIN_VERSION,
    rejectUnauthorized: true,
    checkServerIdentity: (_host, certificate) => (tls.bindMemberId ? memberIdProblem(peer, certificate.subject.CN) : undefined),
  });
  return { socket, readyEvent: 'secureConnect' };
}

/**
 * Why a peer whose certificate's CN is `named` may not act as member `claimed`, as an error whose
 * message completes "…failed: ", or `undefined` when it may.
 */
export function memberIdProblem(claimed: string, named: string | string[] | undefined): Error | undefined {
  if (named === claimed) return undefined;
  const names = named === undefined || Array.isArray(named) ? 'no single member ID' : `member ${JSON.stringify(named)}`;
  const error: NodeJS.ErrnoException = new Error(
    `its certificate names ${names} (its subject's CN), not ${JSON.stringify(claimed)} (with tls.bindMemberId each member's certificate must have its own member ID as CN)`,
  );
  error.code = 'ERR_TLS_MEMBER_ID_MISMATCH';
  return error;
}

/** A listening server, and a way to drop the connections it holds (handshakes in progress too). */
export interface Listener {
  readonly server: Server;
  /** Destroys every TCP connection the server accepted that is still open. */
  dropConnections(): void;
}

/**
 * A listener handing each connection to `accept`: every TCP connection for plain TCP; with TLS,
 * only connections whose handshake succeeded with a client certificate signed by the cluster CA
 * (`requestCert` and `rejectUnauthorized`), so a refused peer never reaches the frame reader.
 * Refused handshakes go to `refused`, with the remote address.
 */
export function listen(
  tls: TlsCredentials | undefined,
  handshakeTimeoutMs: number,
  accept: (socket: Socket) => void,
  refused: (reason: string, remote: string) => void,
): Listener {
  const server = tls === undefined ? netCreateServer(accept) : tlsServer(tls, handshakeTimeoutMs, accept, refused);
  // Tracked from TCP accept, so closing does not wait out a handshake a peer never finishes.
  const open = new Set<Socket>();
  server.on('connection', (tcp: Socket) => {
    open.add(tcp);
    tcp.once('close', () => open.delete(tcp));
  });
  return {
    server,
    dropConnections: () => {
      for (const tcp of open) tcp.destroy();
      open.clear();
    },
  };
}

function tlsServer(
  tls: TlsCredentials,
  handshakeTimeoutMs: number,
  accept: (socket: Socket) => void,
  refused: (reason: string, remote: string) => void,
): Server {
  const server = tlsCreateServer(
    {
      key: tls.key,
      cert: tls.cert,
      ca: tls.ca,
      minVersion: TLS_MIN_VERSION,
      requestCert: true,
      rejectUnauthorized: true,
      handshakeTimeout: handshakeTimeoutMs,
    },
    accept,
  );
  const remotes = new WeakMap<object, string>();
  server.on('connection', (tcp: Socket) => remotes.set(tcp, remoteOf(tcp)));
  server.on('tlsClientError', (error, socket) => {
    // Node checks the client's chain after OpenSSL's handshake and destroys a socket that fails,
    // which surfaces here as a hang-up; `authorizationError` says what was wrong with the chain.
    const chainError = socket.authorizationError;
    let reason: string;
    if (chainError !== undefined && chainError !== null) reason = `its certificate ${certificateProblem(String(chainError))}`;
    else if ((error as NodeJS.ErrnoException).code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE')
      reason = 'it presented no certificate (every member must have tls, with a certificate from the cluster CA)';
    else if ((error as NodeJS.ErrnoException).code === 'ECONNRESET')
      reason = 'it hung up during the TLS handshake (it may have refused this member’s certificate: see its log)';
    else reason = tlsFailure(error) ?? error.message;
    // By now both sockets are destroyed and no longer know their peer: look up the TCP socket's.
    const tcp = (socket as unknown as { _parent?: unknown })._parent;
    const remote = (tcp instanceof Object ? remotes.get(tcp) : undefined) ?? remoteOf(socket);
    refused(reason, remote);
    socket.destroy();
  });
  return server;
}

/**
 * Why a TLS connection failed, when the failure is TLS's (a refused or unverifiable certificate, a
 * peer that does not speak TLS), with a hint for the usual cause; `null` for a plain network
 * failure (refused, reset, unreachable), which is reported as the peer being unreachable.
 */
export function tlsFailure(error: Error): string | null {
  const code = (error as NodeJS.ErrnoException).code;
  // errno codes (ECONNREFUSED, EAI_AGAIN, …) are network failures; OpenSSL's and certificate
  // verification's codes (ERR_SSL_…, UNABLE_TO_VERIFY_LEAF_SIGNATURE, …) are TLS's.
  if (typeof code === 'string' && /^E[A-Z0-9_]+$/.test(code) && !code.startsWith('ERR_')) return null;
  // OpenSSL's own message carries its source file and line; its `reason` is the readable part.
  const reason = (error as { reason?: unknown }).reason;
  const text = `${typeof reason === 'string' ? reason : error.message.trim()}${code === undefined ? '' : ` [${code}]`}`;
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' || code === 'ERR_SSL_HTTP_REQUEST') {
    return `${text}: the other side does not speak TLS (configure tls on every member, or on none)`;
  }
  // Certificate verification codes (UNABLE_TO_VERIFY_LEAF_SIGNATURE, CERT_HAS_EXPIRED, …).
  if (code !== undefined && !code.startsWith('ERR_'))
    return `${text}: the peer’s certificate ${certificateProblem(code).replace('the cluster CA', 'this member’s tls.ca')}`;
  return text;
}

// OpenSSL's verification codes for a chain that does not lead to a trusted CA.
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
]);

/** What a certificate verification code means for a member, as the end of a sentence about the certificate. */
function certificateProblem(code: string): string {
  if (UNTRUSTED.has(code)) return `is not signed by the cluster CA (${code})`;
  if (code === 'CERT_HAS_EXPIRED') return `has expired (${code})`;
  if (code === 'CERT_NOT_YET_VALID') return `is not valid yet (${code}; check the clocks)`;
  return `was refused (${code})`;
}

/** Whether `chunk` starts like a TLS handshake record (type 0x16, version 3.x): a ClientHello. */
export function looksLikeTls(chunk: Buffer): boolean {
  return chunk.length >= 2 && chunk[0] === 0x16 && chunk[1] === 0x03;
}

function remoteOf(socket: Socket): string {
  return `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
}
