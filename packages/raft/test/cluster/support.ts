import { createStore, type Config, type Store } from '@timebox/core';
import { expect } from 'vitest';
import type { PublishedEvent } from '../../src/state/materialized-state.js';
import type { RaftMember } from '../../src/raft-member.js';
import type { LocalCluster } from '../member/support.js';
import { everything } from '../support/pages.js';

/** What each member's state published, in order, by member position (subscribed before any write). */
export function recordPublished(cluster: LocalCluster): string[][] {
  return cluster.members.map((member) => {
    const seen: string[] = [];
    member?.state.onAppended((events: PublishedEvent[]) => {
      for (const event of events) seen.push(`${JSON.stringify(event.aggregateId)}#${event.sequence} ${event.type} ${event.data}`);
    });
    return seen;
  });
}

/** A store over member `i` (linearizable reads unless told otherwise). */
export function storeOn(cluster: LocalCluster, i: number, reads: 'linearizable' | 'local' = 'linearizable', config: Config = {}): Store {
  return createStore(cluster.member(i).backend({ reads }), config);
}

/** Every aggregate with its events, as this member's local state holds them. */
export function contentsOf(member: RaftMember): { id: readonly string[]; events: string[] }[] {
  return everything((r) => member.state.listAggregates([], r)).map((id) => ({
    id,
    events: member.state.loadEvents(id, 0).map((event) => `${event.sequence} ${event.type} ${event.data}`),
  }));
}

/**
 * Asserts the running members hold one state: the same aggregates and events, and byte-equal
 * `exportSnapshot()` images (they have applied the same index: call after `cluster.converged()`).
 */
export async function expectIdenticalStates(cluster: LocalCluster): Promise<Uint8Array> {
  const running = cluster.members.filter((member): member is RaftMember => member !== undefined);
  const first = running[0]!;
  const contents = contentsOf(first);
  const image = await first.state.exportSnapshot();
  for (const member of running.slice(1)) {
    expect(member.status().applied, `${member.id} applied index`).toBe(first.status().applied);
    expect(contentsOf(member), `${member.id} contents`).toEqual(contents);
    const other = await member.state.exportSnapshot();
    expect(Buffer.from(other).equals(Buffer.from(image)), `${member.id} exportSnapshot() equals ${first.id}'s`).toBe(true);
  }
  return image;
}
