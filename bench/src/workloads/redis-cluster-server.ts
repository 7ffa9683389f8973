import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { SuiteUnavailableError } from '../suite.js';

const run = promisify(execFile);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function answers(port: number, check: (client: Redis) => Promise<boolean>): Promise<boolean> {
  const client = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await check(client);
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

async function waitUntil(what: string, condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * A throwaway Redis Cluster of `masters` masters (no replicas, no persistence) on free loopback
 * ports in a temporary folder, for the sharded-store benchmark; `stop` kills it and removes the folder.
 */
export async function startCluster(masters = 3): Promise<{ ports: number[]; stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'timebox-bench-cluster-'));
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const stop = async () => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i++) {
      const port = await freePort();
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'];
      args.push('--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '5000');
      const child = spawn('redis-server', args, { stdio: 'ignore' });
      const missing = new Promise<never>((_, reject) => child.once('error', reject));
      missing.catch(() => undefined);
      children.push(child);
      ports.push(port);
      await Promise.race([
        missing,
        waitUntil(`redis-server on ${port}`, () => answers(port, async (c) => (await c.ping()) === 'PONG'), 15_000),
      ]);
    }
    const addresses = ports.map((port) => `127.0.0.1:${port}`);
    await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 60_000 });
    await waitUntil(
      'cluster_state:ok',
      async () => {
        for (const port of ports) {
          if (!(await answers(port, async (c) => (await c.cluster('INFO')).includes('cluster_state:ok')))) return false;
        }
        return true;
      },
      30_000,
    );
    return { ports, stop };
  } catch (error) {
    await stop();
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new SuiteUnavailableError('redis-server and redis-cli are needed on PATH to start a throwaway Redis Cluster');
    }
    throw error;
  }
}
