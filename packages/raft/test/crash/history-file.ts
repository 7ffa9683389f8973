import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { HistoryLine } from './protocol.js';

/**
 * An append-only JSON-lines file. Each line goes out in one synchronous `write`, so a SIGKILL
 * can lose at most the line being written; the page cache survives the death of the process,
 * so no fsync is needed for these tests (a machine crash is not what they simulate).
 */
export class HistoryWriter {
  readonly #fd: number;

  constructor(path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.#fd = openSync(path, 'a');
  }

  write(line: HistoryLine): void {
    writeSync(this.#fd, `${JSON.stringify(line)}\n`);
  }

  close(): void {
    fsyncSync(this.#fd);
    closeSync(this.#fd);
  }
}

/** Every history line of every `*.jsonl` file in `dir`; a torn last line (a killed writer) is skipped. */
export function readHistoryDir(dir: string): HistoryLine[] {
  const lines: HistoryLine[] = [];
  for (const name of readdirSync(dir)
    .filter((n) => n.endsWith('.jsonl'))
    .sort()) {
    const text = readFileSync(join(dir, name), 'utf8');
    const parts = text.split('\n');
    for (const [i, part] of parts.entries()) {
      if (part === '') continue;
      try {
        lines.push(JSON.parse(part) as HistoryLine);
      } catch (error) {
        // Only the very last line may be torn, and only if the file does not end in a newline.
        if (i !== parts.length - 1) throw new Error(`${name}: line ${i + 1} is not JSON: ${part}`, { cause: error });
      }
    }
  }
  return lines;
}
