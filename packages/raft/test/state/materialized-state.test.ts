import { describe, expect, it } from 'vitest';
import { encodeCommand, type Command, type CommandResult } from '../../src/state/commands.js';
import type { MaterializedState, PublishedEvent } from '../../src/state/materialized-state.js';
import type { CommittedEntry } from '../../src/node/ports.js';
import { append, entries, T0, tempStates } from './temp-state.js';
import { everything } from '../support/pages.js';

const states = tempStates();

/** Everything the read API says about a few aggregates, labels and statuses. */
function readAll(state: MaterializedState) {
  const ids = everything((r) => state.listAggregates([], r));
  return {
    applied: state.appliedIndex(),
    ids,
    aggregates: ids.map((id) => ({
      id,
      events: state.loadEvents(id, 0),
      snapshot: state.loadSnapshot(id),
      status: state.getAggregateStatus(id),
    })),
    open: everything((r) => state.listAggregatesByStatus('open', r)),
    done: everything((r) => state.listAggregatesByStatus('done', r)),
    regions: everything((r) => state.listLabelValues('region', r)).map((value) => [
      value,
      everything((r) => state.listAggregatesByLabel('region', value, r)),
    ]),
    archive: state.archiveSize(),
    log: state.readLog(0, 10_000, 10_000, 1 << 30),
    head: state.logHead(),
    logId: state.logId(),
    projections: ['p0', 'p1'].map((name) => state.loadProjection(name, 1_700_000_000_000)),
  };
}

function results(map: ReadonlyMap<string, CommandResult>, ...ids: string[]): CommandResult[] {
  return ids.map((id) => map.get(id) as CommandResult);
}

describe('MaterializedState', () => {
  it('applies appends, conflicts and snapshots with the backend semantics', async () => {
    const state = states.open();
    const out = await state.apply(
      entries(1, [
        append(['a'], 0, 3, { status: 'open', statusTime: T0 + 2000, labels: { region: 'west' } }),
        append(['a'], 1, 1),
        append(['a'], 5, 1),
        { type: 'save-snapshot', id: ['a'], data: '{"n":2}', sequence: 2, trim: true },
        { type: 'save-snapshot', id: ['a'], data: '{"old":1}', sequence: 1, trim: false },
        { type: 'save-snapshot', id: ['b'], data: '{}', sequence: 1, trim: false },
      ]),
    );
    const [ok, conflict, ahead, snap, older, beyond] = results(out, 'p1', 'p2', 'p3', 'p4', 'p5', 'p6');
    expect(ok).toEqual({ type: 'appended', firstPosition: 1, count: 3 });
    expect(conflict).toMatchObject({ type: 'conflict', actualSequence: 3 });
    expect(conflict?.type === 'conflict' && conflict.newEvents.map((e) => [e.sequence, e.position])).toEqual([
      [1, 2],
      [2, 3],
    ]);
    expect(ahead).toEqual({ type: 'conflict', actualSequence: 3, newEvents: [] });
    expect(snap).toEqual({ type: 'ok' });
    expect(older).toEqual({ type: 'ok' });
    expect(beyond).toEqual({ type: 'invalid-sequence', nextSequence: 0 });
    expect(state.appliedIndex()).toBe(6);
    expect(state.loadEvents(['a'], 0).map((e) => e.sequence)).toEqual([2]);
    expect(state.loadSnapshot(['a'])).toEqual({
      data: '{"n":2}',
      sequence: 2,
      events: [{ type: 'Counted', sequence: 2, timestamp: T0 + 2000, data: '{"n":2}', position: 3 }],
    });
    expect(everything((r) => state.listAggregates([], r))).toEqual([['a']]);
    expect(everything((r) => state.listAggregatesByStatus('open', r))).toEqual([{ id: ['a'], timestamp: T0 + 2000 }]);
    expect(everything((r) => state.listAggregatesByLabel('region', 'west', r))).toEqual([['a']]);
  });

  it('is durable: reopening gives the same state and applied index, and a replay is skipped', async () => {
    const dir = states.dir();
    const first = states.open({}, dir);
    const log = entries(1, [
      append(['a'], 0, 2, { status: 'open', statusTime: T0, labels: { region: 'west' } }),
      append(['b', 'x:y'], 0, 1),
      { type: 'archive', id: ['b', 'x:y'] },
      append(['a'], 0, 1),
    ]);
    const firstResults = await first.apply(log);
    const before = readAll(first);
    await first.close();

    const reopened = states.open({}, dir);
    expect(reopened.appliedIndex()).toBe(4);
    expect(readAll(reopened)).toEqual(before);
    // The driver replays the log from its start: nothing is applied twice, results are remembered.
    const replay = await reopened.apply([...log, ...entries(5, [append(['a'], 2, 1)])]);
    expect(results(replay, 'p1', 'p2', 'p3', 'p4')).toEqual(results(firstResults, 'p1', 'p2', 'p3', 'p4'));
    // b's event (position 3) was archived; positions are never given twice.
    expect(replay.get('p5')).toEqual({ type: 'appended', firstPosition: 4, count: 1 });
    expect(reopened.appliedIndex()).toBe(5);
    expect(reopened.loadEvents(['a'], 0).map((e) => e.sequence)).toEqual([0, 1, 2]);
    expect(reopened.archiveSize()).toBe(1);
  });

  it('refuses a gap in the log indexes and applies nothing', async () => {
    const state = states.open();
    await state.apply(entries(1, [append(['a'], 0, 1)]));
    await expect(state.apply(entries(3, [append(['a'], 1, 1)]))).rejects.toThrow(/expected log index 2/);
    expect(state.appliedIndex()).toBe(1);
  });

  it('treats empty entries as advancing the index only', async () => {
    const state = states.open();
    const out = await state.apply([
      { index: 1, kind: 'empty', proposalId: null, data: new Uint8Array(0) },
      ...entries(2, [append(['a'], 0, 1)]),
    ]);
    expect([...out.keys()]).toEqual(['p2']);
    expect(state.appliedIndex()).toBe(2);
  });

  it('applies a proposal ID that appears twice in the log once; both get the first result', async () => {
    const state = states.open();
    const twice: Command = append(['dup'], 0, 1);
    const out = await state.apply(
      entries(1, [
        { command: twice, proposalId: 'same' },
        { command: twice, proposalId: 'same' },
      ]),
    );
    expect(out.get('same')).toEqual({ type: 'appended', firstPosition: 1, count: 1 });
    // A later duplicate (a retried forward) still gets the first result, not a conflict.
    const later = await state.apply(entries(3, [append(['other'], 0, 1), { command: twice, proposalId: 'same' }]));
    expect(later.get('same')).toEqual({ type: 'appended', firstPosition: 1, count: 1 });
    expect(state.loadEvents(['dup'], 0)).toHaveLength(1);
    expect(state.appliedIndex()).toBe(4);
  });

  it('forgets a proposal ID once proposalWindow later proposals were applied, the same way on every node', async () => {
    const state = states.open({ proposalWindow: 2 });
    const command = append(['w'], 0, 1);
    await state.apply(entries(1, [{ command, proposalId: 'x' }]));
    await state.apply(entries(2, [append(['o'], 0, 1)]));
    expect((await state.apply(entries(3, [{ command, proposalId: 'x' }]))).get('x')).toEqual({
      type: 'appended',
      firstPosition: 1,
      count: 1,
    });
    await state.apply(entries(4, [append(['o'], 1, 1)]));
    // Two proposals applied since (the duplicate at 3 was answered, not applied): beyond the window, so it is a new command (and conflicts).
    expect((await state.apply(entries(5, [{ command, proposalId: 'x' }]))).get('x')).toMatchObject({ type: 'conflict', actualSequence: 1 });
  });

  it('answers an undecodable entry with a deterministic invalid-command result and goes on', async () => {
    const state = states.open();
    const out = await state.apply(entries(1, [Uint8Array.from([1, 200, 3]), append(['a'], 0, 1), new Uint8Array(0)]));
    expect(out.get('p1')).toMatchObject({ type: 'invalid-command', reason: expect.stringMatching(/undecodable/) as unknown });
    expect(out.get('p2')).toEqual({ type: 'appended', firstPosition: 1, count: 1 });
    expect(out.get('p3')).toMatchObject({ type: 'invalid-command' });
    expect(state.appliedIndex()).toBe(3);
    const longId = ['x'.repeat(3000)];
    const tooLong = await state.apply(
      entries(4, [append(longId, 0, 1), append(['s'], 0, 1, { status: 's'.repeat(2000), statusTime: 0, labels: {} })]),
    );
    expect(tooLong.get('p4')).toMatchObject({ type: 'invalid-command', reason: expect.stringMatching(/aggregate ID/) as unknown });
    expect(tooLong.get('p5')).toMatchObject({ type: 'invalid-command', reason: expect.stringMatching(/status/) as unknown });
    expect(everything((r) => state.listAggregates([], r))).toEqual([['a']]);
  });

  it('applies a batch in one transaction: a failure in a later entry leaves nothing of the earlier ones', async () => {
    const state = states.open();
    await state.apply(entries(1, [append(['a'], 0, 1)]));
    const before = await state.exportSnapshot();
    // Data that is not bytes at all is a driver bug, not a command: the apply throws mid-batch.
    const broken: CommittedEntry[] = [
      ...entries(2, [append(['a'], 1, 1), append(['b'], 0, 1), { type: 'archive', id: ['a'] }]),
      { index: 5, kind: 'command', proposalId: 'bad', data: null as unknown as Uint8Array },
    ];
    await expect(state.apply(broken)).rejects.toThrow();
    expect(state.appliedIndex()).toBe(1);
    expect(Buffer.from(await state.exportSnapshot()).equals(Buffer.from(before))).toBe(true);
    // The same indexes apply fine afterwards.
    await state.apply(broken.slice(0, 3));
    expect(state.appliedIndex()).toBe(4);
    expect(state.archiveSize()).toBe(1);
  });

  it('hands the publisher the stored events in commit order, only for successful appends, after the commit', async () => {
    const calls: { events: PublishedEvent[]; applied: number; visible: number }[] = [];
    const state: MaterializedState = states.open({
      publisher: (events) =>
        calls.push({ events, applied: state.appliedIndex(), visible: state.loadEvents(events[0]!.aggregateId, 0).length }),
    });
    await state.apply(
      entries(1, [append(['a'], 0, 2), append(['a'], 0, 1), append(['b'], 0, 1), append(['a'], 2, 0), append(['a'], 2, 1)]),
    );
    expect(calls.map((call) => call.events.map((e) => `${e.aggregateId.join('/')}#${e.sequence}`))).toEqual([
      ['a#0', 'a#1'],
      ['b#0'],
      ['a#2'],
    ]);
    // Called only once the whole batch was committed (and durable: commits sync before resolving).
    expect(calls.map((call) => call.applied)).toEqual([5, 5, 5]);
    expect(calls[0]!.visible).toBe(3);
    expect(calls[0]!.events[0]).toEqual({ type: 'Counted', sequence: 0, timestamp: T0, data: '{"n":0}', position: 1, aggregateId: ['a'] });
    expect(calls.flatMap((call) => call.events.map((e) => e.position))).toEqual([1, 2, 3, 4]);
  });

  it('hands out results before the commit is durable, and whenCommitted holds reads back until it is', async () => {
    const published: number[] = [];
    const state: MaterializedState = states.open({ publisher: () => published.push(state.appliedIndex()) });
    const order: string[] = [];
    let decided: ReadonlyMap<string, CommandResult> | undefined;
    let visibleAtDecision = -1;
    let commitWaited: Promise<void> | undefined;
    const applied = state
      .apply(entries(1, [append(['early'], 0, 2), append(['early'], 0, 1)]), (results) => {
        order.push('decided');
        decided = results;
        // The batch is not committed yet: reads still show the old state, and must wait.
        visibleAtDecision = state.loadEvents(['early'], 0).length;
        commitWaited = state.whenCommitted().then(() => void order.push('committed'));
      })
      .then((results) => {
        order.push('applied');
        return results;
      });
    const results = await applied;
    await commitWaited;
    expect(order[0]).toBe('decided');
    expect(order.slice(1).sort()).toEqual(['applied', 'committed']);
    expect(decided).toEqual(results);
    expect(results.get('p1')).toEqual({ type: 'appended', firstPosition: 1, count: 2 });
    expect(results.get('p2')).toMatchObject({ type: 'conflict', actualSequence: 2 });
    expect(visibleAtDecision).toBe(0);
    expect(state.loadEvents(['early'], 0)).toHaveLength(2);
    // The publisher still waits for the commit.
    expect(published).toEqual([2]);
    // Nothing pending: whenCommitted answers at once.
    await state.whenCommitted();
  });

  it('a failed batch hands out nothing early, and a waiting read is told', async () => {
    const state = states.open();
    let decided = false;
    const broken: CommittedEntry[] = [
      ...entries(1, [append(['a'], 0, 1)]),
      { index: 2, kind: 'command', proposalId: 'bad', data: null as unknown as Uint8Array },
    ];
    await expect(state.apply(broken, () => (decided = true))).rejects.toThrow();
    expect(decided).toBe(false);
    await state.whenCommitted();
    expect(state.appliedIndex()).toBe(0);
  });

  it('a throwing publisher does not affect the state', async () => {
    const errors: unknown[] = [];
    const state = states.open({
      publisher: () => {
        throw new Error('subscriber down');
      },
      onPublisherError: (error) => errors.push(error),
    });
    const out = await state.apply(entries(1, [append(['a'], 0, 1)]));
    expect(out.get('p1')).toEqual({ type: 'appended', firstPosition: 1, count: 1 });
    expect(errors).toHaveLength(1);
    expect(state.loadEvents(['a'], 0)).toHaveLength(1);
  });

  it('leases archive records by the command time, renews, releases and acknowledges', async () => {
    const state = states.open();
    await state.apply(
      entries(1, [
        append(['r', '1'], 0, 2),
        { type: 'save-snapshot', id: ['r', '1'], data: '{"s":1}', sequence: 1, trim: false },
        { type: 'archive', id: ['r', '1'] },
        append(['r', '2'], 0, 1),
        { type: 'archive', id: ['r', '2'] },
      ]),
    );
    const lease = (consumer: string, at: number): Command => ({ type: 'lease', consumer, at, leaseMs: 100 });
    const out = await state.apply(entries(6, [lease('c1', 1000), lease('c2', 1000), lease('c3', 1050)]));
    expect(out.get('p6')).toEqual({ type: 'leased', record: 1, lease: 1, expiresAt: 1100 });
    expect(out.get('p7')).toEqual({ type: 'leased', record: 2, lease: 1, expiresAt: 1100 });
    expect(out.get('p8')).toEqual({ type: 'nothing-available', earliestExpiry: 1100 });
    const record = state.readArchiveRecord(1)!;
    expect(record).toMatchObject({ streamId: '1', aggregateId: ['r', '1'], snapshotData: '{"s":1}', snapshotSequence: 1 });
    expect(record.events.map((e) => e.sequence)).toEqual([0, 1]);

    const more = await state.apply(
      entries(9, [
        { type: 'renew', record: 1, lease: 1, consumer: 'c1', at: 1090, leaseMs: 100 },
        { type: 'renew', record: 2, lease: 1, consumer: 'c1', at: 1090, leaseMs: 100 },
        lease('c3', 1150), // record 2 lapsed at 1100, record 1 was renewed to 1190
        { type: 'ack', record: 2, lease: 1, consumer: 'c2' }, // c2 lost it to c3
        { type: 'release', record: 1, lease: 1, consumer: 'c1' },
        lease('c4', 1150),
        { type: 'ack', record: 2, lease: 2, consumer: 'c3' },
        { type: 'ack', record: 1, lease: 2, consumer: 'c4' },
        lease('c5', 1200),
      ]),
    );
    expect(results(more, 'p9', 'p10', 'p11', 'p12', 'p13', 'p14', 'p15', 'p16', 'p17')).toEqual([
      { type: 'ok' },
      { type: 'lease-lost' },
      { type: 'leased', record: 2, lease: 2, expiresAt: 1250 },
      { type: 'lease-lost' },
      { type: 'ok' },
      { type: 'leased', record: 1, lease: 2, expiresAt: 1250 },
      { type: 'ok' },
      { type: 'ok' },
      { type: 'nothing-available', earliestExpiry: null },
    ]);
    expect(state.archiveSize()).toBe(0);
    expect(state.readArchiveRecord(1)).toBeUndefined();
  });

  it('sorts status entries by time (negative times too) and label values by code unit', async () => {
    const state = states.open();
    const set = (id: string, status: string, time: number, region: string): Command =>
      append([id], 0, 1, { status, statusTime: time, labels: { region } });
    await state.apply(
      entries(1, [
        set('late', 'open', 5000, '\uFF61'),
        set('early', 'open', -5000, '\u{1F642}'),
        set('zero', 'open', 0, 'a\u0000b'),
        set('other', 'open\u0000', -9999, 'a'),
      ]),
    );
    expect(everything((r) => state.listAggregatesByStatus('open', r))).toEqual([
      { id: ['early'], timestamp: -5000 },
      { id: ['zero'], timestamp: 0 },
      { id: ['late'], timestamp: 5000 },
    ]);
    expect(everything((r) => state.listAggregatesByStatus('open\u0000', r))).toEqual([{ id: ['other'], timestamp: -9999 }]);
    expect(everything((r) => state.listLabelValues('region', r))).toEqual(['a', 'a\u0000b', '\uFF61', '\u{1F642}']);
    expect(everything((r) => state.listAggregatesByLabel('region', 'a\u0000b', r))).toEqual([['zero']]);
  });
});

describe('MaterializedState determinism and snapshot images', () => {
  /** A log with conflicts, trims, index changes, archiving and leases at varied times. */
  function workload(): CommittedEntry[] {
    const commands: Command[] = [];
    let at = 1_700_000_000_000;
    for (let round = 0; round < 6; round++) {
      for (const id of [
        ['o', String(round)],
        ['o', 'shared'],
        ['x:y', '%'],
      ]) {
        const next = commands.filter((c) => c.type === 'append' && c.id.join('\u0000') === id.join('\u0000')).length;
        commands.push(
          append(id, next, 2, {
            status: round % 2 ? 'open' : 'done',
            statusTime: T0 + round,
            labels: { region: `r${round % 3}`, drop: round % 2 ? 'x' : '' },
          }),
        );
        commands.push(append(id, 0, 1)); // a conflict (or a first append)
      }
      commands.push({
        type: 'save-snapshot',
        id: ['o', 'shared'],
        data: JSON.stringify({ round }),
        sequence: round,
        trim: round % 2 === 0,
      });
      commands.push({ type: 'archive', id: ['o', String(round)] });
      commands.push({ type: 'open-log', logId: `log-${round}` });
      commands.push({ type: 'claim-projection', name: `p${round % 2}`, holder: `h${round % 3}`, at: at + round * 10, leaseMs: 15 });
      commands.push({
        type: 'save-projection',
        name: `p${round % 2}`,
        holder: `h${round % 3}`,
        generation: round % 3 === 0 ? 0 : 1,
        checkpoint: `cp-${round}`,
        lastError: round % 2 ? `error ${round}` : null,
        at: at + round * 10 + 1,
        leaseMs: 15,
      });
      if (round % 3 === 1)
        commands.push({ type: 'reset-projection', name: 'p1', checkpoint: round === 1 ? undefined : `cp-reset-${round}` });
      commands.push({ type: 'lease', consumer: `c${round % 2}`, at: (at += 37 * round), leaseMs: 50 + round });
      commands.push({ type: 'ack', record: round, lease: 1, consumer: `c${round % 2}` });
      commands.push({ type: 'release', record: round + 1, lease: 1, consumer: 'c1' });
    }
    return [
      ...entries(1, commands),
      { index: commands.length + 1, kind: 'empty', proposalId: null, data: new Uint8Array(0) },
      ...entries(commands.length + 2, [encodeCommand(commands[0]!).subarray(1)]),
    ];
  }

  it('two states fed the same entries, in different batch sizes, export byte-identical images', async () => {
    const log = workload();
    const one = states.open();
    const other = states.open();
    const firstResults = await one.apply(log);
    const otherResults = new Map<string, CommandResult>();
    for (let i = 0; i < log.length; i += 7) for (const [id, result] of await other.apply(log.slice(i, i + 7))) otherResults.set(id, result);
    expect(otherResults).toEqual(firstResults);
    const image = await one.exportSnapshot();
    expect(Buffer.from(await other.exportSnapshot()).equals(Buffer.from(image))).toBe(true);
    expect(readAll(other)).toEqual(readAll(one));
  });

  it('a state that caches one aggregate head answers and stores exactly as one that caches many', async () => {
    // With one cached head nearly every command reads its head back, and derives the next
    // sequence from the stored events (it is not stored).
    const log = workload();
    const many = states.open();
    const one = states.open({ headCacheSize: 1 });
    const manyResults = await many.apply(log);
    const oneResults = new Map<string, CommandResult>();
    for (let i = 0; i < log.length; i += 3) for (const [id, result] of await one.apply(log.slice(i, i + 3))) oneResults.set(id, result);
    expect(oneResults).toEqual(manyResults);
    expect(Buffer.from(await one.exportSnapshot()).equals(Buffer.from(await many.exportSnapshot()))).toBe(true);
  });

  it('after a restart, goes on from the right sequence: events stored, all trimmed, or only a snapshot', async () => {
    const dir = states.dir();
    const first = states.open({}, dir);
    await first.apply(
      entries(1, [
        append(['kept'], 0, 3),
        append(['trimmed'], 0, 4),
        { type: 'save-snapshot', id: ['trimmed'], data: '{}', sequence: 4, trim: true },
        { type: 'save-snapshot', id: ['only-snapshot'], data: '{}', sequence: 0, trim: false },
      ]),
    );
    expect(first.loadEvents(['trimmed'], 0)).toEqual([]);
    await first.close();
    const reopened = states.open({}, dir);
    const out = await reopened.apply(
      entries(5, [
        append(['kept'], 2, 1),
        append(['kept'], 3, 1),
        append(['trimmed'], 3, 1),
        append(['trimmed'], 4, 1),
        append(['only-snapshot'], 0, 1),
      ]),
    );
    expect(
      results(out, 'p5', 'p6', 'p7', 'p8', 'p9').map((result) =>
        result.type === 'conflict'
          ? `conflict at ${result.actualSequence}`
          : result.type === 'appended'
            ? `appended at position ${result.firstPosition}`
            : result.type,
      ),
      // Positions go on from the stored counter: 1–3 kept, 4–7 trimmed (gone, but never given again).
    ).toEqual(['conflict at 3', 'appended at position 8', 'conflict at 4', 'appended at position 9', 'appended at position 10']);
    expect(reopened.loadEvents(['trimmed'], 0).map((event) => event.sequence)).toEqual([4]);
  });

  it('restores an exported image into a fresh state: identical image and reads, and it goes on applying', async () => {
    const log = workload();
    const source = states.open();
    await source.apply(log);
    const image = await source.exportSnapshot();
    const target = states.open();
    await target.apply(entries(1, [append(['stale'], 0, 3)]));
    await target.restoreSnapshot(image, source.appliedIndex());
    expect(target.appliedIndex()).toBe(source.appliedIndex());
    expect(Buffer.from(await target.exportSnapshot()).equals(Buffer.from(image))).toBe(true);
    expect(readAll(target)).toEqual(readAll(source));
    expect(target.listAggregates(['stale'], { limit: 10 })).toEqual({ items: [] });
    const next = entries(log.length + 1, [append(['after'], 0, 1), { type: 'lease', consumer: 'c9', at: 2e12, leaseMs: 10 }]);
    const [a, b] = [await source.apply(next), await target.apply(next)];
    expect(b).toEqual(a);
    expect(Buffer.from(await target.exportSnapshot()).equals(Buffer.from(await source.exportSnapshot()))).toBe(true);
  });

  it('refuses a corrupt image and keeps its state', async () => {
    const state = states.open();
    await state.apply(entries(1, [append(['a'], 0, 1)]));
    const image = await state.exportSnapshot();
    await expect(state.restoreSnapshot(image.subarray(0, image.length - 1), 9)).rejects.toThrow(/corrupt/);
    await expect(state.restoreSnapshot(Uint8Array.from([1, 2, 3, 4]), 9)).rejects.toThrow(/header/);
    expect(state.appliedIndex()).toBe(1);
    expect(state.loadEvents(['a'], 0)).toHaveLength(1);
  });
});
