/**
 * Child process for the crash test: opens the WAL in argv[2] and appends entries of term argv[3]
 * after whatever is there, many saves in flight at once, printing "ack <index>" once the save that
 * wrote <index> resolved, until it is killed. Every so often it snapshots and compacts, so kills
 * also land in the middle of segment deletion.
 */
import * as fs from 'node:fs';
import { WriteAheadLog } from '../../src/wal/index.js';
import { entry } from './helpers.js';

const dir = process.argv[2] as string;
const term = Number(process.argv[3]);
const IN_FLIGHT = 32;
const LIMIT = 500_000;

function say(line: string): void {
  // Synchronous, so a line printed is a line the parent can read even after SIGKILL. The pipe is
  // non-blocking: when it is full (a busy parent), writeSync throws EAGAIN, so try again.
  const bytes = Buffer.from(`${line}\n`);
  for (let offset = 0; offset < bytes.length;) {
    try {
      offset += fs.writeSync(1, bytes, offset);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
    }
  }
}

const wal = await WriteAheadLog.open(dir, { tailSize: 2048, segmentBytes: 32 * 1024 });
say(`start ${wal.lastIndex()} ${wal.firstIndex()}`);
let next = wal.lastIndex() + 1;
let inFlight = 0;
let lastSnapshotAt = next;

function fail(error: unknown): void {
  process.stderr.write(`writer failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
}

function pump(): void {
  while (inFlight < IN_FLIGHT && next < LIMIT) {
    const from = next;
    const to = from + (from % 3);
    next = to + 1;
    inFlight++;
    const entries = [];
    for (let i = from; i <= to; i++) entries.push(entry(i, term));
    wal.save({ snapshot: null, entries, hardState: { term, vote: 'w', commit: to } }).then(() => {
      inFlight--;
      say(`ack ${to}`);
      if (to - lastSnapshotAt >= 1500) {
        lastSnapshotAt = to;
        const at = to - 300;
        wal
          .createSnapshot(at, ['w'], new Uint8Array([at & 0xff]))
          .then(() => wal.compact(at))
          .catch(fail);
      }
      pump();
    }, fail);
  }
}

pump();
