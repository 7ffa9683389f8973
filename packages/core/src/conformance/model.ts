import { describe, expect, it } from 'vitest';
import { VersionConflictError } from '../errors.js';
import type { Event } from '../event.js';
import type { AggregateId } from '../id.js';
import type { Index } from '../indexer.js';
import type { Store } from '../store.js';
import type { Harness } from './harness.js';
import { partitionsOf, payloadIndexer, sortIds, T0 } from './util.js';

type ModelEvents = { Set: Index; Note: { text: string } };

interface ModelAggregate {
  readonly id: AggregateId;
  events: { type: string; payload: unknown; sequence: number; time: number }[];
  nextSequence: number;
  snapshot: { value: unknown; sequence: number } | undefined;
  status: string;
  statusTime: number;
  labels: Map<string, string>;
}

/** Timebox's semantics, written as plainly as possible, to compare a backend against. */
class ReferenceModel {
  readonly aggregates = new Map<string, ModelAggregate>();
  /** Where the next life of an archived ID starts: one past the archived life's next sequence. */
  readonly nextLives = new Map<string, number>();
  /** Every event ever appended, in append order: the log before trimming and archiving. */
  readonly log: { aggregate: ModelAggregate; sequence: number }[] = [];

  constructor(readonly trim: boolean) {}

  next(id: AggregateId): number {
    const key = JSON.stringify(id);
    return this.aggregates.get(key)?.nextSequence ?? this.nextLives.get(key) ?? 0;
  }

  lifeStart(id: AggregateId): number {
    return this.nextLives.get(JSON.stringify(id)) ?? 0;
  }

  /** The log as `readAll` must return it: appended events still stored, in append order. */
  liveLog(): { id: AggregateId; sequence: number }[] {
    return this.log
      .filter(
        ({ aggregate, sequence }) =>
          this.aggregates.get(JSON.stringify(aggregate.id)) === aggregate && aggregate.events.some((e) => e.sequence === sequence),
      )
      .map(({ aggregate, sequence }) => ({ id: aggregate.id, sequence }));
  }

  append(id: AggregateId, expected: number, batch: { type: string; data: unknown; timestamp: Date }[]): boolean {
    if (expected !== this.next(id)) return false;
    if (batch.length === 0) return true;
    const aggregate = this.#get(id);
    let status: string | undefined;
    const labels: [string, string][] = [];
    for (const event of batch) {
      this.log.push({ aggregate, sequence: aggregate.nextSequence });
      aggregate.events.push({ type: event.type, payload: event.data, sequence: aggregate.nextSequence++, time: event.timestamp.getTime() });
      if (event.type !== 'Set') continue;
      const index = event.data as Index;
      if (index.status !== undefined) status = index.status;
      labels.push(...Object.entries(index.labels ?? {}));
    }
    if (status !== undefined && status !== aggregate.status) {
      aggregate.status = status;
      aggregate.statusTime = batch[batch.length - 1]!.timestamp.getTime();
    }
    for (const [name, value] of labels) {
      if (value === '') aggregate.labels.delete(name);
      else aggregate.labels.set(name, value);
    }
    return true;
  }

  putSnapshot(id: AggregateId, value: unknown, sequence: number): 'stored' | 'ignored' | 'rejected' {
    if (sequence > this.next(id)) return 'rejected';
    const lifeStart = this.lifeStart(id);
    if (lifeStart > 0 && sequence <= lifeStart) return 'ignored';
    const aggregate = this.#get(id);
    if (aggregate.snapshot !== undefined && aggregate.snapshot.sequence >= sequence) return 'ignored';
    aggregate.snapshot = { value, sequence };
    if (this.trim) aggregate.events = aggregate.events.filter((event) => event.sequence >= sequence);
    return 'stored';
  }

  /** Ends the aggregate's life: its data leaves, and its next life starts one past its next sequence. */
  archive(id: AggregateId): void {
    const key = JSON.stringify(id);
    const aggregate = this.aggregates.get(key);
    if (aggregate === undefined) return;
    this.aggregates.delete(key);
    this.nextLives.set(key, aggregate.nextSequence + 1);
  }

  #get(id: AggregateId): ModelAggregate {
    const key = JSON.stringify(id);
    let aggregate = this.aggregates.get(key);
    if (aggregate === undefined) {
      const start = this.nextLives.get(key) ?? 0;
      aggregate = { id, events: [], nextSequence: start, snapshot: undefined, status: '', statusTime: 0, labels: new Map() };
      this.aggregates.set(key, aggregate);
    }
    return aggregate;
  }
}

/** A small deterministic PRNG (mulberry32), so a failing run can be replayed from its seed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const IDS: AggregateId[] = [
  ['m', 'a'],
  ['m', 'a:b'],
  ['m:a', 'b'],
  ['n', '{x}'],
  ['n', '%'],
];
const STATUSES = ['', 'open', 'paid', 'shipped'];
const LABELS = ['region', 'tier'];
const VALUES = ['', 'east', 'west', 'gold'];

/** Pages through the whole log in small pages, as a reader would. */
async function readWholeLog(store: Store<ModelEvents>): Promise<Event[]> {
  const events: Event[] = [];
  let page = await store.readAll({ limit: 7 });
  for (;;) {
    events.push(...page.events);
    if (page.end) return events;
    page = await store.readAll({ after: page.checkpoint, limit: 7 });
  }
}

/** The whole log, read page by page, holds exactly the model's live events in append order. */
async function compareLog(store: Store<ModelEvents>, model: ReferenceModel, context: string): Promise<void> {
  const log = await readWholeLog(store);
  const read = log.map((event) => ({ id: [...event.aggregateId], sequence: event.sequence }));
  if (partitionsOf(store) === 1) {
    expect(read, `${context}, readAll`).toEqual(model.liveLog());
    const positions = log.map((event) => event.position);
    expect(positions, `${context}, positions increase in log order`).toEqual([...positions].sort((a, b) => a - b));
    expect(new Set(positions).size, `${context}, positions are unique`).toBe(positions.length);
  } else {
    const byId = (a: { id: AggregateId; sequence: number }, b: { id: AggregateId; sequence: number }) =>
      JSON.stringify(a.id) < JSON.stringify(b.id) ? -1 : JSON.stringify(a.id) > JSON.stringify(b.id) ? 1 : a.sequence - b.sequence;
    expect([...read].sort(byId), `${context}, readAll`).toEqual(model.liveLog().sort(byId));
  }
}

async function compare(store: Store<ModelEvents>, model: ReferenceModel, seed: number): Promise<void> {
  const context = `seed ${seed}`;
  if (store.backend.capabilities.readSide === true) await compareLog(store, model, context);
  expect(sortIds(await store.listAggregates()), context).toEqual(sortIds([...model.aggregates.values()].map((a) => a.id)));
  for (const aggregate of model.aggregates.values()) {
    const events = await store.getEvents(aggregate.id);
    const label = `${context}, ${JSON.stringify(aggregate.id)}`;
    expect(
      events.map((event) => ({ type: event.type, payload: event.payload, sequence: event.sequence, time: event.timestamp.getTime() })),
      label,
    ).toEqual(aggregate.events);
    const snapshot = await store.getSnapshot(aggregate.id);
    expect(snapshot.value, label).toEqual(aggregate.snapshot?.value);
    const covered = aggregate.snapshot?.sequence ?? model.lifeStart(aggregate.id);
    expect(snapshot.nextSequence, label).toBe(covered);
    expect(
      snapshot.events.map((event) => event.sequence),
      label,
    ).toEqual(aggregate.events.filter((event) => event.sequence >= covered).map((event) => event.sequence));
    expect(await store.getAggregateStatus(aggregate.id), label).toBe(aggregate.status);
  }
  for (const status of STATUSES.filter((s) => s !== '')) {
    const expected = [...model.aggregates.values()]
      .filter((aggregate) => aggregate.status === status)
      .sort((a, b) => a.statusTime - b.statusTime)
      .map((aggregate) => ({ id: aggregate.id, timestamp: new Date(aggregate.statusTime) }));
    expect(await store.listAggregatesByStatus(status), `${context}, status ${status}`).toEqual(expected);
  }
  for (const label of LABELS) {
    const held = [...model.aggregates.values()].filter((aggregate) => aggregate.labels.has(label));
    const values = [...new Set(held.map((aggregate) => aggregate.labels.get(label)!))].sort();
    expect(await store.listLabelValues(label), `${context}, label ${label}`).toEqual(values);
    for (const value of VALUES.filter((v) => v !== '')) {
      const ids = held.filter((aggregate) => aggregate.labels.get(label) === value).map((aggregate) => aggregate.id);
      expect(sortIds(await store.listAggregatesByLabel(label, value)), `${context}, ${label}=${value}`).toEqual(sortIds(ids));
    }
  }
}

/** Random operations, checked step by step and at the end against the reference model. */
async function runRandomOperations(store: Store<ModelEvents>, trim: boolean, seed: number, steps: number, archive: boolean): Promise<void> {
  const next = random(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;
  const model = new ReferenceModel(trim);
  let clock = T0;
  for (let step = 0; step < steps; step++) {
    const id = pick(IDS);
    const actual = model.next(id);
    const where = `seed ${seed}, step ${step}`;
    const roll = next();
    if (archive && roll < 0.05) {
      model.archive(id);
      await store.archive(id);
    } else if (roll < 0.75) {
      const drift = next();
      const expected = drift < 0.7 ? actual : drift < 0.85 ? Math.max(0, actual - 1 - Math.floor(next() * 3)) : actual + 1;
      const batch = Array.from({ length: Math.floor(next() * 4) }, () => {
        clock += 1000;
        if (next() < 0.5) return { type: 'Note' as const, data: { text: `t${step}` }, timestamp: new Date(clock) };
        const index: { status?: string; labels?: Record<string, string> } = {};
        if (next() < 0.6) index.status = pick(STATUSES);
        if (next() < 0.6) index.labels = { [pick(LABELS)]: pick(VALUES) };
        return { type: 'Set' as const, data: index, timestamp: new Date(clock) };
      });
      const accepted = model.append(id, expected, batch);
      const result = await store.appendEvents(id, expected, batch).then(
        () => 'ok',
        (error: unknown) => error,
      );
      if (accepted) {
        expect(result, where).toBe('ok');
      } else {
        expect(result, where).toBeInstanceOf(VersionConflictError);
        expect((result as VersionConflictError).actualSequence, where).toBe(actual);
      }
    } else {
      const sequence = Math.floor(next() * (actual + 2));
      const value = { step, sequence };
      const outcome = model.putSnapshot(id, value, sequence);
      const result = await store.putSnapshot(id, value, sequence).then(
        () => 'done',
        (error: unknown) => error,
      );
      expect(result === 'done' ? 'stored or ignored' : 'rejected', where).toBe(outcome === 'rejected' ? 'rejected' : 'stored or ignored');
    }
    const stored = model.aggregates.get(JSON.stringify(id))?.events ?? [];
    expect(
      (await store.getEvents(id)).map((event) => event.sequence),
      where,
    ).toEqual(stored.map((event) => event.sequence));
  }
  await compare(store, model, seed);
}

export function modelSuite(h: Harness): void {
  describe('random operations against a reference model', () => {
    for (const trimEvents of [false, true]) {
      for (const seed of [1, 2, 3]) {
        it(`matches the model ${trimEvents ? 'with' : 'without'} trimming (seed ${seed})`, async () => {
          const store = await h.store<ModelEvents>({ indexer: payloadIndexer, trimEvents });
          await runRandomOperations(store, trimEvents, seed * 7919 + (trimEvents ? 1 : 0), 150, h.target.capabilities.archive);
        });
      }
    }
  });
}
