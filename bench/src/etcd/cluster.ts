import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A throwaway three-member etcd cluster on loopback ports, with data in a temp folder. */
export interface EtcdCluster {
  /** Client URLs, one per member. */
  readonly endpoints: readonly string[];
  /** Kills every member and deletes the data folder. */
  stop(): Promise<void>;
}

/** A port the OS reports free right now (bound and released). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function healthy(endpoint: string): Promise<boolean> {
  try {
    const response = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await response.json()) as { health?: string };
    return body.health === 'true';
  } catch {
    return false;
  }
}

/**
 * Starts `size` etcd members (`binary`, default `etcd` on PATH) forming one cluster and waits
 * until every member reports healthy (at most `timeoutMs`). On failure it stops what it
 * started and rejects with the members' last output.
 */
export async function startEtcdCluster(binary = 'etcd', size = 3, timeoutMs = 30_000): Promise<EtcdCluster> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'timebox-bench-etcd-'));
  const ports: number[] = [];
  for (let i = 0; i < size * 2; i++) ports.push(await freePort());
  const members = Array.from({ length: size }, (_, i) => ({
    name: `m${i + 1}`,
    client: `http://127.0.0.1:${ports[2 * i]}`,
    peer: `http://127.0.0.1:${ports[2 * i + 1]}`,
  }));
  const initialCluster = members.map((m) => `${m.name}=${m.peer}`).join(',');
  const children: ChildProcess[] = [];
  const output: string[] = members.map(() => '');
  const stop = async () => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
            child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            child.kill('SIGTERM');
          }),
      ),
    );
    await rm(root, { recursive: true, force: true });
  };
  members.forEach((m, i) => {
    const child = spawn(
      binary,
      [
        '--name',
        m.name,
        '--data-dir',
        path.join(root, m.name),
        '--listen-client-urls',
        m.client,
        '--advertise-client-urls',
        m.client,
        '--listen-peer-urls',
        m.peer,
        '--initial-advertise-peer-urls',
        m.peer,
        '--initial-cluster',
        initialCluster,
        '--initial-cluster-token',
        path.basename(root),
        '--initial-cluster-state',
        'new',
        '--logger',
        'zap',
        '--log-level',
        'warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr?.on('data', (chunk: Buffer) => {
      output[i] = `${output[i]}${chunk.toString()}`.slice(-2000);
    });
    child.on('error', (error) => {
      output[i] = `${output[i]}\n${error.message}`;
    });
    children.push(child);
  });
  const endpoints = members.map((m) => m.client);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const exited = children.findIndex((child) => child.exitCode !== null);
    if (exited !== -1 || Date.now() > deadline) {
      await stop();
      const why = exited !== -1 ? `member ${exited + 1} exited` : `not healthy within ${timeoutMs} ms`;
      throw new Error(`etcd cluster failed to start (${why}): ${output.join('\n---\n').trim()}`);
    }
    if ((await Promise.all(endpoints.map(healthy))).every(Boolean)) break;
    await sleep(200);
  }
  return { endpoints, stop };
}
