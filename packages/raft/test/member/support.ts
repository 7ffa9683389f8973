import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RaftMember, type RaftMemberOptions } from '../../src/index.js';

/** A free TCP port on 127.0.0.1 (bound and released; fine for tests on one machine). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Fast timings for loopback tests: elections in a few hundred ms. */
export const FAST = { tickMs: 20, electionTicks: 10 } as const;

/** A cluster of `size` members in this process, on loopback ports, in a fresh temporary folder. */
export class LocalCluster {
  private constructor(
    readonly dir: string,
    readonly options: RaftMemberOptions[],
    readonly members: (RaftMember | undefined)[],
  ) {}

  static async start(size: number, extra: Partial<RaftMemberOptions> = {}): Promise<LocalCluster> {
    const dir = await mkdtemp(join(tmpdir(), 'timebox-raft-'));
    const servers = [];
    for (let i = 0; i < size; i++) servers.push({ id: `n${i + 1}`, address: `127.0.0.1:${await freePort()}` });
    const options = servers.map((server) => ({ ...FAST, ...extra, localId: server.id, address: server.address, dataDir: join(dir, server.id), servers }));
    const cluster = new LocalCluster(dir, options, new Array(size).fill(undefined));
    for (let i = 0; i < size; i++) await cluster.restart(i);
    return cluster;
  }

  /** (Re)opens member `i` from its data folder. */
  async restart(i: number): Promise<RaftMember> {
    const member = await RaftMember.open(this.options[i] as RaftMemberOptions);
    this.members[i] = member;
    return member;
  }

  member(i: number): RaftMember {
    const member = this.members[i];
    if (member === undefined) throw new Error(`member ${i} is down`);
    return member;
  }

  /** Stops member `i` cleanly (its data stays). */
  async stop(i: number): Promise<void> {
    const member = this.members[i];
    this.members[i] = undefined;
    await member?.close();
  }

  /** The index of the current leader among the running members, waiting for one. */
  async leader(timeoutMs = 10_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.members.findIndex((member) => member?.status().role === 'leader');
      if (i >= 0) return i;
      if (Date.now() > deadline) throw new Error(`no leader within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.members.map((member) => member?.close()));
    await rm(this.dir, { recursive: true, force: true });
  }
}
