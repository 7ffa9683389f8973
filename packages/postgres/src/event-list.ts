import type { EventRecord } from '@timebox/core';
import { fromStoredText } from './text-codec.js';

/**
 * Parses the event lists the server functions return and the archive table holds: JSON text
 * `[[sequence, type, time_ms, data], ...]` built with `json_build_array`. JSON rather than SQL
 * arrays, because parsing array columns needs the driver's array type lookup, which pools the
 * backend opens switch off (see options.ts) and a caller's own instance may switch off too.
 * Sequences and epoch-millisecond times are integers well inside 2^53, so JSON numbers hold them
 * exactly.
 */
export function parseEventList(json: string): EventRecord[] {
  return (JSON.parse(json) as [number, string, number, string][]).map(([sequence, type, timestamp, data]) => ({
    type: fromStoredText(type),
    sequence,
    timestamp,
    data,
  }));
}
