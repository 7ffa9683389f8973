import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import type { IndexUpdate } from '@timebox/core';
import { encodeCommand, type Command } from '../../src/state/commands.js';
import { MaterializedState, type MaterializedStateOptions } from '../../src/state/materialized-state.js';
import type { CommittedEntry } from '../../src/node/ports.js';

/** Fresh state folders for one test, closed and deleted after it. */
export function tempStates(): { open(options?: MaterializedStateOptions, dir?: string): MaterializedState; dir(): string } {
  const dirs: string[] = [];
  const states: MaterializedState[] = [];
  afterEach(async () => {
    for (const state of states.splice(0)) await state.close();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const dir = () => {
    const created = mkdtempSync(join(tmpdir(), 'timebox-raft-state-'));
    dirs.push(created);
    return created;
  };
  return {
    dir,
    open: (options, at) => {
      const state = MaterializedState.open(at ?? dir(), options);
      states.push(state);
      return state;
    },
  };
}

/** Log entries for `commands`, numbered from `firstIndex`, proposal IDs `p<index>` unless given. */
export function entries(
  firstIndex: number,
  commands: (Command | Uint8Array | { command: Command; proposalId: string | null })[],
): CommittedEntry[] {
  return commands.map((item, i) => {
    const index = firstIndex + i;
    if (item instanceof Uint8Array) return { index, kind: 'command', proposalId: `p${index}`, data: item };
    if ('command' in item) return { index, kind: 'command', proposalId: item.proposalId, data: encodeCommand(item.command) };
    return { index, kind: 'command', proposalId: `p${index}`, data: encodeCommand(item) };
  });
}

export const T0 = Date.UTC(2024, 0, 1);

/** An append command of `count` events `{n}` from sequence `from`. */
export function append(id: string[], from: number, count: number, index?: IndexUpdate): Command {
  return {
    type: 'append',
    id,
    expectedSequence: from,
    events: Array.from({ length: count }, (_, i) => ({
      type: 'Counted',
      sequence: from + i,
      timestamp: T0 + (from + i) * 1000,
      data: JSON.stringify({ n: from + i }),
    })),
    index,
  };
}
