import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../crash/member-handle.js';
import type { MemberStatus, QueryCommand, QueryMemberSpec } from './protocol.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const packageRoot = path.resolve(here, '../..');
const script = path.join(here, 'query-member.ts');

/**
 * One running `query-member.ts` process, in its own process group. Keeps every report it sent
 * (the `@status` ones in order, so a test can look at the whole history of roles and terms); its
 * stderr goes to `logFile`.
 */
export class QueryMemberHandle {
  readonly id: string;
  /** Every `@status` report, oldest first. */
  readonly statuses: MemberStatus[] = [];
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #logFile: string;
  readonly #reports = new Map<string, unknown>();
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly #exited: Promise<void>;

  constructor(spec: QueryMemberSpec, logFile: string) {
    this.id = spec.member.localId;
    this.#logFile = logFile;
    this.#child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(spec)], {
      cwd: packageRoot,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let buffered = '';
    this.#child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) this.#onLine(line);
    });
    this.#child.stderr.on('data', (chunk: Buffer) => appendFileSync(logFile, chunk));
    this.#child.stdin.on('error', () => undefined);
    this.#exited = new Promise((resolve) => {
      this.#child.on('exit', (code, signal) => {
        this.#exit = { code, signal };
        resolve();
      });
    });
  }

  /** The latest `@status` report, if any. */
  get status(): MemberStatus | undefined {
    return this.statuses.at(-1);
  }

  send(command: QueryCommand): void {
    this.#child.stdin.write(`${JSON.stringify(command)}\n`);
  }

  /** Waits for the `@word` report and returns its value; fails early, naming the log, if the process dies first. */
  async report<T>(word: string, timeoutMs: number): Promise<T> {
    await waitFor(
      () => this.#reports.has(word) || this.#exit !== undefined,
      timeoutMs,
      () => `${this.id} to report ${word}; last status ${JSON.stringify(this.status)}; log ${this.#logFile}`,
    );
    if (!this.#reports.has(word))
      throw new Error(`${this.id} exited (${JSON.stringify(this.#exit)}) before reporting ${word}; see ${this.#logFile}`);
    return this.#reports.get(word) as T;
  }

  /** Asks for a clean close and waits for exit 0; SIGKILLs the group if that fails. */
  async close(timeoutMs: number): Promise<void> {
    if (this.#exit === undefined) {
      this.send({ do: 'close' });
      try {
        await this.report('closed', timeoutMs);
      } catch (error) {
        this.kill();
        throw error;
      }
    }
    await this.#exited;
  }

  /** SIGKILLs the whole process group (nothing if it is gone). */
  kill(): void {
    if (this.#exit !== undefined) return;
    try {
      process.kill(-(this.#child.pid as number), 'SIGKILL');
    } catch {
      // Already gone.
    }
  }

  #onLine(line: string): void {
    if (!line.startsWith('@')) return;
    const space = line.indexOf(' ');
    const word = space < 0 ? line.slice(1) : line.slice(1, space);
    const value: unknown = space < 0 ? {} : JSON.parse(line.slice(space + 1));
    if (word === 'status') this.statuses.push(value as MemberStatus);
    else this.#reports.set(word, value);
  }
}
