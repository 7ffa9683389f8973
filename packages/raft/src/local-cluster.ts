import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, createStore, requirePositiveInteger, type Config, type EventMap, type Store } from '@timebox/core';
import { RaftBackend } from './raft-backend.js';
import type { RaftMemberBackendOptions, RaftMemberOptions, RaftServerAddress } from './options.js';
import { RaftMember } from './raft-member.js';

/** Member settings shared by every member of a {@link LocalRaftCluster} (IDs, addresses and folders are assigned). */
export type LocalMemberSettings = Partial<Omit<RaftMemberOptions, 'localId' | 'address' | 'dataDir' | 'servers'>>;

/** How to start a {@link LocalRaftCluster}. */
export interface LocalClusterOptions {
  /** Number of members. Default 3. */
  readonly size?: number;
  /**
   * Folder holding one data folder per member (`n1/`, `n2/`, …). Default: a fresh temporary
   * folder, removed by `close()`. A folder given here is kept, so a later cluster over it
   * restarts from the data.
   */
  readonly dir?: string;
  /** Settings for every member (timings, publisher, faults, …). */
  readonly member?: LocalMemberSettings;
}

/**
 * A whole cluster in this one process, members `n1` … `nN` on free loopback ports: for examples,
 * tests and trying the backend out. Each member is a full {@link RaftMember} (its own WAL, LMDB
 * state and TCP listener), so it behaves as separate processes would, minus process crashes. A
 * real deployment runs one member per process with `RaftMember.open`.
 */
export class LocalRaftCluster {
  /** The options each member was opened with, by position. */
  readonly options: readonly RaftMemberOptions[];
  /** The running members by position; `undefined` while stopped. */
  readonly members: (RaftMember | undefined)[];
  readonly #removeDir: boolean;
  #closing: Promise<void> | undefined;

  private constructor(
    /** The folder holding the members' data folders. */
    readonly dir: string,
    options: RaftMemberOptions[],
    removeDir: boolean,
  ) {
    this.options = options;
    this.members = new Array<RaftMember | undefined>(options.length).fill(undefined);
    this.#removeDir = removeDir;
  }

  /** Picks ports, opens every member and returns without waiting for a leader (see `ready`). */
  static async start(options: LocalClusterOptions = {}): Promise<LocalRaftCluster> {
    if (options === null || typeof options !== 'object') throw new ConfigError('options', 'must be an object', options);
    const size = options.size ?? 3;
    requirePositiveInteger('size', size);
    if (options.dir !== undefined && (typeof options.dir !== 'string' || options.dir === ''))
      throw new ConfigError('dir', 'must be a non-empty path', options.dir);
    const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'timebox-raft-')));
    await mkdir(dir, { recursive: true });
    for (let attempt = 1; ; attempt++) {
      const servers: RaftServerAddress[] = [];
      for (let i = 0; i < size; i++) servers.push({ id: `n${i + 1}`, address: `127.0.0.1:${await freeLoopbackPort()}` });
      const memberOptions = servers.map((server) => ({
        ...options.member,
        localId: server.id,
        address: server.address,
        dataDir: join(dir, server.id),
        servers,
      }));
      const cluster = new LocalRaftCluster(dir, memberOptions, options.dir === undefined);
      try {
        for (let i = 0; i < size; i++) await cluster.restart(i);
        return cluster;
      } catch (error) {
        // A port found free was taken before its member listened (another socket got it): pick new ports.
        const retry = isAddressInUse(error) && attempt < PORT_ATTEMPTS;
        await cluster.#closeMembers();
        if (!retry) {
          if (options.dir === undefined) await rm(dir, { recursive: true, force: true });
          throw error;
        }
      }
    }
  }

  /** The running member at position `i`; throws if it is stopped. */
  member(i: number): RaftMember {
    const member = this.members[i];
    if (member === undefined) throw new Error(`member ${i} (${this.options[i]?.localId ?? '?'}) is not running`);
    return member;
  }

  /** (Re)opens member `i` from its data folder. */
  async restart(i: number): Promise<RaftMember> {
    const options = this.options[i];
    if (options === undefined) throw new RangeError(`no member at position ${i}`);
    if (this.members[i] !== undefined) throw new Error(`member ${i} (${options.localId}) is running`);
    for (let attempt = 1; ; attempt++) {
      try {
        const member = await RaftMember.open(options);
        this.members[i] = member;
        return member;
      } catch (error) {
        // Its port may briefly be held by another socket (an outgoing connection got it meanwhile).
        if (!isAddressInUse(error) || attempt >= PORT_ATTEMPTS) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
    }
  }

  /**
   * Stops member `i` cleanly; its data stays for `restart(i)`. A leader hands leadership over
   * first unless `transferLeadership` is false (see `RaftMember.close`).
   */
  async stop(i: number, options: { readonly transferLeadership?: boolean } = {}): Promise<void> {
    const member = this.members[i];
    this.members[i] = undefined;
    await member?.close(options);
  }

  /** Resolves once every running member knows a leader and has caught up with the commit it joined at. */
  async ready(): Promise<void> {
    await Promise.all(this.members.map((member) => Promise.resolve(member?.ready())));
  }

  /**
   * A store on member `i` that owns the cluster: `store.close()` closes every member and, when
   * the cluster made its own temporary folder, removes it.
   */
  openStore<M extends EventMap = EventMap>(config: Config<M> = {}, i = 0, backendOptions: RaftMemberBackendOptions = {}): Store<M> {
    const member = this.member(i);
    const replicator = {
      propose: (command: Uint8Array) => member.server.propose(command),
      ready: () => member.ready(),
      readBarrier: () => member.server.readBarrier(),
      close: () => this.close(),
    };
    const backend = new RaftBackend({
      state: member.state,
      replicator,
      ownsNode: true,
      archiveLeaseMs: backendOptions.archiveLeaseMs,
      reads: backendOptions.reads,
      maxEntryBytes: member.options.maxEntryBytes,
    });
    return createStore<M>(backend, config);
  }

  /** Closes every member, then removes the folder if the cluster created it. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#closeMembers();
      if (this.#removeDir) await rm(this.dir, { recursive: true, force: true });
    })();
    return this.#closing;
  }

  async #closeMembers(): Promise<void> {
    const members = this.members.splice(0, this.members.length, ...new Array<undefined>(this.members.length).fill(undefined));
    await Promise.all(members.map((member) => Promise.resolve(member?.close())));
  }
}

const PORT_ATTEMPTS = 5;

function isAddressInUse(error: unknown): boolean {
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    if ((cause as NodeJS.ErrnoException).code === 'EADDRINUSE') return true;
  }
  return false;
}

/** Starts a cluster in this process; see {@link LocalRaftCluster}. */
export function startLocalCluster(options: LocalClusterOptions = {}): Promise<LocalRaftCluster> {
  return LocalRaftCluster.start(options);
}

/** A TCP port free on 127.0.0.1 right now (bound and released: fine on one machine, racy across many). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
