/**
 * `pnpm --filter @timebox/bench run bench:hub [-- --quick]`: only the hub delivery latency (the
 * full `pnpm bench` runs it too). Writes bench/results/hub-latency.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describeMachine } from '../report.js';
import { renderHubTable, runHubLatency } from './report.js';

const quick = process.argv.includes('--quick');
const { results, skipped } = await runHubLatency(['redis', 'postgres'], quick, (line) => process.stderr.write(`${line}\n`));
process.stdout.write(`${renderHubTable(results, skipped)}\n`);
const resultsDir = fileURLToPath(new URL('../../results/', import.meta.url));
await mkdir(resultsDir, { recursive: true });
await writeFile(
  `${resultsDir}hub-latency.json`,
  JSON.stringify({ machine: describeMachine(), date: new Date().toISOString(), quick, results, skipped }, null, 2),
);
