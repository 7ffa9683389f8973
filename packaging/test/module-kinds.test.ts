import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, inject, test } from 'vitest';
import { freshNpmProject, npmInstall } from '../src/npm-project.js';
import { tarballOf } from '../src/release-tarballs.js';
import { run } from '../src/run.js';

/** A fresh npm project (no "type": "module") with the released core and memory installed. */
async function projectWithCoreAndMemory(label: string): Promise<string> {
  const tarballs = inject('tarballs');
  const folder = await freshNpmProject(label);
  await npmInstall(folder, [tarballOf(tarballs, '@timebox/core').file, tarballOf(tarballs, '@timebox/memory').file]);
  return folder;
}

// The program every project runs: open a memory store, append one event, read it back.
const appendOne = `
const store = createMemoryStore();
await store.appendEvents(['cart', '1'], 0, [{ type: 'ItemAdded', data: { sku: 'KB-01' } }]);
const events = await store.getEvents(['cart', '1']);
console.log(events.length, events[0].type, compareCodeUnits('a', 'b'));
await store.close();
`;

test('a CommonJS project require()s @timebox/core and @timebox/memory and appends an event', async () => {
  const folder = await projectWithCoreAndMemory('commonjs');
  const program = `'use strict';
const { compareCodeUnits } = require('@timebox/core');
const { createMemoryStore } = require('@timebox/memory');
(async () => {${appendOne}})();
`;
  await writeFile(join(folder, 'index.js'), program);
  const { stdout } = await run('node', ['index.js'], folder);
  expect(stdout.trim()).toBe('1 ItemAdded -1');
});

test('a CommonJS project imports @timebox/core and @timebox/memory and appends an event', async () => {
  const folder = await projectWithCoreAndMemory('commonjs-import');
  const program = `import { compareCodeUnits } from '@timebox/core';
import { createMemoryStore } from '@timebox/memory';
${appendOne}`;
  await writeFile(join(folder, 'index.mjs'), program);
  const { stdout } = await run('node', ['index.mjs'], folder);
  expect(stdout.trim()).toBe('1 ItemAdded -1');
});

test('a CommonJS TypeScript project ("module": "node16") type-checks its imports of both packages and runs', async () => {
  const folder = await projectWithCoreAndMemory('commonjs-ts');
  await npmInstall(folder, ['typescript@~5.9.3', '@types/node@^20.19.0'], true);
  const tsconfig = {
    compilerOptions: { module: 'node16', target: 'ES2022', strict: true, skipLibCheck: false, outDir: 'out', types: ['node'] },
    files: ['index.ts'],
  };
  await writeFile(join(folder, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
  const program = `import { compareCodeUnits, type Store } from '@timebox/core';
import { createMemoryStore } from '@timebox/memory';
type CartEvents = { ItemAdded: { sku: string } };
async function main(): Promise<void> {
  const store: Store<CartEvents> = createMemoryStore<CartEvents>();
  await store.appendEvents(['cart', '1'], 0, [{ type: 'ItemAdded', data: { sku: 'KB-01' } }]);
  const events = await store.getEvents(['cart', '1']);
  console.log(events.length, events[0]?.type, compareCodeUnits('a', 'b'));
  await store.close();
}
void main();
`;
  await writeFile(join(folder, 'index.ts'), program);
  await run('npx', ['tsc', '-p', 'tsconfig.json'], folder);
  const { stdout } = await run('node', [join('out', 'index.js')], folder);
  expect(stdout.trim()).toBe('1 ItemAdded -1');
});
