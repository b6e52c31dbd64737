// What every command shares: global options, opening the Service, printing data, exit codes.
import { createInterface } from "node:readline/promises";
import { TogoError, UsageError } from "../core/errors.js";
import { createReporter, type Reporter } from "../core/log.js";
import { trapInterrupts } from "../pipeline/interrupt.js";
import { openService, type Opened } from "./service.js";
import type { RunOptions } from "../core/spec.js";

export interface GlobalArgs {
  config: string;
  json?: boolean;
  quiet?: boolean;
  /** `-s/--stage NAME` (else TOGO_STAGE). */
  stage?: string;
  /** `--host H` on the commands that can work on one host of a fleet. */
  host?: string;
}

/** Stage lines on stderr (none with --quiet); progress notes too, but not with --json (data runs are kept terse). */
export function reporter(args: { json?: boolean; quiet?: boolean }): Reporter {
  return createReporter({ quiet: args.quiet, progress: !args.json });
}

export async function open(args: GlobalArgs, log: Reporter, opts: Partial<RunOptions> = {}, signal?: AbortSignal): Promise<Opened> {
  return openService(args.config, log, { json: Boolean(args.json), ...opts }, process.env, signal, args.stage);
}

/** Runs fn with Ctrl-C/SIGTERM turned into an abort signal (the pipeline cleans up, then exits 130/143). */
export async function interruptible<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const trap = trapInterrupts();
  try {
    return await fn(trap.signal);
  } finally {
    trap.dispose();
  }
}

/** Data goes to stdout: JSON with --json, else the human form. */
export function print(args: { json?: boolean }, data: unknown, human: () => string): void {
  process.stdout.write(args.json ? `${JSON.stringify(data, null, 2)}\n` : `${human()}\n`);
}

export function table(rows: [string, string][]): string {
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join("\n");
}

/** Asks on a TTY; elsewhere refuses unless `required` is false. */
export async function confirm(question: string, yes: boolean, requiredOffTty: boolean): Promise<void> {
  if (yes) return;
  if (!process.stdin.isTTY) {
    if (requiredOffTty) throw new UsageError(`${question} Not on a terminal: pass --yes to confirm.`);
    return;
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await rl.question(`${question} [y/N] `);
  rl.close();
  if (!/^y(es)?$/i.test(answer.trim())) throw new UsageError("cancelled; nothing was changed");
}

export function exitCodeOf(err: unknown): number {
  return err instanceof TogoError ? err.exitCode : 1;
}

/** Wraps a handler: errors print as one clear message and set the exit code (no stack traces). */
export function run<A>(fn: (args: A) => Promise<number | void>): (args: A) => Promise<void> {
  return async (args: A) => {
    try {
      const code = await fn(args);
      process.exitCode = code ?? 0;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      process.stderr.write(`togo: ${message}\n`);
      if (!(err instanceof TogoError) && process.env.TOGO_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
      process.exitCode = exitCodeOf(err);
    }
  };
}
