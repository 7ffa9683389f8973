import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { INSTALL_HINT, ThrowawayServer, waitFor } from './server.js';

const run = promisify(execFile);

/** A real three-master Redis Cluster of throwaway `redis-server` processes, for tests. */
export class ThrowawayCluster {
  private constructor(
    readonly dir: string,
    readonly nodes: readonly ThrowawayServer[],
  ) {}

  /**
   * @param masters - how many masters (no replicas)
   * @param args - more `redis-server` arguments for every node, after the defaults (no persistence)
   */
  static async start(masters = 3, args: readonly string[] = []): Promise<ThrowawayCluster> {
    const dir = await mkdtemp(join(tmpdir(), 'timebox-redis-cluster-'));
    const nodes: ThrowawayServer[] = [];
    try {
      for (let i = 0; i < masters; i++) {
        const nodeDir = join(dir, `node-${i}`);
        await mkdir(nodeDir);
        nodes.push(
          await ThrowawayServer.start({
            dir: nodeDir,
            args: [
              '--cluster-enabled',
              'yes',
              '--cluster-config-file',
              join(nodeDir, 'nodes.conf'),
              '--cluster-node-timeout',
              '5000',
              '--save',
              '',
              '--appendonly',
              'no',
              ...args,
            ],
          }),
        );
      }
      const addresses = nodes.map((node) => `127.0.0.1:${node.port}`);
      await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 60_000 }).catch(
        (error: NodeJS.ErrnoException) => {
          throw error.code === 'ENOENT' ? new Error(`redis-cli was not found: ${INSTALL_HINT}`) : error;
        },
      );
      const cluster = new ThrowawayCluster(dir, nodes);
      await waitFor(
        'cluster_state:ok on every node',
        async () => {
          for (const node of nodes) {
            const client = new Redis(node.port, '127.0.0.1', { lazyConnect: true });
            try {
              const info = await client.cluster('INFO');
              if (!info.includes('cluster_state:ok')) return false;
            } finally {
              client.disconnect();
            }
          }
          return true;
        },
        30_000,
      );
      return cluster;
    } catch (error) {
      for (const node of nodes) await node.stop();
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** A new ioredis Cluster client over the nodes. */
  client(): Cluster {
    return new Cluster(
      this.nodes.map((node) => ({ host: '127.0.0.1', port: node.port })),
      { redisOptions: { maxRetriesPerRequest: 0 } },
    );
  }

  /** Kills every node and removes the folder. */
  async stop(): Promise<void> {
    for (const node of this.nodes) await node.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}
