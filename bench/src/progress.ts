/** Formats seconds as `1m05s` / `42s`. */
function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/**
 * Progress lines on stderr: elapsed time of the whole run, the backend, what just finished, and
 * an ETA for the backend's suite from the steps done so far (each step is one repetition of one
 * side of one comparison, so the estimate is rough until a few comparisons have run).
 */
export class Progress {
  readonly #runStart = performance.now();
  #backend = '';
  #suiteStart = 0;
  #total = 0;
  #done = 0;

  /** Starts a backend's suite of `steps` steps. */
  startSuite(backend: string, steps: number): void {
    this.#backend = backend;
    this.#suiteStart = performance.now();
    this.#total = steps;
    this.#done = 0;
  }

  /** A free-form line for the current backend. */
  line(text: string): void {
    const elapsed = (performance.now() - this.#runStart) / 1000;
    process.stderr.write(`[${clock(elapsed).padStart(6)}] ${this.#backend || 'bench'}: ${text}\n`);
  }

  /** One step done. */
  step(text: string): void {
    this.#done++;
    const spent = (performance.now() - this.#suiteStart) / 1000;
    const eta = this.#total > 0 && this.#done < this.#total ? `, ETA ${clock((spent / this.#done) * (this.#total - this.#done))}` : '';
    this.line(`${text}  [${this.#done}/${this.#total}${eta}]`);
  }
}
