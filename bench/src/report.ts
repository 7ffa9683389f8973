import type { LatencyResult } from './hub/latency.js';
import { mkdir, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { BaselineResult, ComparisonResult, WorkloadResult } from './harness.js';
import { median, spread, type Spread } from './stats.js';

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly platform: string;
  readonly release: string;
  readonly arch: string;
  readonly node: string;
  /** `os.loadavg()` (1, 5, 15 min) when the run started: other load makes figures noisy. */
  readonly loadAverageAtStart: readonly number[];
}

/** One backend's results, or why it was skipped. */
export interface BackendReport {
  readonly backend: string;
  readonly skipped?: string;
  /** Warm-up repetitions this backend's suite ran (a suite may override the run's). */
  readonly warmups?: number;
  readonly notes: readonly string[];
  readonly results: readonly ComparisonResult[];
  /** Wall time of the backend's whole suite, setup included. */
  readonly wallMs: number;
}

/** Everything one `pnpm bench` produced; written as JSON. */
export interface RunReport {
  readonly date: string;
  readonly mode: 'full' | 'quick' | 'large';
  readonly reps: number;
  /** Repetitions of the memory comparisons (a child process per side each). */
  readonly memoryReps: number;
  readonly warmups: number;
  readonly warmupMs: number;
  readonly minSampleMs: number;
  readonly machine: Machine;
  /** `os.loadavg()` when the run ended (or when this file was last written). */
  readonly loadAverageAtEnd: readonly number[];
  readonly wallMs: number;
  readonly backends: readonly BackendReport[];
  /** Event hub delivery latency across processes (redis, postgres), when those backends ran. */
  readonly hub?: { readonly results: readonly LatencyResult[]; readonly skipped: readonly string[] } | undefined;
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
    loadAverageAtStart: os.loadavg().map((n) => Math.round(n * 100) / 100),
  };
}

const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function plusMinus(s: Spread): string {
  return `±${((s.relative / 2) * 100).toFixed(0)}%`;
}

/** A duration given in ms, written in µs: `2.77`, `45.1`, `12,345`. */
export function us(valueMs: number): string {
  const value = valueMs * 1000;
  if (value >= 100) return int.format(value);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** RSS growth below this is within the resolution of RSS (pages the heap already reserved). */
const RSS_RESOLUTION = 2 ** 20;

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

function ratioText(s: Spread): string {
  return `${s.median.toFixed(2)} (${s.min.toFixed(2)}–${s.max.toFixed(2)})`;
}

/** The headline figure of one side: ops/s, or resident memory for memory comparisons. */
function figureCells(result: ComparisonResult, side: WorkloadResult): [string, string] {
  if (side.unavailable !== undefined) return ['—', ''];
  if (result.kind === 'memory') {
    const rss = side.counters?.rssBytes;
    if (rss === undefined) return ['—', ''];
    return [mib(rss.median), `${mib(rss.min)}–${mib(rss.max)} (${plusMinus(rss)})`];
  }
  const rate = side.opsPerSec;
  if (rate === undefined) return ['—', ''];
  return [`${int.format(rate.median)} ops/s`, `${int.format(rate.min)}–${int.format(rate.max)} (${plusMinus(rate)})`];
}

function latencyCells(side: WorkloadResult): [string, string, string] {
  const l = side.latencyMs;
  if (l === undefined) return ['', '', ''];
  return [
    `${us(l.p50.median)} ${plusMinus(l.p50)}`,
    `${us(l.p99.median)} ${plusMinus(l.p99)}`,
    `${us(l.p999.median)} ${plusMinus(l.p999)}`,
  ];
}

/** Extra figures from counters: retries per success (contention), heap (memory). */
function otherCell(side: WorkloadResult): string {
  const c = side.counters;
  if (c === undefined) return '';
  const parts: string[] = [];
  const successes = c.successes;
  const retries = c.retries;
  if (successes !== undefined && retries !== undefined) {
    const perRep = successes.samples.map((s, r) => (retries.samples[r] ?? 0) / s);
    parts.push(`retries/success ${median(perRep).toFixed(2)} (${Math.min(...perRep).toFixed(2)}–${Math.max(...perRep).toFixed(2)})`);
    parts.push('proof ok');
  }
  if (c.gaveUp !== undefined && c.gaveUp.max > 0) parts.push(`gave up ${int.format(c.gaveUp.median)}`);
  if (c.heapBytes !== undefined) parts.push(`heap growth ${mib(c.heapBytes.median)}`);
  if (c.longestPauseMs !== undefined) {
    parts.push(
      `longest write pause ${int.format(c.longestPauseMs.median)} ms (${int.format(c.longestPauseMs.min)}–${int.format(c.longestPauseMs.max)})`,
    );
  }
  if (c.maxStallMs !== undefined)
    parts.push(`max loop stall ${c.maxStallMs.median.toFixed(1)} ms (${c.maxStallMs.min.toFixed(1)}–${c.maxStallMs.max.toFixed(1)})`);
  const heapRatio = (side as BaselineResult).heapRatio;
  if (heapRatio !== undefined) parts.push(`heap ratio ${ratioText(heapRatio)}`);
  return parts.join(', ');
}

/**
 * A size comparison (`growthOf` = the subject's size ÷ the baseline's): how much longer the
 * subject's full run took than the baseline's, from the paired rate ratio. Near-linear
 * (≤ 1.2 × the size ratio) is the target.
 */
export function timeGrowth(result: ComparisonResult, baseline: BaselineResult): { growth: Spread; target: number } | undefined {
  const factor = result.params.growthOf;
  if (typeof factor !== 'number' || factor <= 1 || baseline.ratio === undefined) return undefined;
  const samples = baseline.ratio.samples.map((ratio) => factor / ratio);
  return { growth: spread(samples), target: Math.round(factor * 1.2 * 10) / 10 };
}

function growthCell(result: ComparisonResult, baseline: BaselineResult): string {
  const found = timeGrowth(result, baseline);
  if (found === undefined) return '';
  const { growth, target } = found;
  return `time growth ×${growth.median.toFixed(1)} (${growth.min.toFixed(1)}–${growth.max.toFixed(1)}; target ≤ ${target})`;
}

/**
 * The ratio that can be read for a baseline, or why there is none. The table and the SVG both use
 * this, so the SVG never draws a ratio where the table says n/a.
 */
export function readableRatio(result: ComparisonResult, baseline: BaselineResult): Spread | string {
  if (baseline.ratio === undefined) return 'n/a';
  const rss = baseline.counters?.rssBytes;
  if (result.kind === 'memory' && rss !== undefined && rss.min < RSS_RESOLUTION) return 'n/a: baseline RSS growth < 1 MiB';
  return baseline.ratio;
}

/** The target for a baseline as text, with whether the median meets it: `≥ 0.90 ✓`. */
export function targetText(result: ComparisonResult, baseline: BaselineResult): string {
  const target = result.targets?.[baseline.label];
  if (target === undefined) return '';
  const bound = [target.atLeast === undefined ? '' : `≥ ${target.atLeast}`, target.atMost === undefined ? '' : `≤ ${target.atMost}`]
    .filter(Boolean)
    .join(', ');
  const ratio = readableRatio(result, baseline);
  if (typeof ratio === 'string') return `${bound} (unmeasured)`;
  const met =
    (target.atLeast === undefined || ratio.median >= target.atLeast) && (target.atMost === undefined || ratio.median <= target.atMost);
  return `${bound} ${met ? '✓' : '✗'}`;
}

function ratioCell(result: ComparisonResult, baseline: BaselineResult): string {
  const ratio = readableRatio(result, baseline);
  return typeof ratio === 'string' ? ratio : ratioText(ratio);
}

/** `0.93 (0.88–0.97)`: a ratio's median and its spread over the repetitions. */
export function ratioSpreadText(ratio: Spread): string {
  return ratioText(ratio);
}

function rowsOf(result: ComparisonResult): string[][] {
  const rows: string[][] = [];
  const subject = result.subject;
  const [fig, range] = figureCells(result, subject);
  rows.push([
    result.title,
    subject.unavailable === undefined ? subject.label : `${subject.label}: not available yet`,
    fig,
    range,
    'subject',
    '',
    ...latencyCells(subject),
    '',
    otherCell(subject),
  ]);
  if (subject.unavailable !== undefined) rows.push(['', `  (${subject.unavailable})`, '', '', '', '', '', '', '', '', '']);
  for (const baseline of result.baselines) {
    if (baseline.unavailable !== undefined) {
      rows.push([
        '',
        `  vs ${baseline.label}: not measured: ${baseline.unavailable}`,
        '',
        '',
        '',
        targetText(result, baseline),
        '',
        '',
        '',
        '',
        '',
      ]);
      continue;
    }
    const [bFig, bRange] = figureCells(result, baseline);
    const lr = baseline.latencyRatio;
    rows.push([
      '',
      `  vs ${baseline.label}`,
      bFig,
      bRange,
      ratioCell(result, baseline),
      targetText(result, baseline),
      ...latencyCells(baseline),
      lr === undefined ? '' : `${lr.p50.median.toFixed(2)} / ${lr.p99.median.toFixed(2)} / ${lr.p999.median.toFixed(2)}`,
      [growthCell(result, baseline), otherCell(baseline)].filter((cell) => cell !== '').join(', '),
    ]);
  }
  return rows;
}

/** Renders one backend's results as a Markdown table (aligned, so it reads well in a terminal). */
export function renderTable(report: BackendReport): string {
  if (report.skipped !== undefined) return `skipped: ${report.skipped}`;
  const header = [
    'workload',
    'side',
    'median',
    'min–max',
    'ratio',
    'target',
    'p50 µs',
    'p99 µs',
    'p999 µs',
    'latency ratio p50/p99/p999',
    'other',
  ];
  const rows = report.results.flatMap(rowsOf);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const numeric = [false, false, true, true, false, false, true, true, true, false, false];
  const line = (cells: readonly string[]) =>
    `| ${cells.map((cell, i) => (numeric[i] ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0))).join(' | ')} |`;
  const rule = `|${widths.map((width, i) => (numeric[i] ? `${'-'.repeat(width + 1)}:` : '-'.repeat(width + 2))).join('|')}|`;
  return [line(header), rule, ...rows.map(line), ...report.notes.map((note) => `- ${note}`)].join('\n');
}

/** The run's heading: mode, repetitions, machine, load. */
export function renderHeading(report: RunReport): string {
  const m = report.machine;
  return [
    `${report.mode} run, median of ${report.reps} repetitions (≥ ${report.minSampleMs} ms each) after ${report.warmups} warm-up(s) of ≥ ${report.warmupMs} ms`,
    `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.platform} ${m.release} ${m.arch}, Node ${m.node}, ${report.date}`,
    `load average at start ${m.loadAverageAtStart.join(' ')}, at end ${report.loadAverageAtEnd.join(' ')}`,
  ].join('\n');
}

/** The legend printed once under the tables. */
export const LEGEND = [
  'ratio = subject ÷ that baseline, paired per repetition: ops/s for throughput and latency rows (1 = as fast as the baseline,',
  '0.5 = half its rate), resident memory for memory rows (2 = twice the memory). latency ratio = subject percentile ÷ baseline',
  'percentile (1 = as fast, 2 = twice as slow). Cold-load rows: the baseline is full replay, so a ratio of 20 = 20× faster.',
  'Memory rows: median = RSS growth of a child process while it filled the cache; a baseline whose growth is under 1 MiB is',
  "below what RSS resolves, so compare heap growth (heap ratio) there. target = what the ratio's median must reach (✓ met, ✗ not).",
].join('\n');

/** Writes `value` as JSON to `file`, creating its folder. */
export async function writeJson(file: string, value: unknown): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(value, null, 2)}\n`);
}
