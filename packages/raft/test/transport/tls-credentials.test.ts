import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '@timebox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TcpTransport } from '../../src/transport/tcp-transport.js';
import { loadTlsCredentials, type RaftTlsOptions, type TlsCredentials } from '../../src/transport/tls-credentials.js';
import { TestCa, type CertificateFiles } from '../support/certificates.js';

describe('tls credentials', { timeout: 60_000 }, () => {
  let ca: TestCa;
  let otherCa: TestCa;
  let member: CertificateFiles;
  let other: CertificateFiles;

  beforeAll(async () => {
    ca = await TestCa.create('cluster-ca');
    otherCa = await TestCa.create('other-ca');
    member = await ca.issue('n1');
    other = await otherCa.issue('n2');
    await writeFile(join(ca.dir, 'not-pem.txt'), 'just some text\n');
  });
  afterAll(async () => {
    await ca?.remove();
    await otherCa?.remove();
  });

  /** The ConfigError `tls` raises, asserting that is what it raises and that no key material is in it. */
  function refusal(tls: unknown): ConfigError {
    try {
      loadTlsCredentials(tls as RaftTlsOptions, 'n1');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).not.toContain('PRIVATE KEY');
      expect((error as Error).message).not.toContain(member.key.toString('utf8').split('\n')[1]);
      return error as ConfigError;
    }
    throw new Error('accepted');
  }

  it('accepts file paths, PEM text and buffers, in any mix', () => {
    expect(loadTlsCredentials(undefined, 'n1')).toBeUndefined();
    const fromFiles = loadTlsCredentials({ key: member.keyFile, cert: member.certFile, ca: ca.certFile }, 'n1');
    const fromText = loadTlsCredentials({ key: member.key.toString('utf8'), cert: `\n${member.cert.toString('utf8')}`, ca: ca.cert }, 'n1');
    const fromBuffers = loadTlsCredentials({ key: member.key, cert: new Uint8Array(member.cert), ca: ca.cert }, 'n1');
    for (const credentials of [fromFiles, fromText, fromBuffers]) {
      expect(credentials?.cert.toString('utf8').trim()).toBe(member.cert.toString('utf8').trim());
      expect(credentials?.ca.equals(ca.cert)).toBe(true);
    }
  });

  it.each(['key', 'cert', 'ca'] as const)('a missing %s names tls.%s', (part) => {
    const tls: Record<string, unknown> = { key: member.key, cert: member.cert, ca: ca.cert };
    delete tls[part];
    const error = refusal(tls);
    expect(error.field).toBe(`tls.${part}`);
    expect(error.message).toContain('is required');
  });

  it('a file that cannot be read names the part and the path', () => {
    const missing = join(ca.dir, 'no-such-file.crt');
    const error = refusal({ key: member.keyFile, cert: missing, ca: ca.certFile });
    expect(error.field).toBe('tls.cert');
    expect(error.message).toContain('names a file that cannot be read (ENOENT)');
    expect(error.message).toContain('no-such-file.crt');
  });

  it.each([
    ['not an object', () => 'a string', 'tls', 'must be { key, cert, ca }'],
    ['a number for a part', () => ({ key: 5, cert: member.cert, ca: ca.cert }), 'tls.key', 'must be a PEM file path'],
    ['a file that is not PEM', () => ({ key: member.key, cert: member.cert, ca: join(ca.dir, 'not-pem.txt') }), 'tls.ca', 'is not PEM'],
    ['a key where the cert goes', () => ({ key: member.key, cert: member.key, ca: ca.cert }), 'tls.cert', 'holds no PEM certificate'],
  ])('%s is refused', (_, tls, field, text) => {
    const error = refusal(tls());
    expect(error.field).toBe(field);
    expect(error.message).toContain(text);
  });

  it('a key that is not the certificate’s is refused as tls.key', () => {
    const error = refusal({ key: other.key, cert: member.cert, ca: ca.cert });
    expect(error.field).toBe('tls.key');
    expect(error.message).toContain('does not belong to the certificate in tls.cert');
  });

  it('a certificate the CA did not sign is refused as tls.cert', () => {
    const error = refusal({ key: other.key, cert: other.cert, ca: ca.cert });
    expect(error.field).toBe('tls.cert');
    expect(error.message).toContain('is not signed by the CA in tls.ca');
    expect(error.message).toContain('CN=other-ca');
  });

  it('an expired certificate is refused as tls.cert', async () => {
    const expired = await ca.issue('old', -1);
    const error = refusal({ key: expired.key, cert: expired.cert, ca: ca.cert });
    expect(error.field).toBe('tls.cert');
    expect(error.message).toContain('expired on');
  });

  it('with bindMemberId, a certificate that names another member (CN) is refused as tls.cert; without, it is taken', () => {
    const error = refusal({ key: other.key, cert: other.cert, ca: otherCa.cert, bindMemberId: true });
    expect(error.field).toBe('tls.cert');
    expect(error.message).toContain(`names member "n2" as its subject's CN, but this member's localId is "n1"`);
    expect(error.message).toContain('-subj "/CN=n1"');
    const unbound = loadTlsCredentials({ key: other.key, cert: other.cert, ca: otherCa.cert }, 'n1');
    expect(unbound?.bindMemberId).toBe(false);
    expect(loadTlsCredentials({ key: member.key, cert: member.cert, ca: ca.cert, bindMemberId: true }, 'n1')?.bindMemberId).toBe(true);
  });

  it('a CA certificate without a single CN cannot be bound to a member', async () => {
    // The CA's own certificate as a member's: signed by itself, its CN is the CA's name.
    const error = refusal({ key: ca.own.key, cert: ca.own.cert, ca: ca.cert, bindMemberId: true });
    expect(error.field).toBe('tls.cert');
    expect(error.message).toContain('names member "cluster-ca"');
  });

  it('bindMemberId must be a boolean', () => {
    const error = refusal({ key: member.key, cert: member.cert, ca: ca.cert, bindMemberId: 'yes' });
    expect(error.field).toBe('tls.bindMemberId');
    expect(error.message).toContain('must be true or false');
  });

  it('the transport takes only checked credentials', () => {
    const raw = { key: member.key, cert: member.cert, ca: ca.cert } as unknown as TlsCredentials;
    const events = { onMessage: () => {} };
    const build = () => new TcpTransport({ localId: 'a', listen: '127.0.0.1:0', peers: new Map(), clusterId: 'c', events, tls: raw });
    expect(build).toThrow(ConfigError);
    expect(build).toThrow(/tls must be credentials from loadTlsCredentials/);
  });
});
