/**
 * The long soak: runs many simulation seeds and prints a summary. Run through vitest so it needs
 * nothing beyond the test toolchain:
 *   pnpm soak                                  # seeds 1..5000
 *   SIM_SEEDS=20000 SIM_FROM=1 pnpm soak
 *   SIM_SEED=1234 pnpm soak                    # replay one seed: violations, trace hash, statistics
 *   SIM_VARIANT=commit-older-term pnpm soak    # run a deliberately broken core (failures expected)
 */
import { brokenVariants, type BrokenVariantName } from './broken-variants.js';
import { reproduceCommand, simulate, type NodeFactory } from './simulation.js';

export interface SoakSummary {
  readonly seeds: number;
  readonly failing: readonly number[];
  readonly variant: string | null;
  readonly lines: readonly string[];
}

export function runSoak(env: Readonly<Record<string, string | undefined>>, print: (line: string) => void): SoakSummary {
  const variantName = env['SIM_VARIANT'] as BrokenVariantName | undefined;
  let createNode: NodeFactory | undefined;
  if (variantName !== undefined) {
    createNode = brokenVariants[variantName];
    if (createNode === undefined) throw new Error(`unknown SIM_VARIANT ${variantName}; known: ${Object.keys(brokenVariants).join(', ')}`);
  }
  const single = env['SIM_SEED'];
  const count = single === undefined ? Number(env['SIM_SEEDS'] ?? 5000) : 1;
  const first = single === undefined ? Number(env['SIM_FROM'] ?? 1) : Number(single);
  const lines: string[] = [];
  const say = (line: string): void => {
    lines.push(line);
    print(line);
  };

  const started = performance.now();
  const totals = {
    events: 0,
    messagesSent: 0,
    messagesDropped: 0,
    messagesDuplicated: 0,
    crashes: 0,
    tornWrites: 0,
    pauses: 0,
    partitions: 0,
    snapshotsSent: 0,
    compactions: 0,
    confChanges: 0,
    transfers: 0,
    leaderTerms: 0,
    committed: 0,
    operations: 0,
    abandoned: 0,
  };
  const failing: number[] = [];
  for (let seed = first; seed < first + count; seed++) {
    // A broken core only needs its first violation (its runs can livelock); replaying one seed shows everything.
    const result = simulate({ seed, ...(createNode === undefined ? {} : { createNode, stopAtFirstViolation: single === undefined }) });
    for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] += result.stats[key];
    if (single !== undefined) say(`seed ${seed}: trace ${result.traceHash}, ${JSON.stringify(result.stats)}`);
    if (result.violations.length > 0) {
      failing.push(seed);
      say(`FAIL seed ${seed}: ${result.violations[0]}\n  reproduce: ${reproduceCommand(seed, variantName)}`);
      if (single !== undefined) for (const violation of result.violations.slice(1)) say(`  ${violation}`);
    }
    if (single === undefined && (seed - first + 1) % 1000 === 0) {
      say(`… ${seed - first + 1}/${count} seeds, ${failing.length} failing, ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  say(
    `soak: ${count} seeds (${first}..${first + count - 1})${variantName === undefined ? '' : ` variant ${variantName}`}, ${failing.length} failing, ${seconds.toFixed(1)} s\n` +
      `  totals: ${Object.entries(totals)
        .map(([key, value]) => `${key}=${value}`)
        .join(' ')}`,
  );
  return { seeds: count, failing, variant: variantName ?? null, lines };
}
