// Output for humans: one line a stage with its duration; a spinner only on a TTY; NO_COLOR honoured.
// Data (`--json`) goes to stdout; everything here goes to stderr so the two never mix.

export interface Reporter {
  /** Runs `fn` as a named stage and prints its duration (or its failure). */
  stage<T>(name: string, fn: () => Promise<T>): Promise<T>;
  info(message: string): void;
  warn(message: string): void;
  /**
   * How far the running stage has got (`hashing 1,200/30,000 files`): on a TTY it rides on the
   * spinner line; otherwise a line at most every second, and none for a stage that ends sooner.
   * Nothing with `progress: false` (`--json`).
   */
  progress?(message: string): void;
  /** Durations of the stages run so far, in order (for tests and benchmarks). */
  readonly stages: { name: string; ms: number; ok: boolean }[];
}

export interface ReporterOptions {
  stream?: NodeJS.WriteStream | { write(s: string): boolean; isTTY?: boolean };
  quiet?: boolean;
  /** false: no progress notes (stage lines still print unless quiet). */
  progress?: boolean;
  color?: boolean;
  /** The clock progress lines are paced by (ms); tests pass their own. */
  now?: () => number;
}

/** A plain (non-TTY) progress line at most this often, the first one only this far into a stage. */
const PLAIN_PROGRESS_MS = 1000;
const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

export function useColor(stream: { isTTY?: boolean }): boolean {
  if ("NO_COLOR" in process.env && process.env.NO_COLOR !== "") return false;
  if (process.env.FORCE_COLOR && process.env.FORCE_COLOR !== "0") return true;
  return Boolean(stream.isTTY) && process.env.TERM !== "dumb";
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)}s`;
}

export function createReporter(opts: ReporterOptions = {}): Reporter {
  const stream = opts.stream ?? process.stderr;
  const color = opts.color ?? useColor(stream);
  const tty = Boolean(stream.isTTY) && !opts.quiet;
  const paint = (code: number, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const write = (line: string) => {
    if (!opts.quiet) stream.write(line);
  };
  const stages: Reporter["stages"] = [];
  /** The running stage's progress note, and when a plain (non-TTY) line was last written. */
  let note = "";
  let noted = 0;
  const now = opts.now ?? (() => performance.now());

  return {
    stages,
    async stage(name, fn) {
      const start = performance.now();
      let frame = 0;
      note = "";
      noted = now();
      const timer = tty
        ? setInterval(() => write(`\r${paint(36, SPINNER[frame++ % SPINNER.length])} ${name}${note ? ` ${paint(2, note)}\x1b[K` : ""}`), 80)
        : undefined;
      try {
        const value = await fn();
        const ms = performance.now() - start;
        stages.push({ name, ms, ok: true });
        write(`${tty ? "\r\x1b[K" : ""}${paint(32, "✓")} ${name.padEnd(10)} ${paint(2, formatMs(ms))}\n`);
        return value;
      } catch (err) {
        const ms = performance.now() - start;
        stages.push({ name, ms, ok: false });
        write(`${tty ? "\r\x1b[K" : ""}${paint(31, "✗")} ${name.padEnd(10)} ${paint(2, formatMs(ms))}\n`);
        throw err;
      } finally {
        if (timer) clearInterval(timer);
        note = "";
      }
    },
    progress(message) {
      if (opts.progress === false) return;
      note = message;
      const at = now();
      if (!tty && at - noted >= PLAIN_PROGRESS_MS) {
        noted = at;
        write(`  ${message}\n`);
      }
    },
    info(message) {
      write(`${message}\n`);
    },
    warn(message) {
      write(`${paint(33, "warning:")} ${message}\n`);
    },
  };
}
