import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CallAnswer, CallVerb, ProcessSpec, StatusReport } from './protocol.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const packageRoot = path.resolve(here, '../..');
const script = path.join(here, 'member-process.ts');

/** Polls `condition` every 25 ms until it holds; rejects with `what()` after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * One running member process (see `member-process.ts`), in its own process group so that a
 * SIGKILL takes the whole of it. Keeps the reports it sent; its stderr goes to `logFile`.
 */
export class MemberHandle {
  readonly spec: ProcessSpec;
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #logFile: string;
  /** Each report word seen, with the text after it (the latest, if it came more than once). */
  readonly #events = new Map<string, string>();
  readonly #calls = new Map<number, { resolve: (answer: CallAnswer) => void; reject: (error: Error) => void }>();
  #nextCall = 0;
  #status: StatusReport | undefined;
  #statusCount = 0;
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly #exited: Promise<void>;
  #killed = false;

  private constructor(spec: ProcessSpec, logFile: string) {
    this.spec = spec;
    this.#logFile = logFile;
    // node --import tsx rather than npx: one process to kill, and a faster start on a busy machine.
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
    // A write to a dead child's stdin fails with EPIPE; its death is reported through `exit`.
    this.#child.stdin.on('error', () => undefined);
    this.#exited = new Promise((resolve) => {
      this.#child.on('exit', (code, signal) => {
        this.#exit = { code, signal };
        appendFileSync(logFile, `[${new Date().toISOString()}] ${spec.client} exited: code ${code}, signal ${signal}\n`);
        for (const pending of this.#calls.values())
          pending.reject(new Error(`${spec.client} exited (code ${code}, signal ${signal}) before answering`));
        this.#calls.clear();
        resolve();
      });
    });
  }

  /** Starts a member process for `spec`, appending its stderr to `logFile`. */
  static start(spec: ProcessSpec, logFile: string): MemberHandle {
    appendFileSync(logFile, `[${new Date().toISOString()}] starting ${spec.client}\n`);
    return new MemberHandle(spec, logFile);
  }

  get id(): string {
    return this.spec.member.localId;
  }

  /** The latest `@status` report, if any. */
  get status(): StatusReport | undefined {
    return this.#status;
  }

  /** How many `@status` reports arrived; waiting for it to grow proves a report is fresh. */
  get statusCount(): number {
    return this.#statusCount;
  }

  get alive(): boolean {
    return this.#exit === undefined;
  }

  has(event: string): boolean {
    return this.#events.has(event);
  }

  /** Waits for the `@event` report; fails early, with the log, if the process dies first. */
  async waitFor(event: string, timeoutMs: number): Promise<void> {
    await waitFor(
      () => this.#events.has(event) || this.#exit !== undefined,
      timeoutMs,
      () => `${this.spec.client} to report ${event}; last status ${JSON.stringify(this.#status)}; log ${this.#logFile}`,
    );
    if (!this.#events.has(event))
      throw new Error(`${this.spec.client} exited (${JSON.stringify(this.#exit)}) before reporting ${event}; see ${this.#logFile}`);
  }

  /** The text that came with the `@event` report (empty if none), or undefined if it did not come. */
  report(event: string): string | undefined {
    return this.#events.get(event);
  }

  send(word: 'stop' | 'close'): void {
    this.#child.stdin.write(`${word}\n`);
  }

  /**
   * Runs `verb` in the member process (see `CallVerb`) and resolves with its value; rejects with
   * the error it answered, when the process exits first, or after `timeoutMs` without an answer.
   */
  async call(verb: CallVerb, args: readonly (string | number)[], timeoutMs: number): Promise<unknown> {
    if (this.#exit !== undefined) throw new Error(`${this.spec.client} is not running`);
    const n = this.#nextCall++;
    let timer: NodeJS.Timeout | undefined;
    const answer = await new Promise<CallAnswer>((resolve, reject) => {
      this.#calls.set(n, { resolve, reject });
      timer = setTimeout(() => {
        this.#calls.delete(n);
        reject(new Error(`${this.spec.client} did not answer ${verb} ${args.join(' ')} within ${timeoutMs} ms; see ${this.#logFile}`));
      }, timeoutMs);
      this.#child.stdin.write(`call ${n} ${verb} ${args.join(' ')}\n`);
    }).finally(() => clearTimeout(timer));
    if (!answer.ok) throw new Error(`${this.spec.client}: ${verb} ${args.join(' ')} failed: ${answer.error}`);
    return answer.value;
  }

  /** Sends SIGTERM (a service manager's stop: the process closes cleanly) and waits for exit 0. */
  async terminate(timeoutMs: number): Promise<void> {
    if (this.#exit === undefined) this.#child.kill('SIGTERM');
    await this.waitFor('closed', timeoutMs);
    await this.#exited;
    if (this.#exit?.code !== 0)
      throw new Error(`${this.spec.client} exited with ${JSON.stringify(this.#exit)} after SIGTERM; see ${this.#logFile}`);
  }

  /** Asks for a clean close and waits for the process to exit 0. */
  async close(timeoutMs: number): Promise<void> {
    this.send('close');
    await this.waitFor('closed', timeoutMs);
    await this.#exited;
    if (this.#exit?.code !== 0)
      throw new Error(`${this.spec.client} exited with ${JSON.stringify(this.#exit)} after a clean close; see ${this.#logFile}`);
  }

  /** SIGKILLs the whole process group and waits until the process is gone. */
  async kill(): Promise<void> {
    if (!this.#killed && this.#exit === undefined) {
      this.#killed = true;
      try {
        process.kill(-(this.#child.pid as number), 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await this.#exited;
  }

  /** An exit that nobody asked for (no SIGKILL by the test, no clean close). */
  get crashed(): boolean {
    return this.#exit !== undefined && !this.#killed && this.#exit.code !== 0;
  }

  #onLine(line: string): void {
    if (!line.startsWith('@')) return;
    const [word, ...rest] = line.slice(1).split(' ');
    if (word === 'status') {
      this.#status = JSON.parse(rest.join(' ')) as StatusReport;
      this.#statusCount++;
    } else if (word === 'answer') {
      const [n, ...answer] = rest;
      const pending = this.#calls.get(Number(n));
      this.#calls.delete(Number(n));
      pending?.resolve(JSON.parse(answer.join(' ')) as CallAnswer);
    } else if (word !== undefined) {
      this.#events.set(word, rest.join(' '));
    }
  }
}
