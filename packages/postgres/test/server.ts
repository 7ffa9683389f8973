/**
 * Finds a PostgreSQL server for the tests: `TIMEBOX_POSTGRES_URL` if set, else a server
 * on the default local port, else a throwaway cluster made with `initdb` and `postgres` on a free
 * port in a temporary folder. Fails with a message naming what to install when none can be had.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';

export const DEFAULT_LOCAL_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestServer {
  readonly url: string;
  /** Where the URL came from, for the test log. */
  readonly source: 'TIMEBOX_POSTGRES_URL' | 'default port' | 'throwaway cluster';
  /** Stops the server if the tests started it. */
  stop(): Promise<void>;
}

/** True when a server answers `SELECT 1` at `url` within a few seconds. */
export async function answers(url: string): Promise<boolean> {
  const sql = postgres(url, { max: 1, connect_timeout: 3, onnotice: () => undefined });
  try {
    await sql`SELECT 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 }).catch(() => undefined);
  }
}

export async function findServer(): Promise<TestServer> {
  const fromEnv = process.env.TIMEBOX_POSTGRES_URL;
  if (fromEnv) {
    if (!(await answers(fromEnv))) throw new Error(`TIMEBOX_POSTGRES_URL is set to ${fromEnv}, but no PostgreSQL answers there`);
    return { url: fromEnv, source: 'TIMEBOX_POSTGRES_URL', stop: async () => undefined };
  }
  if (await answers(DEFAULT_LOCAL_URL)) return { url: DEFAULT_LOCAL_URL, source: 'default port', stop: async () => undefined };
  return startThrowawayCluster();
}

/** Runs `initdb` into a temporary folder and starts `postgres` on a free port (trust auth). */
export async function startThrowawayCluster(): Promise<TestServer> {
  for (const program of ['initdb', 'postgres']) {
    if (spawnSync(program, ['--version']).status !== 0) {
      throw new Error(
        `no PostgreSQL for the tests: set TIMEBOX_POSTGRES_URL, run a server on 127.0.0.1:5432, or install PostgreSQL ` +
          `(e.g. "apt-get install postgresql") so that "${program}" is on PATH`,
      );
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'timebox-pg-'));
  // PostgreSQL refuses to run as root; then run it as the "postgres" system user. setpriv execs
  // in place (no wrapper process), so signals sent to the child reach the server itself.
  const asUser = process.geteuid?.() === 0 ? ['setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups', '--'] : [];
  if (asUser.length > 0) {
    const ids = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gids = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (ids.status !== 0)
      throw new Error('running as root, and PostgreSQL needs a "postgres" system user to run as; create one or set TIMEBOX_POSTGRES_URL');
    chownSync(dir, Number(ids.stdout.trim()), Number(gids.stdout.trim()));
  }
  const data = join(dir, 'data');
  const run = (program: string, args: string[]) => [...asUser, program, ...args];
  const [initProgram, ...initArgs] = run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const init = spawnSync(initProgram as string, initArgs, { encoding: 'utf8' });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  }
  const port = await freePort();
  const [serverProgram, ...serverArgs] = run('postgres', [
    '-D',
    data,
    '-p',
    String(port),
    '-k',
    dir,
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'fsync=off',
  ]);
  const server: ChildProcess = spawn(serverProgram as string, serverArgs, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  server.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const stop = async () => {
    if (server.exitCode === null) {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGINT'); // "fast shutdown"
      const immediate = setTimeout(() => server.kill('SIGQUIT'), 15_000); // "immediate shutdown"
      await exited;
      clearTimeout(immediate);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  while (!(await answers(url))) {
    if (server.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`the throwaway PostgreSQL did not start: ${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { url, source: 'throwaway cluster', stop };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
