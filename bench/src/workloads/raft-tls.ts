import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { RaftTlsOptions } from '@timebox/raft';
import { messageOf } from '../suite.js';

const run = promisify(execFile);

/** TLS material for the bench's clusters, in a temporary folder. */
export interface BenchCertificates {
  readonly tls: RaftTlsOptions;
  remove(): Promise<void>;
}

/**
 * A throwaway CA and one member certificate (EC P-256, as the raft README shows) made with the
 * `openssl` CLI; every member of a bench cluster shares the certificate, which costs the
 * handshake and the encryption the same as one per member. Resolves with the reason instead
 * when `openssl` cannot make them.
 */
export async function benchCertificates(): Promise<BenchCertificates | string> {
  const dir = await mkdtemp(join(tmpdir(), 'timebox-bench-tls-'));
  const path = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  try {
    await run('openssl', ['req', '-x509', ...ec, '-keyout', path('ca.key'), '-out', path('ca.crt'), '-days', '2', '-subj', '/CN=bench-ca']);
    await run('openssl', ['req', '-new', ...ec, '-keyout', path('member.key'), '-out', path('member.csr'), '-subj', '/CN=member']);
    await writeFile(path('member.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
    await run('openssl', [
      'x509',
      '-req',
      '-in',
      path('member.csr'),
      '-CA',
      path('ca.crt'),
      '-CAkey',
      path('ca.key'),
      '-set_serial',
      '1',
      '-days',
      '2',
      '-extfile',
      path('member.ext'),
      '-out',
      path('member.crt'),
    ]);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    return `openssl could not make the certificates (${messageOf(error)})`;
  }
  return {
    tls: { key: path('member.key'), cert: path('member.crt'), ca: path('ca.crt') },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
