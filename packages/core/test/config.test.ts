import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, resolveConfig, type Config } from '../src/config.js';
import { ConfigError } from '../src/errors.js';

function configError(config: unknown): ConfigError {
  try {
    resolveConfig(config as Config);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`resolveConfig accepted ${JSON.stringify(config)}`);
}

describe('resolveConfig', () => {
  it('fills in the defaults', () => {
    expect(DEFAULT_CONFIG).toEqual({ trimEvents: false, snapshotRatio: 1.0, maxRetries: 16, cacheSize: 128 });
    expect(resolveConfig()).toEqual({ ...DEFAULT_CONFIG, indexer: undefined });
    expect(resolveConfig({})).toEqual({ ...DEFAULT_CONFIG, indexer: undefined });
    expect(resolveConfig(undefined)).toEqual({ ...DEFAULT_CONFIG, indexer: undefined });
  });

  it('keeps the values it is given', () => {
    const indexer = () => [];
    const resolved = resolveConfig({ trimEvents: true, snapshotRatio: 0, maxRetries: 1, cacheSize: 3, indexer });
    expect(resolved).toEqual({ trimEvents: true, snapshotRatio: 0, maxRetries: 1, cacheSize: 3, indexer });
    expect(resolveConfig({ snapshotRatio: 2.5 }).snapshotRatio).toBe(2.5);
    expect(resolveConfig({ maxRetries: 3 })).toMatchObject({ maxRetries: 3, cacheSize: 128, trimEvents: false });
  });

  it('returns a frozen config', () => {
    expect(Object.isFrozen(resolveConfig({}))).toBe(true);
  });

  const invalid: [string, unknown, RegExp][] = [
    ['snapshotRatio', -0.1, /≥ 0/],
    ['snapshotRatio', -1, /≥ 0/],
    ['snapshotRatio', Number.NaN, /got NaN/],
    ['snapshotRatio', '1', /must be a number/],
    ['maxRetries', 0, /integer > 0/],
    ['maxRetries', -1, /integer > 0/],
    ['maxRetries', 1.5, /got 1\.5/],
    ['maxRetries', '3', /integer > 0/],
    ['maxRetries', Number.POSITIVE_INFINITY, /integer > 0/],
    ['cacheSize', 0, /integer > 0/],
    ['cacheSize', 1.5, /integer > 0/],
    ['cacheSize', -5, /integer > 0/],
    ['trimEvents', 'yes', /must be a boolean/],
    ['trimEvents', 1, /must be a boolean/],
    ['indexer', 'status', /must be a function/],
    ['indexer', {}, /must be a function/],
  ];

  for (const [field, value, rule] of invalid) {
    it(`rejects ${field} = ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`, () => {
      const error = configError({ [field]: value });
      expect(error.field).toBe(field);
      expect(error.code).toBe('INVALID_CONFIG');
      expect(error.message).toContain(`invalid config: ${field} `);
      expect(error.message).toMatch(rule);
    });
  }

  it('rejects a null or non-object config', () => {
    for (const value of [null, 'config', 42]) {
      const error = configError(value);
      expect(error.field).toBe('config');
      expect(error.message).toMatch(/config must be an object/);
    }
  });
});
