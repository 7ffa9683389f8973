import { InvalidArgumentError } from '@timebox/core';
import { SeededRandom } from '../consensus/random.js';
import type { NodeId } from '../consensus/types.js';

/** What happens to one message on a link, as decided by {@link LinkFaults.verdict}. */
export type LinkVerdict =
  | { readonly kind: 'deliver'; readonly delayMs: number }
  /** Lost as a failed send: the sender reports the peer unreachable. */
  | { readonly kind: 'drop' }
  /** Lost silently, as in a partition that swallows packets. */
  | { readonly kind: 'blackhole' };

interface LinkRule {
  dropProbability: number;
  delayMs: number;
  blackhole: boolean;
}

const DELIVER_NOW: LinkVerdict = Object.freeze({ kind: 'deliver', delayMs: 0 });
const DROP: LinkVerdict = Object.freeze({ kind: 'drop' });
const BLACKHOLE: LinkVerdict = Object.freeze({ kind: 'blackhole' });

/** Options of {@link LinkFaults}. */
export interface LinkFaultsOptions {
  /** Seed of the randomness behind `drop` with a probability below 1. Default 1. */
  readonly seed?: number;
}

/**
 * Fault injection for tests, per directed link (`from` → `to`). Several in-process transports
 * share one instance; each applies it on its sending side before the socket, to messages and
 * snapshot streams alike. Faults on one link combine: blackhole wins over drop, drop over delay.
 *
 * - `drop`: each message is lost with the given probability, and the sender reports the peer
 *   unreachable (as when a send fails).
 * - `delay`: messages wait `ms` before they are sent; order on the link is kept. On a snapshot
 *   stream every chunk waits `ms`.
 * - `blackhole`, `isolate`, `partition`: messages vanish silently (no unreachable report). A
 *   snapshot stream into a blackhole fails (reported as not sent), as a real stream would time out.
 */
export class LinkFaults {
  private readonly rules = new Map<NodeId, Map<NodeId, LinkRule>>();
  private readonly isolated = new Set<NodeId>();
  private readonly random: SeededRandom;

  constructor(options: LinkFaultsOptions = {}) {
    const seed = options.seed ?? 1;
    if (!Number.isSafeInteger(seed)) throw new InvalidArgumentError('seed', 'must be an integer', seed);
    this.random = new SeededRandom(seed);
  }

  /** Loses messages on `from` → `to` with `probability` (0 … 1, default 1: every message). */
  drop(from: NodeId, to: NodeId, probability = 1): this {
    if (typeof probability !== 'number' || !(probability >= 0 && probability <= 1)) {
      throw new InvalidArgumentError('probability', 'must be a number from 0 to 1', probability);
    }
    this.rule(from, to).dropProbability = probability;
    return this;
  }

  /** Holds messages on `from` → `to` for `ms` milliseconds (0 removes the delay). */
  delay(from: NodeId, to: NodeId, ms: number): this {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) throw new InvalidArgumentError('ms', 'must be a finite number ≥ 0', ms);
    this.rule(from, to).delayMs = ms;
    return this;
  }

  /** Makes every message on `from` → `to` vanish silently. */
  blackhole(from: NodeId, to: NodeId): this {
    this.rule(from, to).blackhole = true;
    return this;
  }

  /** Blackholes every link to and from `node`, whichever nodes exist. */
  isolate(node: NodeId): this {
    checkId('node', node);
    this.isolated.add(node);
    return this;
  }

  /** Blackholes both directions of every link between the two groups (which must not overlap). */
  partition(groupA: readonly NodeId[], groupB: readonly NodeId[]): this {
    for (const a of groupA) {
      if (groupB.includes(a))
        throw new InvalidArgumentError('groupB', `must not share a node with groupA (${JSON.stringify(a)} is in both)`, groupB);
    }
    for (const a of groupA) {
      for (const b of groupB) {
        this.blackhole(a, b);
        this.blackhole(b, a);
      }
    }
    return this;
  }

  /**
   * Removes faults: `heal()` all of them; `heal(node)` every fault on links from or to `node`,
   * including its isolation; `heal(from, to)` the faults on that one directed link (an isolated
   * endpoint stays isolated).
   */
  heal(from?: NodeId, to?: NodeId): this {
    if (from === undefined && to === undefined) return this.healAll();
    if (from !== undefined && to !== undefined) {
      this.rules.get(from)?.delete(to);
      return this;
    }
    const node = (from ?? to) as NodeId;
    this.isolated.delete(node);
    this.rules.delete(node);
    for (const targets of this.rules.values()) targets.delete(node);
    return this;
  }

  /** Removes every fault. */
  healAll(): this {
    this.rules.clear();
    this.isolated.clear();
    return this;
  }

  /** Decides the fate of one message on `from` → `to` (draws randomness for a partial drop). */
  verdict(from: NodeId, to: NodeId): LinkVerdict {
    if (this.isolated.has(from) || this.isolated.has(to)) return BLACKHOLE;
    const rule = this.rules.get(from)?.get(to);
    if (rule === undefined) return DELIVER_NOW;
    if (rule.blackhole) return BLACKHOLE;
    if (rule.dropProbability >= 1 || (rule.dropProbability > 0 && this.random.chance(rule.dropProbability))) return DROP;
    return rule.delayMs > 0 ? { kind: 'deliver', delayMs: rule.delayMs } : DELIVER_NOW;
  }

  /** Whether `from` → `to` currently swallows everything (checked between snapshot chunks). */
  isCut(from: NodeId, to: NodeId): boolean {
    if (this.isolated.has(from) || this.isolated.has(to)) return true;
    const rule = this.rules.get(from)?.get(to);
    return rule !== undefined && (rule.blackhole || rule.dropProbability >= 1);
  }

  /** The delay configured on `from` → `to`, 0 when none. */
  delayOf(from: NodeId, to: NodeId): number {
    return this.rules.get(from)?.get(to)?.delayMs ?? 0;
  }

  private rule(from: NodeId, to: NodeId): LinkRule {
    checkId('from', from);
    checkId('to', to);
    let targets = this.rules.get(from);
    if (targets === undefined) this.rules.set(from, (targets = new Map<NodeId, LinkRule>()));
    let rule = targets.get(to);
    if (rule === undefined) targets.set(to, (rule = { dropProbability: 0, delayMs: 0, blackhole: false }));
    return rule;
  }
}

function checkId(name: string, id: unknown): void {
  if (typeof id !== 'string' || id === '') throw new InvalidArgumentError(name, 'must be a non-empty node ID', id);
}
