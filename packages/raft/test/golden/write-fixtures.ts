// Writes golden-bytes.json from the current encoders: run only when a format changes on purpose
// (`npx tsx test/golden/write-fixtures.ts`), never to make a failing golden test pass.
import { writeFileSync } from 'node:fs';
import { goldenCases } from './cases.js';

const cases = await goldenCases();
const hex = Object.fromEntries(Object.entries(cases).map(([name, bytes]) => [name, Buffer.from(bytes).toString('hex')]));
writeFileSync(new URL('./golden-bytes.json', import.meta.url), JSON.stringify(hex, null, 2) + '\n');
console.log(`${Object.keys(hex).length} cases written`);
