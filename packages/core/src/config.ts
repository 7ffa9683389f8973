import { ConfigError } from './errors.js';
import type { EventMap } from './event.js';
import type { Indexer } from './indexer.js';

/** Store behaviour, whatever the backend. Every field is optional; see `DEFAULT_CONFIG`. */
export interface Config<M extends EventMap = EventMap> {
  /** Saving a snapshot at sequence n deletes the stored events below n. Default false. */
  readonly trimEvents?: boolean;
  /**
   * An executor refreshes a snapshot while loading when the trailing events' data bytes divided
   * by the snapshot's bytes exceed this. Default 1.0; must be ≥ 0.
   */
  readonly snapshotRatio?: number;
  /** How many times an exec re-runs its command after a conflict. Default 16; must be > 0. */
  readonly maxRetries?: number;
  /** Aggregates kept in each executor's projection cache. Default 128; must be > 0. */
  readonly cacheSize?: number;
  /** Derives status and labels from each appended batch. */
  readonly indexer?: Indexer<M>;
}

/** A config with every default filled in. */
export interface ResolvedConfig<M extends EventMap = EventMap> {
  readonly trimEvents: boolean;
  readonly snapshotRatio: number;
  readonly maxRetries: number;
  readonly cacheSize: number;
  readonly indexer: Indexer<M> | undefined;
}

export const DEFAULT_CONFIG = Object.freeze({
  trimEvents: false,
  snapshotRatio: 1.0,
  maxRetries: 16,
  cacheSize: 128,
});

/** Fills in defaults and validates; throws `ConfigError` naming the field and the rule. */
export function resolveConfig<M extends EventMap>(config: Config<M> = {}): ResolvedConfig<M> {
  if (config === null || typeof config !== 'object') {
    throw new ConfigError('config', 'must be an object', config);
  }
  const trimEvents = config.trimEvents ?? DEFAULT_CONFIG.trimEvents;
  if (typeof trimEvents !== 'boolean') throw new ConfigError('trimEvents', 'must be a boolean', trimEvents);

  const snapshotRatio = config.snapshotRatio ?? DEFAULT_CONFIG.snapshotRatio;
  if (typeof snapshotRatio !== 'number' || Number.isNaN(snapshotRatio) || snapshotRatio < 0) {
    throw new ConfigError('snapshotRatio', 'must be a number ≥ 0', snapshotRatio);
  }

  const maxRetries = config.maxRetries ?? DEFAULT_CONFIG.maxRetries;
  requirePositiveInteger('maxRetries', maxRetries);

  const cacheSize = config.cacheSize ?? DEFAULT_CONFIG.cacheSize;
  requirePositiveInteger('cacheSize', cacheSize);

  const indexer = config.indexer;
  if (indexer !== undefined && typeof indexer !== 'function') {
    throw new ConfigError('indexer', 'must be a function', indexer);
  }
  return Object.freeze({ trimEvents, snapshotRatio, maxRetries, cacheSize, indexer });
}

/** Throws `ConfigError` unless `value` is a safe integer > 0. Backends use it for their own fields. */
export function requirePositiveInteger(field: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new ConfigError(field, 'must be an integer > 0', value);
  }
}
