import { mkdir, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ComparisonResult } from './harness.js';
import type { Spread } from './stats.js';

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly platform: string;
  readonly release: string;
  readonly arch: string;
  readonly node: string;
}

export interface BackendReport {
  readonly backend: string;
  readonly date: string;
  readonly mode: 'full' | 'quick';
  readonly reps: number;
  readonly warmups: number;
  /** Least timed duration of one warm-up repetition. */
  readonly warmupMs: number;
  /** Least timed duration of one repetition (fresh trials are repeated until reached). */
  readonly minSampleMs: number;
  readonly machine: Machine;
  readonly results: readonly ComparisonResult[];
}

export function describeMachine(): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: os.platform(),
    release: os.release(),
    arch: os.arch(),
    node: process.version,
  };
}

const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function rate(value: number): string {
  return int.format(value);
}

function rateRange(s: Spread): string {
  return `${rate(s.min)}–${rate(s.max)} (±${((s.relative / 2) * 100).toFixed(1)}%)`;
}

function ratio(s: Spread): string {
  return `${s.median.toFixed(3)} (${s.min.toFixed(3)}–${s.max.toFixed(3)})`;
}

/** Renders the report as a Markdown table (aligned, so it also reads well in a terminal). */
export function renderTable(report: BackendReport): string {
  const header = ['workload', 'op', 'ops/trial', 'ops/s median', 'min–max', 'ratio to baseline'];
  const rows: string[][] = [];
  for (const result of report.results) {
    rows.push([
      result.title,
      result.subject.label,
      int.format(result.subject.ops),
      rate(result.subject.opsPerSec.median),
      rateRange(result.subject.opsPerSec),
      ratio(result.ratio),
    ]);
    rows.push([
      '  baseline',
      result.baseline.label,
      int.format(result.baseline.ops),
      rate(result.baseline.opsPerSec.median),
      rateRange(result.baseline.opsPerSec),
      '1',
    ]);
  }
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const numeric = [false, false, true, true, true, false];
  const line = (cells: readonly string[]) =>
    `| ${cells.map((cell, i) => (numeric[i] ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0))).join(' | ')} |`;
  const rule = `|${widths.map((width, i) => (numeric[i] ? `${'-'.repeat(width + 1)}:` : '-'.repeat(width + 2))).join('|')}|`;
  const m = report.machine;
  return [
    `${report.backend} backend — ${report.mode} run, median of ${report.reps} repetitions (≥ ${report.minSampleMs} ms each) ` +
      `after ${report.warmups} warm-up(s) of ≥ ${report.warmupMs} ms`,
    `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.platform} ${m.release} ${m.arch}, Node ${m.node}, ${report.date}`,
    '',
    line(header),
    rule,
    ...rows.map(line),
    '',
    'ratio = exec ops/s ÷ baseline ops/s in the same repetition (1 = no overhead; 0.25 = a quarter of the raw backend rate).',
  ].join('\n');
}

/** Writes the report as JSON to `file`, creating its folder. */
export async function writeJson(file: string, report: BackendReport): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
}
