import { MemoryLogStorage } from '../../src/consensus/storage.js';
import { RaftNode } from '../../src/consensus/raft.js';
import { SeededRandom } from '../../src/consensus/random.js';
import type { Entry, Message, Ready } from '../../src/consensus/types.js';
import type { RaftNodeConfig } from '../../src/consensus/config.js';

const encoder = new TextEncoder();

/** Entries with the given terms, starting at index `from`. */
export function entries(terms: readonly number[], from = 1): Entry[] {
  return terms.map((term, i) => ({
    term,
    index: from + i,
    kind: 'command',
    proposalId: `p${from + i}`,
    data: encoder.encode(`v${from + i}`),
  }));
}

/** Storage holding a log with these terms and a hard state. */
export function storageWith(
  terms: readonly number[],
  hardState: { term: number; vote?: string | null; commit?: number } = { term: terms.at(-1) ?? 0 },
): MemoryLogStorage {
  const storage = new MemoryLogStorage();
  storage.append(entries(terms));
  storage.setHardState({ term: hardState.term, vote: hardState.vote ?? null, commit: hardState.commit ?? 0 });
  return storage;
}

/** A standalone node over `storage` (a fresh one by default). */
export function makeNode(
  id: string,
  voters: readonly string[],
  storage = new MemoryLogStorage(),
  options: Partial<RaftNodeConfig> = {},
  seed = 1,
): RaftNode {
  return new RaftNode({ electionTicks: 10, heartbeatTicks: 1, ...options, id, voters, storage, random: new SeededRandom(seed) });
}

/** Takes a Ready, writes it to `storage`, advances, and returns it. */
export function drain(node: RaftNode, storage: MemoryLogStorage): Ready {
  const ready = node.ready();
  if (ready.snapshot !== null) storage.applySnapshot(ready.snapshot);
  storage.append(ready.entries);
  if (ready.hardState !== null) storage.setHardState(ready.hardState);
  node.advance(ready);
  return ready;
}

/** All messages in a Ready, in send order. */
export function sent(ready: Ready): Message[] {
  return [...ready.messages, ...ready.messagesAfterPersist];
}
