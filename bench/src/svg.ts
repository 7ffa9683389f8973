import type { WorkloadResult } from './harness.js';
import { ratioSpreadText, readableRatio, targetText, us, type RunReport } from './report.js';

/**
 * Renders the run as one SVG: per backend, a block per comparison with one horizontal bar per
 * side (subject first, then its baselines), each block scaled to its own largest value so that
 * sides compare at a glance whatever the backend's absolute speed. Throughput blocks show ops/s;
 * latency blocks add p50 and p99 bars; memory blocks show resident MiB.
 */
export function renderSvg(report: RunReport): string {
  const width = 1300;
  const labelWidth = 330;
  const barMax = width - labelWidth - 430;
  const lines: string[] = [];
  let y = 30;
  const text = (x: number, ty: number, content: string, attrs = '') =>
    lines.push(`<text x="${x}" y="${ty}" ${attrs}>${escapeXml(content)}</text>`);
  const bar = (x: number, by: number, w: number, h: number, fill: string) =>
    lines.push(`<rect x="${x}" y="${by}" width="${Math.max(w, 1).toFixed(1)}" height="${h}" fill="${fill}"/>`);

  text(10, y, `Timebox benchmarks: ${report.mode} run, ${report.date}`, 'font-size="18" font-weight="bold"');
  y += 20;
  const m = report.machine;
  text(
    10,
    y,
    `${m.cpu}, ${m.cores} cores, Node ${m.node}; load average ${m.loadAverageAtStart.join(' ')} → ${report.loadAverageAtEnd.join(' ')}; medians of ${report.reps} repetitions`,
    'font-size="12" fill="#555"',
  );
  y += 16;
  text(
    10,
    y,
    'Blue: Timebox (subject). Grey: baselines in the same run. Bars within a block share one scale; × = subject ÷ baseline.',
    'font-size="12" fill="#555"',
  );
  y += 24;

  for (const backend of report.backends) {
    text(
      10,
      y,
      backend.skipped === undefined ? backend.backend : `${backend.backend}: skipped (${backend.skipped})`,
      'font-size="16" font-weight="bold"',
    );
    y += 10;
    for (const result of backend.results) {
      const sides: { side: WorkloadResult; subject: boolean }[] = [
        { side: result.subject, subject: true },
        ...result.baselines.map((side) => ({ side, subject: false })),
      ];
      y += 18;
      text(
        10,
        y,
        `${result.title} (${result.kind === 'memory' ? 'resident memory, lower is better' : result.kind === 'latency' ? 'ops/s and latency' : 'ops/s, higher is better'})`,
        'font-size="13" font-weight="bold"',
      );
      y += 6;
      const value = (side: WorkloadResult) =>
        result.kind === 'memory' ? (side.counters?.rssBytes?.median ?? 0) : (side.opsPerSec?.median ?? 0);
      const max = Math.max(1e-9, ...sides.map(({ side }) => value(side)));
      for (const { side, subject } of sides) {
        y += 4;
        text(20, y + 11, side.label, 'font-size="12"');
        if (side.unavailable !== undefined) {
          text(labelWidth, y + 11, `not available: ${truncate(side.unavailable, 90)}`, 'font-size="12" fill="#a00"');
          y += 16;
          continue;
        }
        const v = value(side);
        const w = (v / max) * barMax;
        bar(labelWidth, y, w, 14, subject ? '#2563eb' : '#9ca3af');
        const figure = result.kind === 'memory' ? `${(v / 2 ** 20).toFixed(1)} MiB` : `${Math.round(v).toLocaleString('en-US')} ops/s`;
        let ratioNote = '';
        if (!subject) {
          // The same reading as the table's: a spread (min–max) and the target, or the table's n/a.
          const ratio = readableRatio(result, side);
          const target = targetText(result, side);
          ratioNote = `  ×${typeof ratio === 'string' ? ratio : ratioSpreadText(ratio)}${target === '' ? '' : `  target ${target}`}`;
        }
        text(labelWidth + w + 6, y + 11, `${figure}${ratioNote}`, 'font-size="12"');
        y += 16;
      }
      if (result.kind === 'latency') {
        const maxLatency = Math.max(1e-9, ...sides.map(({ side }) => side.latencyMs?.p99.median ?? 0));
        y += 4;
        text(20, y + 10, 'latency: dark p50, light p99 (µs, shorter is better)', 'font-size="11" fill="#555"');
        y += 14;
        for (const { side, subject } of sides) {
          const l = side.latencyMs;
          if (l === undefined) continue;
          text(30, y + 11, side.label, 'font-size="11"');
          bar(labelWidth, y, (l.p99.median / maxLatency) * barMax, 14, subject ? '#93c5fd' : '#d1d5db');
          bar(labelWidth, y, (l.p50.median / maxLatency) * barMax, 14, subject ? '#1d4ed8' : '#6b7280');
          text(
            labelWidth + (l.p99.median / maxLatency) * barMax + 6,
            y + 11,
            `p50 ${us(l.p50.median)} · p99 ${us(l.p99.median)} µs`,
            'font-size="11"',
          );
          y += 16;
        }
      }
    }
    for (const note of backend.notes) {
      y += 16;
      text(20, y, truncate(note, 160), 'font-size="11" fill="#555"');
    }
    y += 28;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...lines,
    '</svg>',
    '',
  ].join('\n');
}

function truncate(value: string, length: number): string {
  return value.length <= length ? value : `${value.slice(0, length - 1)}…`;
}

function escapeXml(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
