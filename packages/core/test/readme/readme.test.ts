import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';

const read = (path: string) => readFile(new URL(path, import.meta.url), 'utf8');

/** The first TypeScript block of the README section headed `heading`. */
function sectionCode(readme: string, heading: string): string {
  const start = readme.indexOf(`\n## ${heading}\n`);
  expect(start, `README section "${heading}"`).toBeGreaterThanOrEqual(0);
  const block = /```ts\n([\s\S]*?)```/.exec(readme.slice(start));
  expect(block, `a ts block in README section "${heading}"`).not.toBeNull();
  return (block as RegExpExecArray)[1] as string;
}

describe('README', () => {
  it('"Testing your commands" shows the example that testing-example.test.ts runs', async () => {
    const example = (await read('./testing-example.test.ts'))
      .replace("from '../../src/index.js'", "from '@timebox/core'")
      .replace("from '../../src/testing/index.js'", "from '@timebox/core/testing'");
    expect(sectionCode(await read('../../README.md'), 'Testing your commands')).toBe(example);
  });
});
