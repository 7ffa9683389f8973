import { InvalidConfChangeError, RaftProtocolError } from './errors.js';
import type { Entry, NodeId, Snapshot, SnapshotMeta } from './types.js';

/**
 * Who is in the cluster. Voters elect the leader and count toward every quorum; learners receive
 * the log but never count and never campaign. `addresses` is carried for the driver (how to reach
 * a member added through the log); the core never reads it.
 */
export interface Configuration {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  readonly addresses: Readonly<Record<NodeId, string>>;
}

/**
 * One single-server membership change (Raft dissertation §4.1): add a member as a learner, promote
 * a learner to voter, or remove a voter or learner. Each changes the voter set by at most one, so
 * any majority of the old voters overlaps any majority of the new.
 */
export type ConfChange =
  | { readonly type: 'add-learner'; readonly node: NodeId; readonly address?: string }
  | { readonly type: 'promote'; readonly node: NodeId }
  | { readonly type: 'remove'; readonly node: NodeId };

/** The configuration with no members (a node that joins learns its configuration from the leader). */
export const EMPTY_CONFIGURATION: Configuration = Object.freeze({ voters: [], learners: [], addresses: {} });

/** The configuration a change produces; throws InvalidConfChangeError when it does not apply to `config`. */
export function applyConfChange(config: Configuration, change: ConfChange): Configuration {
  const node: unknown = change?.node;
  if (typeof node !== 'string' || node === '') throw new InvalidConfChangeError('the node ID must be a non-empty string');
  const isVoter = config.voters.includes(change.node);
  const isLearner = config.learners.includes(change.node);
  switch (change.type) {
    case 'add-learner': {
      if (isVoter || isLearner) throw new InvalidConfChangeError(`${JSON.stringify(change.node)} is already a member`);
      const address: unknown = change.address;
      if (address !== undefined && (typeof address !== 'string' || address === ''))
        throw new InvalidConfChangeError('the address must be a non-empty string');
      // fromEntries defines own properties, so an ID like "__proto__" stays a plain key.
      const addresses = Object.fromEntries([
        ...Object.entries(config.addresses),
        ...(change.address === undefined ? [] : [[change.node, change.address] as const]),
      ]);
      return { voters: config.voters, learners: [...config.learners, change.node], addresses };
    }
    case 'promote':
      if (!isLearner) throw new InvalidConfChangeError(`${JSON.stringify(change.node)} is not a learner, so it cannot be promoted`);
      return {
        voters: [...config.voters, change.node],
        learners: config.learners.filter((id) => id !== change.node),
        addresses: config.addresses,
      };
    case 'remove': {
      if (!isVoter && !isLearner) throw new InvalidConfChangeError(`${JSON.stringify(change.node)} is not a member`);
      if (isVoter && config.voters.length === 1) throw new InvalidConfChangeError('the last voter cannot be removed');
      const addresses = Object.fromEntries(Object.entries(config.addresses).filter(([id]) => id !== change.node));
      return {
        voters: config.voters.filter((id) => id !== change.node),
        learners: config.learners.filter((id) => id !== change.node),
        addresses,
      };
    }
    default:
      throw new InvalidConfChangeError(`unknown change type ${JSON.stringify((change as { type?: unknown }).type)}`);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The payload of a `config` entry: the change and the whole configuration it produced. */
export function encodeConfigEntry(change: ConfChange, config: Configuration): Uint8Array {
  return encoder.encode(JSON.stringify({ change, config }));
}

/** Reads a `config` entry's payload back. */
export function decodeConfigEntry(data: Uint8Array): { change: ConfChange; config: Configuration } {
  try {
    const parsed = JSON.parse(decoder.decode(data)) as { change: ConfChange; config: Configuration };
    const config = parsed.config;
    if (!Array.isArray(config?.voters) || !Array.isArray(config.learners) || typeof config.addresses !== 'object') {
      throw new Error('missing fields');
    }
    return parsed;
  } catch (error) {
    throw new RaftProtocolError(`malformed configuration entry: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** The configuration a snapshot records. */
export function snapshotConfiguration(meta: SnapshotMeta): Configuration {
  return { voters: [...meta.voters], learners: [...(meta.learners ?? [])], addresses: { ...meta.addresses } };
}

/** Whether two configurations have the same voters and learners (addresses aside). */
export function sameConfiguration(a: Configuration, b: Configuration): boolean {
  return sameSet(a.voters, b.voters) && sameSet(a.learners, b.learners);
}

function sameSet(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  return a.length === b.length && a.every((id) => b.includes(id));
}

/** Configurations kept for `at()`: enough for any index a driver still snapshots at. */
const MAX_KEPT = 64;

/**
 * The configuration of a node's log. A change takes effect as soon as its entry is in the log
 * (appended, not committed: dissertation §4.1), so it is undone when a new leader truncates the
 * entry away. Keeps the configuration of the snapshot and of every `config` entry after it, and a
 * few from before the latest snapshot: the driver may still take a snapshot of its own at an
 * applied index below a snapshot it just received.
 */
export class MembershipLog {
  /** Oldest first; the first is a snapshot's (or the bootstrap) configuration. */
  private configs: { index: number; config: Configuration }[];

  constructor(baseIndex: number, base: Configuration) {
    this.configs = [{ index: baseIndex, config: base }];
  }

  /** The configuration in force: the latest in the log. */
  current(): Configuration {
    return (this.configs[this.configs.length - 1] as { config: Configuration }).config;
  }

  /** The index of the latest configuration entry (or of the snapshot that holds it). */
  currentIndex(): number {
    return (this.configs[this.configs.length - 1] as { index: number }).index;
  }

  /** The configuration as of `index` (for a snapshot taken there). */
  at(index: number): Configuration {
    let found: Configuration | null = null;
    for (const known of this.configs) {
      if (known.index > index) break;
      found = known.config;
    }
    if (found === null) {
      throw new RaftProtocolError(`no configuration is known at index ${index} (the oldest kept is at ${this.configs[0]?.index})`);
    }
    return found;
  }

  /** Entries were written from `entries[0].index` on, replacing whatever followed. Returns whether the configuration changed. */
  appended(entries: readonly Entry[]): boolean {
    const first = entries[0];
    if (first === undefined) return false;
    const before = this.current();
    // The entry at position 0 is a snapshot's (or the bootstrap) configuration: appends never reach it.
    this.configs = this.configs.filter((known, position) => position === 0 || known.index < first.index);
    for (const entry of entries) {
      if (entry.kind === 'config') this.configs.push({ index: entry.index, config: decodeConfigEntry(entry.data).config });
    }
    this.trim();
    return this.current() !== before;
  }

  /** The log was replaced by a snapshot. */
  restored(snapshot: Snapshot): void {
    const index = snapshot.meta.index;
    this.configs = this.configs.filter((known) => known.index < index);
    this.configs.push({ index, config: snapshotConfiguration(snapshot.meta) });
    this.trim();
  }

  private trim(): void {
    if (this.configs.length > MAX_KEPT) this.configs = this.configs.slice(this.configs.length - MAX_KEPT);
  }
}
