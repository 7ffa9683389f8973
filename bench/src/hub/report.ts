import { measureDelivery, type LatencyResult } from './latency.js';
import type { HubBackend } from './stores.js';

/**
 * Measures hub delivery latency on each of `backends`, at 1 and at 16 appends in flight;
 * a backend whose server cannot be reached is reported as not measured, with the reason.
 */
export async function runHubLatency(
  backends: readonly HubBackend[],
  quick: boolean,
  progress: (line: string) => void,
): Promise<{ results: LatencyResult[]; skipped: string[] }> {
  const appends = quick ? 500 : 3_000;
  const results: LatencyResult[] = [];
  const skipped: string[] = [];
  for (const backend of backends) {
    for (const inFlight of [1, 16]) {
      progress(`hub delivery latency: ${backend}, ${inFlight} in flight, ${appends} appends`);
      try {
        results.push(await measureDelivery(backend, appends, inFlight));
      } catch (error) {
        skipped.push(`${backend} (${inFlight} in flight) not measured: ${error instanceof Error ? error.message : String(error)}`);
        break;
      }
    }
  }
  return { results, skipped };
}

/** The table the terminal shows. */
export function renderHubTable(results: readonly LatencyResult[], skipped: readonly string[]): string {
  const ms = (value: number) => value.toFixed(2).padStart(9);
  const lines = [
    'Event hub delivery latency: append acknowledged to the writer → handler called in another OS process',
    '',
    '| backend  | in flight | samples |    p50 ms |    p99 ms |  p99.9 ms |',
    '| -------- | --------: | ------: | --------: | --------: | --------: |',
    ...results.map(
      (r) =>
        `| ${r.backend.padEnd(8)} | ${String(r.inFlight).padStart(9)} | ${String(r.samples).padStart(7)} | ${ms(r.p50Ms)} | ${ms(r.p99Ms)} | ${ms(r.p999Ms)} |`,
    ),
    ...skipped.map((line) => `- ${line}`),
  ];
  return lines.join('\n');
}
