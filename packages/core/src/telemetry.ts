import { metrics, trace, SpanStatusCode, type Attributes, type Counter, type Span } from '@opentelemetry/api';

/** Instrumentation scope name of every span and metric Timebox emits. */
export const INSTRUMENTATION_NAME = '@timebox/core';

/** Span and metric attribute names. */
export const Attr = {
  aggregateId: 'timebox.aggregate_id',
  eventCount: 'timebox.event_count',
  retryCount: 'timebox.retry_count',
  outcome: 'timebox.outcome',
  expectedSequence: 'timebox.expected_sequence',
  backend: 'timebox.backend',
} as const;

/** How an instrumented operation ended. */
export type Outcome = 'ok' | 'conflict' | 'error';

// Looked up on each use (cheap) so an SDK registered after import still receives everything.
function tracer() {
  return trace.getTracer(INSTRUMENTATION_NAME);
}

let instruments: { conflicts: Counter; retries: Counter } | undefined;
let instrumentsMeterProvider: unknown;

function counters() {
  const provider = metrics.getMeterProvider();
  if (instruments === undefined || instrumentsMeterProvider !== provider) {
    const meter = provider.getMeter(INSTRUMENTATION_NAME);
    instruments = {
      conflicts: meter.createCounter('timebox.conflicts', {
        description: 'Appends rejected because another writer got there first',
      }),
      retries: meter.createCounter('timebox.retries', { description: 'Exec commands re-run after a conflict' }),
    };
    instrumentsMeterProvider = provider;
  }
  return instruments;
}

/** Counts one version conflict. */
export function countConflict(attributes: Attributes): void {
  counters().conflicts.add(1, attributes);
}

/** Counts one exec retry. */
export function countRetry(attributes: Attributes): void {
  counters().retries.add(1, attributes);
}

/**
 * Runs `fn` inside an active span named `timebox.<name>`; records the outcome and any error.
 * `attributes` is only called when the span records (an SDK is registered and sampled it), so
 * building them costs nothing otherwise. `fn` may set more attributes on the span it receives.
 */
export function withSpan<T>(name: string, attributes: () => Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
  return tracer().startActiveSpan(`timebox.${name}`, async (span) => {
    if (span.isRecording()) span.setAttributes(attributes());
    try {
      const result = await fn(span);
      span.setAttribute(Attr.outcome, 'ok');
      return result;
    } catch (error) {
      const outcome: Outcome = isConflict(error) ? 'conflict' : 'error';
      span.setAttribute(Attr.outcome, outcome);
      if (outcome === 'error') {
        span.recordException(error instanceof Error ? error : String(error));
        span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      }
      throw error;
    } finally {
      span.end();
    }
  });
}

function isConflict(error: unknown): boolean {
  return error instanceof Error && (error as { code?: unknown }).code === 'VERSION_CONFLICT';
}

let hubErrors: { counter: Counter; provider: unknown } | undefined;

/**
 * Records a subscriber-side failure (a handler that threw, events dropped for a slow subscriber, a
 * gap in the feed): counted as `timebox.hub.errors` by error code, and recorded on a
 * `timebox.hub.error` span so it shows up in traces. Never throws.
 */
export function reportHubError(error: Error & { code: string }, attributes: Attributes): void {
  try {
    const provider = metrics.getMeterProvider();
    if (hubErrors === undefined || hubErrors.provider !== provider) {
      const counter = provider
        .getMeter(INSTRUMENTATION_NAME)
        .createCounter('timebox.hub.errors', { description: 'Subscriber handler failures, dropped events and feed gaps' });
      hubErrors = { counter, provider };
    }
    hubErrors.counter.add(1, { ...attributes, 'timebox.error_code': error.code });
    const span = tracer().startSpan('timebox.hub.error', { attributes: { ...attributes, 'timebox.error_code': error.code } });
    span.recordException(error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
    span.end();
  } catch {
    // Telemetry must never break delivery.
  }
}
