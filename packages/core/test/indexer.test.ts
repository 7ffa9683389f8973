import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../src/errors.js';
import { Event } from '../src/event.js';
import { foldIndexes, type Index } from '../src/indexer.js';

const id = Object.freeze(['order', '1']);

function batch(...times: number[]): Event[] {
  return times.map((ms, i) => new Event('Changed', id, i, new Date(ms), JSON.stringify({ i })));
}

describe('foldIndexes', () => {
  it('lets the last status win', () => {
    const update = foldIndexes([{ status: 'created' }, { status: 'paid' }, { status: 'shipped' }], batch(1, 2, 3));
    expect(update?.status).toBe('shipped');
  });

  it('keeps an earlier status when later entries say none', () => {
    const update = foldIndexes([{ status: 'paid' }, { labels: { carrier: 'ups' } }, {}], batch(1, 2, 3));
    expect(update?.status).toBe('paid');
    expect(update?.labels).toEqual({ carrier: 'ups' });
  });

  it('merges labels in order, later values overriding earlier ones', () => {
    const update = foldIndexes(
      [{ labels: { region: 'eu', tier: 'gold' } }, { labels: { region: 'us' } }, { labels: { channel: 'web' } }],
      batch(1, 2, 3),
    );
    expect(update?.labels).toEqual({ region: 'us', tier: 'gold', channel: 'web' });
    expect(update).not.toHaveProperty('status');
  });

  it('preserves "" values, which clear the status and remove labels', () => {
    const update = foldIndexes(
      [
        { status: 'open', labels: { region: 'eu' } },
        { status: '', labels: { region: '' } },
      ],
      batch(1, 2),
    );
    expect(update).toBeDefined();
    expect(update).toHaveProperty('status', '');
    expect(update?.labels).toEqual({ region: '' });
  });

  it('takes the status time from the last event of the batch', () => {
    const update = foldIndexes([{ status: 'open' }, undefined, undefined], batch(1_000, 2_000, 3_500));
    expect(update?.statusTime).toBe(3_500);
    // Even when only the first event spoke.
    const labelsOnly = foldIndexes([{ labels: { a: 'b' } }], batch(10, 20));
    expect(labelsOnly?.statusTime).toBe(20);
  });

  it('skips undefined (and null) entries and tolerates fewer entries than events', () => {
    const update = foldIndexes([undefined, { status: 'a' }, null as unknown as undefined], batch(1, 2, 3, 4));
    expect(update).toEqual({ status: 'a', statusTime: 4, labels: {} });
  });

  it('returns undefined when the batch says nothing', () => {
    expect(foldIndexes([], batch(1))).toBeUndefined();
    expect(foldIndexes([undefined, undefined], batch(1, 2))).toBeUndefined();
    expect(foldIndexes([{}, {}], batch(1, 2))).toBeUndefined();
  });

  it('rejects a non-string status with InvalidArgumentError', () => {
    for (const status of [1, null, true, { s: 'x' }]) {
      const indexes = [{ status } as unknown as Index];
      expect(() => foldIndexes(indexes, batch(1))).toThrow(InvalidArgumentError);
      expect(() => foldIndexes(indexes, batch(1))).toThrow(/index status: must be a string/);
    }
  });

  it('rejects a non-string label value with InvalidArgumentError naming the label', () => {
    const indexes = [{ labels: { region: 7 } } as unknown as Index];
    expect(() => foldIndexes(indexes, batch(1))).toThrow(InvalidArgumentError);
    expect(() => foldIndexes(indexes, batch(1))).toThrow(/index label "region": must be a string \(got 7\)/);
    expect(() => foldIndexes([{ labels: { region: undefined } } as unknown as Index], batch(1))).toThrow(InvalidArgumentError);
  });

  it('rejects an empty label name', () => {
    expect(() => foldIndexes([{ labels: { '': 'x' } }], batch(1))).toThrow(InvalidArgumentError);
  });

  it('rejects an indexer result that is not an array', () => {
    expect(() => foldIndexes({ status: 'x' } as unknown as Index[], batch(1))).toThrow(InvalidArgumentError);
    expect(() => foldIndexes(undefined as unknown as Index[], batch(1))).toThrow(/must return an array/);
  });
});
