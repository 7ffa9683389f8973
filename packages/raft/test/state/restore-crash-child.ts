/**
 * A process that restores a snapshot image into a state folder in tiny steps, printing `step <n>`
 * after each, so the test can SIGKILL it midway (`image-restore.test.ts`).
 *
 * Usage: tsx restore-crash-child.ts <state dir> <image file> <index>
 */
import { readFileSync } from 'node:fs';
import { MaterializedState } from '../../src/state/materialized-state.js';

const [dir, imageFile, index] = process.argv.slice(2) as [string, string, string];
const image = readFileSync(imageFile);
let steps = 0;
const state = MaterializedState.open(dir, {
  restoreChunking: { budgetMs: 0, onStep: () => process.stdout.write(`step ${++steps}\n`) },
});
await state.restoreSnapshot(image, Number(index));
process.stdout.write('restored\n');
await state.close();
