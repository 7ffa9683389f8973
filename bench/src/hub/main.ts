/**
 * `pnpm bench:hub`: hub delivery latency per backend (append acknowledged → handler called in
 * another OS process), at 1 and at 16 appends in flight. Writes bench/results/hub-latency.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { measureDelivery, type LatencyResult } from './latency.js';
import type { HubBackend } from './stores.js';

const quick = process.argv.includes('--quick');
const appends = quick ? 500 : 3_000;
const results: LatencyResult[] = [];
for (const backend of ['redis', 'postgres'] as HubBackend[]) {
  for (const inFlight of [1, 16]) {
    process.stderr.write(`hub latency: ${backend}, ${inFlight} in flight, ${appends} appends…\n`);
    try {
      results.push(await measureDelivery(backend, appends, inFlight));
    } catch (error) {
      process.stderr.write(`  ${backend} not measured: ${error instanceof Error ? error.message : String(error)}\n`);
    }
  }
}
const ms = (value: number) => value.toFixed(2).padStart(8);
console.log('backend    in flight  samples   p50 ms   p99 ms  p99.9 ms');
for (const r of results) {
  console.log(`${r.backend.padEnd(10)} ${String(r.inFlight).padStart(9)} ${String(r.samples).padStart(8)} ${ms(r.p50Ms)} ${ms(r.p99Ms)} ${ms(r.p999Ms)}`);
}
const resultsDir = fileURLToPath(new URL('../../results/', import.meta.url));
await mkdir(resultsDir, { recursive: true });
const machine = { cpu: cpus()[0]?.model, cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, date: new Date().toISOString() };
await writeFile(`${resultsDir}hub-latency.json`, JSON.stringify({ machine, appends, results }, null, 2));
