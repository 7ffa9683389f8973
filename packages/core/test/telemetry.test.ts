import { context, metrics, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { createExecutor, createStore, INSTRUMENTATION_NAME, VersionConflictError, type ExecutorOptions, type Store } from '../src/index.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MemoryBackend, MemoryDatabase } from '../src/memory/index.js';

type Events = { Added: { n: number } };
type State = { readonly total: number };

const executorOptions: ExecutorOptions<State, Events> = {
  initialState: () => ({ total: 0 }),
  appliers: { Added: (state, data) => ({ total: state.total + data.n }) },
  logger: { error: () => undefined },
};

/** A pull reader: `collect()` returns what the instruments recorded so far. */
class TestMetricReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

const spanExporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] });
let metricReader: TestMetricReader;
let meterProvider: MeterProvider | undefined;

beforeAll(() => {
  expect(context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())).toBe(true);
  expect(trace.setGlobalTracerProvider(tracerProvider)).toBe(true);
});

beforeEach(async () => {
  spanExporter.reset();
  // A fresh meter provider per test, so counters start at zero.
  metrics.disable();
  await meterProvider?.shutdown();
  metricReader = new TestMetricReader();
  meterProvider = new MeterProvider({ readers: [metricReader] });
  expect(metrics.setGlobalMeterProvider(meterProvider)).toBe(true);
});

afterAll(async () => {
  trace.disable();
  metrics.disable();
  context.disable();
  await meterProvider?.shutdown();
  await tracerProvider.shutdown();
});

async function counter(name: string): Promise<number> {
  const { resourceMetrics, errors } = await metricReader.collect();
  expect(errors).toEqual([]);
  let total = 0;
  for (const scope of resourceMetrics.scopeMetrics) {
    if (scope.scope.name !== INSTRUMENTATION_NAME) continue;
    for (const metric of scope.metrics) {
      if (metric.descriptor.name !== name) continue;
      for (const point of metric.dataPoints) total += point.value as number;
    }
  }
  return total;
}

function spans(name: string): ReadableSpan[] {
  return spanExporter.getFinishedSpans().filter((span) => span.name === name);
}

function only(name: string): ReadableSpan {
  const found = spans(name);
  expect(found, `exactly one ${name} span`).toHaveLength(1);
  return found[0] as ReadableSpan;
}

function isChildOf(child: ReadableSpan, parent: ReadableSpan): boolean {
  return child.parentSpanContext?.spanId === parent.spanContext().spanId && child.spanContext().traceId === parent.spanContext().traceId;
}

function openStore(database = new MemoryDatabase()): Store<Events> {
  return createStore<Events>(new MemoryBackend({ database }));
}

describe('telemetry', () => {
  it('wraps an exec in a timebox.exec span with a child timebox.append span', async () => {
    const store = openStore();
    const executor = createExecutor(store, executorOptions);
    await executor.exec(['order', '1'], (_s, a) => {
      a.raise('Added', { n: 1 });
      a.raise('Added', { n: 2 });
    });

    const exec = only('timebox.exec');
    expect(exec.attributes).toMatchObject({
      'timebox.aggregate_id': 'order:1',
      'timebox.event_count': 2,
      'timebox.retry_count': 0,
      'timebox.outcome': 'ok',
      'timebox.backend': 'memory',
    });
    expect(exec.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(exec.instrumentationScope.name).toBe(INSTRUMENTATION_NAME);

    const append = only('timebox.append');
    expect(isChildOf(append, exec)).toBe(true);
    expect(append.attributes).toMatchObject({
      'timebox.aggregate_id': 'order:1',
      'timebox.event_count': 2,
      'timebox.expected_sequence': 0,
      'timebox.outcome': 'ok',
    });
    // The cold load happened inside the exec too.
    const load = only('timebox.load');
    expect(isChildOf(load, exec)).toBe(true);
    expect(exec.events.filter((e) => e.name === 'timebox.retry')).toEqual([]);
    expect(await counter('timebox.conflicts')).toBe(0);
    expect(await counter('timebox.retries')).toBe(0);
  });

  it('marks a rejected append with outcome "conflict" and counts it', async () => {
    const store = openStore();
    await store.appendEvents(['order', '2'], 0, [{ type: 'Added', data: { n: 1 } }]);
    spanExporter.reset();

    await expect(store.appendEvents(['order', '2'], 0, [{ type: 'Added', data: { n: 1 } }])).rejects.toBeInstanceOf(VersionConflictError);
    const append = only('timebox.append');
    expect(append.attributes).toMatchObject({
      'timebox.aggregate_id': 'order:2',
      'timebox.event_count': 1,
      'timebox.outcome': 'conflict',
    });
    expect(await counter('timebox.conflicts')).toBe(1);
    expect(await counter('timebox.retries')).toBe(0);
  });

  it('records a conflict retry on the exec span and in the counters', async () => {
    const database = new MemoryDatabase();
    const first = createExecutor(openStore(database), executorOptions);
    const second = createExecutor(openStore(database), executorOptions);
    const id = ['order', '3'];
    // Prime both caches at sequence 1.
    await first.exec(id, (_s, a) => a.raise('Added', { n: 1 }));
    await second.get(id);
    // The first executor moves on; the second's cache is now stale.
    await first.exec(id, (_s, a) => a.raise('Added', { n: 1 }));
    spanExporter.reset();
    expect(await counter('timebox.conflicts')).toBe(0);

    const state = await second.exec(id, (_s, a) => a.raise('Added', { n: 1 }));
    expect(state.total).toBe(3);

    const exec = only('timebox.exec');
    expect(exec.attributes).toMatchObject({
      'timebox.aggregate_id': 'order:3',
      'timebox.retry_count': 1,
      'timebox.event_count': 1,
      'timebox.outcome': 'ok',
    });
    const retries = exec.events.filter((event) => event.name === 'timebox.retry');
    expect(retries).toHaveLength(1);
    expect(retries[0]?.attributes).toMatchObject({ 'timebox.retry_count': 1, 'timebox.expected_sequence': 1 });

    const appends = spans('timebox.append');
    expect(appends.map((span) => span.attributes['timebox.outcome'])).toEqual(['conflict', 'ok']);
    expect(appends.map((span) => span.attributes['timebox.expected_sequence'])).toEqual([1, 2]);
    for (const append of appends) expect(isChildOf(append, exec)).toBe(true);

    expect(await counter('timebox.retries')).toBe(1);
    expect(await counter('timebox.conflicts')).toBe(1);
  });

  it('marks a failed exec with outcome "error" and an error status', async () => {
    const executor = createExecutor(openStore(), executorOptions);
    await expect(
      executor.exec(['order', '4'], () => {
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    const exec = only('timebox.exec');
    expect(exec.attributes['timebox.outcome']).toBe('error');
    expect(exec.status).toMatchObject({ code: SpanStatusCode.ERROR, message: 'refused' });
    expect(spans('timebox.append')).toEqual([]);
  });

  it('emits timebox.load for getEvents and timebox.snapshot for putSnapshot', async () => {
    const store = openStore();
    const id = ['order', '5'];
    await store.appendEvents(id, 0, [
      { type: 'Added', data: { n: 1 } },
      { type: 'Added', data: { n: 2 } },
      { type: 'Added', data: { n: 3 } },
    ]);
    spanExporter.reset();

    const events = await store.getEvents(id, 1);
    expect(events).toHaveLength(2);
    const load = only('timebox.load');
    expect(load.attributes).toMatchObject({
      'timebox.aggregate_id': 'order:5',
      'timebox.event_count': 2,
      'timebox.outcome': 'ok',
      'timebox.backend': 'memory',
    });

    await store.putSnapshot(id, { total: 6 }, 3);
    const snapshot = only('timebox.snapshot');
    expect(snapshot.attributes).toMatchObject({ 'timebox.aggregate_id': 'order:5', 'timebox.outcome': 'ok' });

    // A snapshot the backend refuses is recorded as an error.
    await expect(store.putSnapshot(id, { total: 6 }, 10)).rejects.toThrow();
    const failed = spans('timebox.snapshot').find((span) => span.attributes['timebox.outcome'] === 'error');
    expect(failed).toBeDefined();
    expect(failed?.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('encodes the aggregate ID attribute so look-alike IDs stay distinct', async () => {
    const store = openStore();
    await store.getEvents(['order:1', 'item']);
    await store.getEvents(['order', '1', 'item']);
    const ids = spans('timebox.load').map((span) => span.attributes['timebox.aggregate_id']);
    expect(ids).toHaveLength(2);
    expect(new Set(ids).size).toBe(2);
  });
});
