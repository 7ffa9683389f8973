import { describe, expect, it } from 'vitest';
import type { Command, CommandResult } from '../../src/state/commands.js';
import type { MaterializedState } from '../../src/state/materialized-state.js';
import { append, entries, tempStates } from './temp-state.js';
import { everything } from '../support/pages.js';

const states = tempStates();

/** The whole log as `aggregate#sequence@position`, read in pages of `size`. */
function logOf(state: MaterializedState, size = 10_000): string[] {
  const out: string[] = [];
  let after = 0;
  for (;;) {
    const page = state.readLog(after, size, 10_000, 1 << 30);
    for (const { id, event } of page.entries) out.push(`${id.join('/')}#${event.sequence}@${event.position}`);
    after = page.after;
    if (page.end) return out;
  }
}

async function applyAll(state: MaterializedState, commands: Command[]): Promise<CommandResult[]> {
  const first = state.appliedIndex() + 1;
  const log = entries(first, commands).map((entry, i) => ({ ...entry, proposalId: `q${first + i}` }));
  const out = await state.apply(log);
  return log.map((entry) => out.get(entry.proposalId) as CommandResult);
}

describe('the log of the materialized state', () => {
  it('gives positions in log order, pages through them, and trimming and archiving take events out', async () => {
    const state = states.open();
    await applyAll(state, [append(['a'], 0, 2), append(['b', 'x'], 0, 1), append(['a'], 2, 2), append(['c'], 0, 1)]);
    expect(logOf(state)).toEqual(['a#0@1', 'a#1@2', 'b/x#0@3', 'a#2@4', 'a#3@5', 'c#0@6']);
    expect(logOf(state, 2)).toEqual(logOf(state));
    expect(state.logHead()).toBe(6);
    // loadEvents and loadSnapshot carry the same positions.
    expect(state.loadEvents(['a'], 1).map((e) => e.position)).toEqual([2, 4, 5]);

    await applyAll(state, [
      { type: 'save-snapshot', id: ['a'], data: '{}', sequence: 3, trim: true },
      { type: 'archive', id: ['b', 'x'] },
      append(['c'], 1, 1),
    ]);
    expect(logOf(state)).toEqual(['a#3@5', 'c#0@6', 'c#1@7']);
    // The head counts every position ever given, removed ones too.
    expect(state.logHead()).toBe(7);
    expect(state.readArchiveRecord(1)?.events).toEqual([expect.objectContaining({ sequence: 0, position: 3 })]);
  });

  it('a page reports where it stopped and whether the log went on', async () => {
    const state = states.open();
    await applyAll(state, [append(['a'], 0, 3)]);
    expect(state.readLog(0, 3, 10_000, 1 << 30)).toMatchObject({ after: 3, scanned: 3, end: true });
    expect(state.readLog(0, 2, 10_000, 1 << 30)).toMatchObject({ after: 2, scanned: 2, end: false });
    expect(state.readLog(3, 5, 10_000, 1 << 30)).toEqual({ entries: [], after: 3, scanned: 0, end: true });
    // Past the head (a checkpoint from a member further on): nothing, and `after` stays.
    expect(state.readLog(99, 5, 10_000, 1 << 30)).toEqual({ entries: [], after: 99, scanned: 0, end: true });
    // The scan limit stops a step even when nothing matched.
    expect(state.readLog(0, 5, 2, 1 << 30, { types: new Set(['None']) })).toEqual({ entries: [], after: 2, scanned: 2, end: false });
    // So does the byte budget, after the event that crossed it.
    expect(state.readLog(0, 5, 10_000, 1)).toMatchObject({ after: 1, scanned: 1, end: false });
  });

  it('filters by type and by ID prefix in the state, moving past what it skips', async () => {
    const state = states.open();
    const typed = (id: string[], type: string): Command => ({
      type: 'append',
      id,
      expectedSequence: 0,
      events: [{ type, sequence: 0, timestamp: 0, data: '{}' }],
    });
    await applyAll(state, [
      typed(['order', '1'], 'Placed'),
      typed(['order:1'], 'Placed'),
      typed(['order', '1', 'x'], 'Shipped'),
      typed(['orders', '2'], 'Placed'),
      typed(['order', '2'], 'Placed'),
      typed(['other'], 'Shipped'),
    ]);
    const ids = (page: ReturnType<MaterializedState['readLog']>) => page.entries.map((entry) => entry.id);
    const byPrefix = state.readLog(0, 10, 10_000, 1 << 30, { prefix: ['order'] });
    expect(ids(byPrefix)).toEqual([
      ['order', '1'],
      ['order', '1', 'x'],
      ['order', '2'],
    ]);
    expect(byPrefix).toMatchObject({ after: 6, end: true });
    const byType = state.readLog(0, 10, 10_000, 1 << 30, { types: new Set(['Shipped']) });
    expect(ids(byType)).toEqual([['order', '1', 'x'], ['other']]);
    const both = state.readLog(0, 1, 10_000, 1 << 30, { types: new Set(['Placed']), prefix: ['order', '2'] });
    expect(both).toMatchObject({ entries: [{ id: ['order', '2'], event: { position: 5 } }], after: 5, end: false });
  });

  it('keeps positions and the log across a restart and in a restored image', async () => {
    const dir = states.dir();
    const first = states.open({}, dir);
    await applyAll(first, [append(['a'], 0, 2), append(['b'], 0, 1), { type: 'archive', id: ['b'] }]);
    await first.close();
    const reopened = states.open({}, dir);
    expect(logOf(reopened)).toEqual(['a#0@1', 'a#1@2']);
    expect(await applyAll(reopened, [append(['a'], 2, 1)])).toEqual([{ type: 'appended', firstPosition: 4, count: 1 }]);

    const restored = states.open();
    await restored.restoreSnapshot(await reopened.exportSnapshot(), reopened.appliedIndex());
    expect(logOf(restored)).toEqual(logOf(reopened));
    expect(restored.logHead()).toBe(4);
    const next = [append(['c'], 0, 2)];
    expect(await applyAll(restored, next)).toEqual(await applyAll(reopened, next));
    expect(logOf(restored)).toEqual(['a#0@1', 'a#1@2', 'a#2@4', 'c#0@5', 'c#1@6']);
  });

  it('names the log once: the first open-log applied stays', async () => {
    const state = states.open();
    expect(state.logId()).toBeUndefined();
    await applyAll(state, [
      { type: 'open-log', logId: 'first' },
      { type: 'open-log', logId: 'second' },
    ]);
    expect(state.logId()).toBe('first');
  });
});

describe('one life per ID in the materialized state', () => {
  it('starts the next life one past the archived next sequence, for appends, snapshots and loads', async () => {
    const state = states.open();
    await applyAll(state, [append(['a'], 0, 3), { type: 'archive', id: ['a'] }]);
    expect(everything((r) => state.listAggregates([], r))).toEqual([]);
    expect(state.loadSnapshot(['a'])).toEqual({ sequence: 4, events: [] });
    expect(state.loadEvents(['a'], 0)).toEqual([]);
    const [oldLife, ahead, belowStart, atStart, beyond] = await applyAll(state, [
      append(['a'], 3, 1),
      append(['a'], 5, 1),
      { type: 'save-snapshot', id: ['a'], data: '{"old":1}', sequence: 3, trim: false },
      { type: 'save-snapshot', id: ['a'], data: '{"old":2}', sequence: 4, trim: false },
      { type: 'save-snapshot', id: ['a'], data: '{}', sequence: 5, trim: false },
    ]);
    expect(oldLife).toEqual({ type: 'conflict', actualSequence: 4, newEvents: [] });
    expect(ahead).toEqual({ type: 'conflict', actualSequence: 4, newEvents: [] });
    // At or below the life start a snapshot covers nothing of this life: ignored, nothing created.
    expect(belowStart).toEqual({ type: 'ok' });
    expect(atStart).toEqual({ type: 'ok' });
    expect(beyond).toEqual({ type: 'invalid-sequence', nextSequence: 4 });
    expect(everything((r) => state.listAggregates([], r))).toEqual([]);

    const [newLife] = await applyAll(state, [append(['a'], 4, 2)]);
    expect(newLife).toEqual({ type: 'appended', firstPosition: 4, count: 2 });
    expect(everything((r) => state.listAggregates([], r))).toEqual([['a']]);
    expect(state.loadSnapshot(['a'])).toMatchObject({ sequence: 4, events: [{ sequence: 4 }, { sequence: 5 }] });
    expect((await applyAll(state, [{ type: 'save-snapshot', id: ['a'], data: '{"n":1}', sequence: 4, trim: false }]))[0]).toEqual({
      type: 'ok',
    });
    expect(state.loadSnapshot(['a']).data).toBeUndefined();
    await applyAll(state, [{ type: 'save-snapshot', id: ['a'], data: '{"n":2}', sequence: 5, trim: true }]);
    expect(state.loadSnapshot(['a'])).toMatchObject({ data: '{"n":2}', sequence: 5, events: [{ sequence: 5 }] });

    // A second archive (trimmed life, snapshot and one event): the third life starts at 6 + 1.
    await applyAll(state, [{ type: 'archive', id: ['a'] }]);
    expect(state.readArchiveRecord(2)).toMatchObject({ snapshotData: '{"n":2}', snapshotSequence: 5, events: [{ sequence: 5 }] });
    expect(state.loadSnapshot(['a'])).toEqual({ sequence: 7, events: [] });
    expect((await applyAll(state, [append(['a'], 6, 1)]))[0]).toMatchObject({ type: 'conflict', actualSequence: 7 });
  });

  it('archives a snapshot-only aggregate whole, and an ID without live data not at all', async () => {
    const state = states.open();
    await applyAll(state, [
      append(['s'], 0, 2),
      { type: 'save-snapshot', id: ['s'], data: '{}', sequence: 2, trim: true },
      { type: 'archive', id: ['s'] },
      { type: 'archive', id: ['s'] },
      { type: 'archive', id: ['never'] },
    ]);
    expect(state.archiveSize()).toBe(1);
    expect(state.loadSnapshot(['s'])).toEqual({ sequence: 3, events: [] });
    expect(state.loadSnapshot(['never'])).toEqual({ sequence: 0, events: [] });
    expect((await applyAll(state, [append(['never'], 0, 1)]))[0]).toMatchObject({ type: 'appended' });
  });

  it('keeps the next life start across a restart and in a restored image', async () => {
    const dir = states.dir();
    const first = states.open({}, dir);
    await applyAll(first, [append(['a'], 0, 2), { type: 'archive', id: ['a'] }]);
    await first.close();
    const reopened = states.open({}, dir);
    expect(reopened.loadSnapshot(['a'])).toEqual({ sequence: 3, events: [] });
    const restored = states.open();
    await restored.restoreSnapshot(await reopened.exportSnapshot(), reopened.appliedIndex());
    expect((await applyAll(restored, [append(['a'], 2, 1)]))[0]).toMatchObject({ type: 'conflict', actualSequence: 3 });
    expect((await applyAll(reopened, [append(['a'], 3, 1)]))[0]).toMatchObject({ type: 'appended' });
  });
});

describe('projection records in the materialized state', () => {
  const claim = (name: string, holder: string, at: number, leaseMs = 100): Command => ({
    type: 'claim-projection',
    name,
    holder,
    at,
    leaseMs,
  });
  const save = (holder: string, generation: number, at: number, update: { checkpoint?: string; lastError?: string | null }): Command => ({
    type: 'save-projection',
    name: 'p',
    holder,
    generation,
    checkpoint: update.checkpoint,
    lastError: update.lastError,
    at,
    leaseMs: 100,
  });

  it('leases by the time stamped in the command, and writes only under the lease and generation', async () => {
    const state = states.open();
    const out = await applyAll(state, [
      claim('p', 'h1', 1000),
      claim('p', 'h2', 1050),
      save('h1', 0, 1090, { checkpoint: 'c1', lastError: 'boom' }),
      save('h2', 0, 1090, { checkpoint: 'stolen' }),
      claim('p', 'h2', 1189),
      claim('p', 'h2', 1190),
      save('h1', 0, 1195, { checkpoint: 'late' }),
      { type: 'reset-projection', name: 'p', checkpoint: 'r' },
      save('h2', 0, 1200, { checkpoint: 'old generation' }),
      save('h2', 1, 1200, { lastError: null }),
      { type: 'release-projection', name: 'p', holder: 'h1' },
      { type: 'release-projection', name: 'p', holder: 'h2' },
      claim('p', 'h3', 1201),
    ]);
    expect(out).toEqual([
      { type: 'claimed', held: true, record: { name: 'p', holder: 'h1', leaseUntil: 1100, generation: 0 } },
      { type: 'claimed', held: false, record: { name: 'p', holder: 'h1', leaseUntil: 1100, generation: 0 } },
      { type: 'ok' },
      { type: 'lease-lost' },
      // h1 renewed to 1190 by its save: still held at 1189, expired at 1190.
      {
        type: 'claimed',
        held: false,
        record: { name: 'p', holder: 'h1', leaseUntil: 1190, generation: 0, checkpoint: 'c1', lastError: 'boom' },
      },
      {
        type: 'claimed',
        held: true,
        record: { name: 'p', holder: 'h2', leaseUntil: 1290, generation: 0, checkpoint: 'c1', lastError: 'boom' },
      },
      { type: 'lease-lost' },
      { type: 'ok' },
      { type: 'generation-changed' },
      { type: 'ok' },
      { type: 'ok' },
      { type: 'ok' },
      { type: 'claimed', held: true, record: { name: 'p', holder: 'h3', leaseUntil: 1301, generation: 1, checkpoint: 'r' } },
    ]);
    // A read judges expiry by the clock it is given, and shows no holder once the lease ran out.
    expect(state.loadProjection('p', 1300)).toEqual({ name: 'p', holder: 'h3', leaseUntil: 1301, generation: 1, checkpoint: 'r' });
    expect(state.loadProjection('p', 1301)).toEqual({ name: 'p', leaseUntil: 0, generation: 1, checkpoint: 'r' });
    expect(state.loadProjection('unknown', 0)).toBeUndefined();
  });

  it('creates the record on reset, and a save or release of a missing record changes nothing', async () => {
    const state = states.open();
    const out = await applyAll(state, [
      save('h', 0, 0, { checkpoint: 'x' }),
      { type: 'release-projection', name: 'p', holder: 'h' },
      { type: 'reset-projection', name: 'q', checkpoint: undefined },
      { type: 'reset-projection', name: 'q', checkpoint: 'exact \u{1F642} text' },
    ]);
    expect(out).toEqual([{ type: 'lease-lost' }, { type: 'ok' }, { type: 'ok' }, { type: 'ok' }]);
    expect(state.loadProjection('p', 0)).toBeUndefined();
    expect(state.loadProjection('q', 0)).toEqual({ name: 'q', leaseUntil: 0, generation: 2, checkpoint: 'exact \u{1F642} text' });
  });
});
