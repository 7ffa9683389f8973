import type { AggregateId, LogEntry, StoredEventRecord } from '@timebox/core';
import { aggregateIdFromKey, fromStoredText } from './text-codec.js';

/**
 * Parses the event lists the server functions return and the archive table holds: JSON text
 * `[[sequence, type, time_ms, data, position], ...]` built with `json_build_array`. JSON rather
 * than SQL arrays, because parsing array columns needs the driver's array type lookup, which pools
 * the backend opens switch off (see options.ts) and a caller's own instance may switch off too.
 * Sequences, positions and epoch-millisecond times are integers well inside 2^53, so JSON numbers
 * hold them exactly.
 */
export function parseEventList(json: string): StoredEventRecord[] {
  return (JSON.parse(json) as [number, string, number, string, number][]).map(([sequence, type, timestamp, data, position]) => ({
    type: fromStoredText(type),
    sequence,
    timestamp,
    data,
    position,
  }));
}

/** One event of a log page: aggregate key, sequence, type, time, data, position. */
type LogTuple = [string, number, string, number, string, number];

/** Parses a page of the log from `timebox_read_log`: `[[aggregate, sequence, type, time_ms, data, position], ...]`. */
export function parseLogEntries(json: string): LogEntry[] {
  return (JSON.parse(json) as LogTuple[]).map(([aggregate, sequence, type, timestamp, data, position]) => ({
    id: aggregateIdFromKey(aggregate),
    event: { type: fromStoredText(type), sequence, timestamp, data, position },
  }));
}

/**
 * Parses a page of the log like `parseLogEntries`, grouped into runs: each run holds consecutive
 * events of one aggregate, in position order (so in sequence order).
 */
export function parseLogRuns(json: string): { id: AggregateId; records: StoredEventRecord[] }[] {
  const runs: { id: AggregateId; records: StoredEventRecord[] }[] = [];
  let runKey: string | undefined;
  let records: StoredEventRecord[] = [];
  for (const [aggregate, sequence, type, timestamp, data, position] of JSON.parse(json) as LogTuple[]) {
    if (aggregate !== runKey) {
      runKey = aggregate;
      records = [];
      runs.push({ id: aggregateIdFromKey(aggregate), records });
    }
    records.push({ type: fromStoredText(type), sequence, timestamp, data, position });
  }
  return runs;
}
