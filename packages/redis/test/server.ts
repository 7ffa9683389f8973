import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/** Asks the OS for a port that is free right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** True when a Redis at `url` answers PING within `timeoutMs`. */
export async function answersPing(url: string, timeoutMs = 1000, password?: string): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    password,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/** Polls `condition` until it holds, failing after `timeoutMs`. */
export async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export const INSTALL_HINT =
  'install Redis so that redis-server is on the PATH (e.g. `apt-get install redis-server`), run a Redis on 127.0.0.1:6379, or set TIMEBOX_REDIS_URL';

/** A `redis-server` process this test run started, on a free port, in a temporary folder. */
export class ThrowawayServer {
  #process: ChildProcess | undefined;
  #output = '';

  private constructor(
    readonly port: number,
    readonly dir: string,
    readonly args: readonly string[],
    readonly password: string | undefined,
  ) {}

  /**
   * Starts `redis-server` with no persistence unless `args` ask for it. `password` sets
   * `--requirepass`.
   */
  static async start(options: { args?: readonly string[]; password?: string; dir?: string; port?: number } = {}): Promise<ThrowawayServer> {
    const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'timebox-redis-')));
    const port = options.port ?? (await freePort());
    const server = new ThrowawayServer(port, dir, options.args ?? ['--save', '', '--appendonly', 'no'], options.password);
    try {
      await server.launch();
    } catch (error) {
      await server.kill();
      if (options.dir === undefined) await rm(dir, { recursive: true, force: true });
      throw error;
    }
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#process !== undefined && this.#process.exitCode === null && this.#process.signalCode === null;
  }

  /** Starts the process (again, after `kill`), on the same port and folder, and waits for PING. */
  async launch(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, ...this.args];
    if (this.password !== undefined) args.push('--requirepass', this.password);
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#process = child;
    const spawnFailure = new Promise<never>((_, reject) => {
      child.once('error', (error: NodeJS.ErrnoException) => {
        reject(error.code === 'ENOENT' ? new Error(`redis-server was not found: ${INSTALL_HINT}`) : error);
      });
      child.once('exit', (code, signal) => reject(new Error(`redis-server exited (${code ?? signal}) while starting:\n${this.#output}`)));
    });
    spawnFailure.catch(() => undefined);
    child.stdout?.on('data', (chunk: Buffer) => (this.#output = (this.#output + chunk.toString()).slice(-4000)));
    child.stderr?.on('data', (chunk: Buffer) => (this.#output = (this.#output + chunk.toString()).slice(-4000)));
    await Promise.race([spawnFailure, waitFor(`redis-server on port ${this.port}`, () => answersPing(this.url, 500, this.password))]);
  }

  /** Kills the process at once (SIGKILL, no shutdown save), as a crash would. */
  async kill(): Promise<void> {
    const child = this.#process;
    if (child === undefined || !this.running) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** Kills the process and removes its folder. */
  async stop(): Promise<void> {
    await this.kill();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * The Redis the tests use: `TIMEBOX_REDIS_URL` if set, else a server at `defaultUrl` if one
 * answers, else a throwaway `redis-server`; fails naming what to install when none can be had.
 */
export async function findRedis(defaultUrl = 'redis://127.0.0.1:6379'): Promise<{ url: string; server?: ThrowawayServer }> {
  const fromEnv = process.env.TIMEBOX_REDIS_URL;
  if (fromEnv) {
    if (!(await answersPing(fromEnv, 3000))) throw new Error(`TIMEBOX_REDIS_URL=${fromEnv} does not answer PING`);
    return { url: fromEnv };
  }
  if (await answersPing(defaultUrl, 1000)) return { url: defaultUrl };
  const server = await ThrowawayServer.start();
  return { url: server.url, server };
}

/** How many times the server has run `command` (from INFO commandstats). */
export async function commandCalls(client: Redis, command: string): Promise<number> {
  const match = new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(await client.info('commandstats'));
  return match ? Number(match[1]) : 0;
}
