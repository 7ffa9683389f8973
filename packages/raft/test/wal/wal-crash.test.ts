import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { WriteAheadLog } from '../../src/wal/index.js';
import { entry, tempDirs } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

const here = path.dirname(fileURLToPath(import.meta.url));
const packageRoot = path.resolve(here, '../..');

/**
 * Runs the writer until it has acknowledged `killAfter` saves, then SIGKILLs its whole process
 * group (npx, tsx and node). Returns the indexes it acknowledged.
 */
function runWriter(dir: string, term: number, killAfter: number): Promise<{ start: number; acked: number[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npx', ['tsx', path.join(here, 'crash-writer.ts'), dir, String(term)], {
      cwd: packageRoot,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acked: number[] = [];
    let start = -1;
    let buffered = '';
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const [word, value] = line.split(' ');
        if (word === 'start') start = Number(value);
        if (word === 'ack') acked.push(Number(value));
      }
      if (!killed && acked.length >= killAfter) {
        killed = true;
        process.kill(-(child.pid as number), 'SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (!killed) reject(new Error(`writer exited on its own (code ${code}, signal ${signal}): ${stderr}`));
      else resolve({ start, acked });
    });
  });
}

describe('WriteAheadLog under SIGKILL', () => {
  it('keeps every acknowledged entry intact and contiguous across killed writers', async () => {
    const dir = dirs.make();
    const seed = Date.now();
    let state = seed;
    const random = () => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
    const everAcked: number[] = [];
    for (let round = 1; round <= 4; round++) {
      const killAfter = 100 + Math.floor(random() * 1500);
      const { start, acked } = await runWriter(dir, round, killAfter);
      const context = `seed ${seed}, round ${round}, killed after ${acked.length} acks`;
      expect(acked.length, context).toBeGreaterThanOrEqual(killAfter);
      expect(start, context).toBeGreaterThanOrEqual(everAcked.length === 0 ? 0 : Math.max(...everAcked));
      everAcked.push(...acked);

      const wal = await WriteAheadLog.open(dir, { tailSize: 2048, segmentBytes: 32 * 1024 });
      try {
        const highest = Math.max(...everAcked);
        const snapshotIndex = wal.snapshot().meta.index;
        expect(wal.lastIndex(), context).toBeGreaterThanOrEqual(highest);
        expect(wal.firstIndex(), context).toBe(snapshotIndex + 1);
        expect(wal.hardState().commit, context).toBeGreaterThanOrEqual(highest);
        // Everything from the snapshot on is there, in order, each entry exactly as written:
        // no gap, nothing torn. Terms are the round that wrote them, never decreasing.
        const stored = wal.entries(wal.firstIndex(), wal.lastIndex() + 1, Infinity);
        expect(stored.length, context).toBe(wal.lastIndex() - snapshotIndex);
        let previousTerm = 0;
        stored.forEach((e, i) => {
          expect(e.index, context).toBe(snapshotIndex + 1 + i);
          expect(e.term, context).toBeGreaterThanOrEqual(previousTerm);
          expect(e.term, context).toBeLessThanOrEqual(round);
          previousTerm = e.term;
          expect(e, context).toEqual(entry(e.index, e.term));
        });
      } finally {
        await wal.close();
      }
    }
  }, 300_000);
});
