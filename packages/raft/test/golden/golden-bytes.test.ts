import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { goldenCases, reencode } from './cases.js';

// The bytes the package writes to disk, into the replicated log and onto the wire must never
// change by accident: members of one cluster may run different builds during an upgrade, and a
// data folder outlives the build that wrote it. The fixture holds the bytes as written when it was
// made; every encoder must still write exactly them.
const fixture = JSON.parse(readFileSync(new URL('./golden-bytes.json', import.meta.url), 'utf8')) as Record<string, string>;

describe('golden bytes', async () => {
  const cases = await goldenCases();

  it('has a fixture for every case and a case for every fixture', () => {
    expect(Object.keys(cases).sort()).toEqual(Object.keys(fixture).sort());
  });

  for (const [name, bytes] of Object.entries(cases)) {
    it(`writes ${name} byte for byte as before`, () => {
      expect(Buffer.from(bytes).toString('hex')).toBe(fixture[name]);
    });
  }

  for (const [name, hex] of Object.entries(fixture)) {
    const again = reencode(name, Buffer.from(hex, 'hex'));
    if (again === undefined) continue;
    it(`reads the golden ${name} back to the same value`, () => {
      expect(Buffer.from(again).toString('hex')).toBe(hex);
    });
  }
});
