import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import { ConfigError } from '@timebox/core';

/**
 * PEM material, given one of three ways:
 *
 * - a `Buffer` (or any `Uint8Array`): the PEM bytes themselves;
 * - a string that starts with `-----BEGIN` (leading whitespace allowed): the PEM text itself;
 * - any other string: the path of a PEM file, read once when the member opens.
 */
export type RaftTlsPem = string | Uint8Array;

/**
 * Mutual TLS between the members of a cluster. Every member of the cluster must have it, or
 * none: a member with TLS and one without refuse each other (and say so through their logs).
 *
 * Each member has its own key and certificate, both signed by a CA that exists for this cluster
 * alone: any certificate that CA signed is accepted as a member, so never use a public CA or an
 * organisation-wide one. See "Security" in the package README for the threat model and for the
 * `openssl` commands that make the CA and the member certificates.
 */
export interface RaftTlsOptions {
  /** This member's private key, PEM (unencrypted, PKCS#8 or traditional). */
  readonly key: RaftTlsPem;
  /** This member's certificate, PEM, signed by `ca` (may be followed by intermediate certificates). */
  readonly cert: RaftTlsPem;
  /** The cluster CA's certificate(s), PEM: the only trust anchor for peers, in both directions. */
  readonly ca: RaftTlsPem;
  /**
   * Whether a certificate binds its holder to one member ID (default `false`, as etcd's
   * `--peer-cert-allowed-cn` is opt-in): a member's own certificate must then name its `localId`
   * as the subject's common name (CN), and a peer may only take part as the member its
   * certificate names, on the connections it opens and on those it accepts, so a leaked key
   * speaks for its own member only. Without it any certificate the CA signed may claim any member
   * ID. Recommended whenever each member has its own certificate.
   */
  readonly bindMemberId?: boolean;
}

/** Checked TLS material, ready for the transport's listener and dialers. */
export interface TlsCredentials {
  readonly key: Buffer;
  readonly cert: Buffer;
  readonly ca: Buffer;
  /** Built once and shared by every outbound connection. */
  readonly clientContext: SecureContext;
  /** A peer must be the member its certificate's CN names (see `RaftTlsOptions.bindMemberId`). */
  readonly bindMemberId: boolean;
}

// Members are our own code on both ends: nothing older is needed.
export const TLS_MIN_VERSION = 'TLSv1.3';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * Reads and checks `tls` (`field` names it in errors) for the member `localId`: every part present
 * and readable, the key a private key matching the certificate, the certificate signed by the CA,
 * not expired, and (with `bindMemberId`) naming `localId` as its CN. Throws
 * `ConfigError` naming the part (`tls.key`, `tls.cert`, `tls.ca`, `tls.bindMemberId`); key
 * material never appears in a message. `undefined` means no TLS.
 */
export function loadTlsCredentials(tls: RaftTlsOptions | undefined, localId: string, field = 'tls'): TlsCredentials | undefined {
  if (tls === undefined) return undefined;
  if (tls === null || typeof tls !== 'object' || tls instanceof Uint8Array)
    throw new ConfigError(field, 'must be { key, cert, ca }, each a PEM file path, PEM text or a Buffer of PEM', tls);
  const bindMemberId = tls.bindMemberId ?? false;
  if (typeof bindMemberId !== 'boolean') throw new ConfigError(`${field}.bindMemberId`, 'must be true or false', bindMemberId);
  const key = readPem(tls.key, `${field}.key`);
  const cert = readPem(tls.cert, `${field}.cert`);
  const ca = readPem(tls.ca, `${field}.ca`);

  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key.pem);
  } catch (error) {
    throw new ConfigError(`${field}.key`, `is not an unencrypted PEM private key (${(error as Error).message})`, key.label);
  }
  if (privateKey.type !== 'private') throw new ConfigError(`${field}.key`, 'must be a private key', key.label);
  const chain = certificates(cert, `${field}.cert`);
  const anchors = certificates(ca, `${field}.ca`);
  const leaf = chain[0]!;
  if (!leaf.checkPrivateKey(privateKey))
    throw new ConfigError(`${field}.key`, `does not belong to the certificate in ${field}.cert`, key.label);
  if (Date.parse(leaf.validTo) <= Date.now()) throw new ConfigError(`${field}.cert`, `expired on ${leaf.validTo}`, cert.label);
  // Signed by a CA certificate, or by an intermediate sent along in the cert file.
  const issuers = [...anchors, ...chain.slice(1)];
  if (!issuers.some((issuer) => leaf.checkIssued(issuer) && leaf.verify(issuer.publicKey))) {
    throw new ConfigError(
      `${field}.cert`,
      `is not signed by the CA in ${field}.ca (peers would refuse this member); its issuer is ${JSON.stringify(leaf.issuer)}`,
      cert.label,
    );
  }
  const named = certificateMemberId(leaf);
  if (bindMemberId && named !== localId) {
    throw new ConfigError(
      `${field}.cert`,
      `names ${named === null ? 'no single member ID' : `member ${JSON.stringify(named)}`} as its subject's CN, but this member's localId is ` +
        `${JSON.stringify(localId)}: issue it with -subj "/CN=${localId}" (peers take a member to be the one its certificate names), ` +
        `or leave ${field}.bindMemberId off`,
      cert.label,
    );
  }
  const credentials = { key: key.pem, cert: cert.pem, ca: ca.pem };
  let clientContext: SecureContext;
  try {
    clientContext = createSecureContext({ ...credentials, minVersion: TLS_MIN_VERSION });
  } catch (error) {
    throw new ConfigError(field, `cannot be used by TLS: ${(error as Error).message}`, cert.label);
  }
  return { ...credentials, clientContext, bindMemberId };
}

/**
 * The member ID a certificate names: its subject's common name (CN), or `null` when the subject
 * has no CN or more than one.
 */
export function certificateMemberId(certificate: X509Certificate): string | null {
  // The legacy object has the subject unescaped, and a repeated field as an array.
  const name: unknown = certificate.toLegacyObject().subject.CN;
  return typeof name === 'string' ? name : null;
}

interface Pem {
  readonly pem: Buffer;
  /** How to name this input in an error without showing its content. */
  readonly label: string;
}

function readPem(value: unknown, field: string): Pem {
  if (value === undefined || value === null)
    throw new ConfigError(field, 'is required: a PEM file path, PEM text or a Buffer of PEM', value);
  let pem: Buffer;
  let label: string;
  if (value instanceof Uint8Array) {
    // A copy: the caller may reuse its buffer.
    pem = Buffer.from(value);
    label = `a buffer of ${value.byteLength} bytes`;
  } else if (typeof value === 'string') {
    if (value.trimStart().startsWith('-----BEGIN')) {
      pem = Buffer.from(value, 'utf8');
      label = `PEM text of ${value.length} characters`;
    } else {
      if (value === '') throw new ConfigError(field, 'must not be empty: a PEM file path, PEM text or a Buffer of PEM', value);
      try {
        pem = readFileSync(value);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
        throw new ConfigError(field, `names a file that cannot be read (${code})`, value);
      }
      label = value;
    }
  } else {
    throw new ConfigError(field, 'must be a PEM file path, PEM text or a Buffer of PEM', value);
  }
  if (!pem.includes('-----BEGIN')) throw new ConfigError(field, 'is not PEM (no "-----BEGIN" line)', label);
  return { pem, label };
}

function certificates(input: Pem, field: string): X509Certificate[] {
  const blocks = input.pem.toString('utf8').match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new ConfigError(field, 'holds no PEM certificate ("-----BEGIN CERTIFICATE-----")', input.label);
  return blocks.map((block) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      throw new ConfigError(field, `holds a certificate that cannot be parsed (${(error as Error).message})`, input.label);
    }
  });
}
