import * as fs from 'node:fs';
import type { Entry } from '../consensus/types.js';
import { MalformedRecordError, WalCorruptionError } from './errors.js';
import { readFrame } from './frames.js';
import type { Slot } from './log-index.js';
import { decodeRecord, type WalRecord } from './records.js';

/**
 * Reads entries that fell out of the in-memory tail back from their segment files, synchronously
 * (the consensus core reads its log synchronously), verifying each frame's checksum again.
 * Keeps one read descriptor per segment it has touched.
 */
export class ColdReader {
  private readonly fds = new Map<string, number>();

  read(file: string, slot: Slot, index: number): Entry {
    let fd = this.fds.get(file);
    if (fd === undefined) {
      fd = fs.openSync(file, 'r');
      this.fds.set(file, fd);
    }
    const frame = Buffer.allocUnsafe(slot.length);
    const read = fs.readSync(fd, frame, 0, slot.length, slot.offset);
    const content = read === slot.length ? readFrame(frame) : 'frame beyond end of file';
    if (typeof content === 'string') throw new WalCorruptionError(file, slot.offset, content);
    let record: WalRecord;
    try {
      record = decodeRecord(content);
    } catch (error) {
      if (error instanceof MalformedRecordError) throw new WalCorruptionError(file, slot.offset, `malformed record: ${error.message}`);
      throw error;
    }
    if (record.type !== 'entry' || record.entry.index !== index) {
      throw new WalCorruptionError(file, slot.offset, `expected entry ${index}, found another record`);
    }
    return record.entry;
  }

  /** Closes the descriptor of a file about to be deleted. */
  forget(file: string): void {
    const fd = this.fds.get(file);
    if (fd === undefined) return;
    this.fds.delete(file);
    fs.closeSync(fd);
  }

  closeAll(): void {
    for (const file of [...this.fds.keys()]) this.forget(file);
  }
}
