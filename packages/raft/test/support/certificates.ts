import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** One key and certificate, as PEM files on disk and as their contents. */
export interface CertificateFiles {
  readonly keyFile: string;
  readonly certFile: string;
  readonly key: Buffer;
  readonly cert: Buffer;
}

/** A throwaway CA in a temporary folder, signing member certificates with the `openssl` CLI (as the README shows). */
export class TestCa {
  private constructor(
    readonly dir: string,
    readonly name: string,
    readonly own: CertificateFiles,
  ) {}

  /** The CA certificate file (what members get as `tls.ca`). */
  get certFile(): string {
    return this.own.certFile;
  }

  get cert(): Buffer {
    return this.own.cert;
  }

  /** Makes a CA named `name` in a fresh temporary folder (remove it with `remove`). */
  static async create(name = 'test-ca', dir?: string): Promise<TestCa> {
    const folder = dir ?? (await mkdtemp(join(tmpdir(), 'timebox-tls-')));
    const own = await selfSigned(folder, name, true);
    return new TestCa(folder, name, own);
  }

  /**
   * A member certificate for `commonName`, signed by this CA, valid for 127.0.0.1 and localhost
   * for `days` (negative: expired that many days ago).
   */
  async issue(commonName: string, days = 2): Promise<CertificateFiles> {
    const base = join(this.dir, `${this.name}-${commonName}`);
    await run('openssl', [
      'req',
      '-new',
      ...EC_KEY,
      '-nodes',
      '-keyout',
      `${base}.key`,
      '-out',
      `${base}.csr`,
      '-subj',
      `/CN=${commonName}`,
    ]);
    await writeFile(`${base}.ext`, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n');
    await run('openssl', [
      'x509',
      '-req',
      '-in',
      `${base}.csr`,
      '-CA',
      this.own.certFile,
      '-CAkey',
      this.own.keyFile,
      // A random serial rather than a serial file, so CAs in parallel tests never share one.
      '-set_serial',
      String(randomInt(1, 2 ** 47)),
      '-days',
      String(days),
      '-extfile',
      `${base}.ext`,
      '-out',
      `${base}.crt`,
    ]);
    return files(base);
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** A self-signed certificate for `commonName` in `dir`, signed by no CA. */
export function selfSignedCertificate(dir: string, commonName: string): Promise<CertificateFiles> {
  return selfSigned(dir, commonName, false);
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];

async function selfSigned(dir: string, commonName: string, ca: boolean): Promise<CertificateFiles> {
  const base = join(dir, `self-${commonName}`);
  await run('openssl', [
    'req',
    '-x509',
    ...EC_KEY,
    '-nodes',
    '-keyout',
    `${base}.key`,
    '-out',
    `${base}.crt`,
    '-days',
    '2',
    '-subj',
    `/CN=${commonName}`,
    ...(ca ? [] : ['-addext', 'subjectAltName=IP:127.0.0.1']),
  ]);
  return files(base);
}

async function files(base: string): Promise<CertificateFiles> {
  const [key, cert] = await Promise.all([readFile(`${base}.key`), readFile(`${base}.crt`)]);
  return { keyFile: `${base}.key`, certFile: `${base}.crt`, key, cert };
}
