// Typed errors. Every error a user can see says what went wrong and what to do; the CLI maps
// `exitCode` straight to the process exit code (0 ok, 1 operation failed, 2 usage/config;
// `togo status` exits 3 for an app that is not ready).

export class TogoError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = new.target.name;
    this.exitCode = exitCode;
  }
}

/** Bad usage on the command line. */
export class UsageError extends TogoError {
  constructor(message: string) {
    super(message, 2);
  }
}

export interface ConfigProblem {
  /** Dotted key path, e.g. `deploy.healthcheck.timeout`; empty for the whole file. */
  path: string;
  /** The offending value, already redacted where it may be secret. */
  value?: unknown;
  /** What is expected, and how to fix it. */
  expected: string;
}

/** One or more problems in togo.yaml, all reported at once. */
export class ConfigError extends TogoError {
  readonly problems: ConfigProblem[];
  readonly file: string;
  constructor(file: string, problems: ConfigProblem[]) {
    super(ConfigError.format(file, problems), 2);
    this.file = file;
    this.problems = problems;
  }

  static format(file: string, problems: ConfigProblem[]): string {
    const lines = problems.map((p) => {
      const key = p.path === "" ? "(file)" : p.path;
      const got = p.value === undefined ? "" : ` got ${showValue(p.value)};`;
      return `  ${key}:${got} ${p.expected}`;
    });
    const n = problems.length;
    return `${file}: ${n} problem${n === 1 ? "" : "s"}; nothing was run\n${lines.join("\n")}`;
  }
}

function showValue(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

export class UnknownDriverError extends TogoError {
  constructor(name: string, known: string[], source: string) {
    super(
      `unknown driver "${name}" (from ${source}); known drivers: ${known.join(", ")}. ` +
        `Set deploy.provider to one of them, or name the npm package that provides it under plugins:`,
      2,
    );
  }
}

/** The chosen driver cannot do this operation. */
export class UnsupportedOperationError extends TogoError {
  constructor(driver: string, operation: string, hint = "") {
    super(`the ${driver} driver does not support "${operation}"${hint ? `: ${hint}` : ""}`, 2);
  }
}

/** An operation ran and failed (apply, build, health check, remote command...). */
export class OperationError extends TogoError {
  constructor(message: string) {
    super(message, 1);
  }
}

/** Another run holds the deploy lock. */
export class LockHeldError extends TogoError {
  constructor(message: string) {
    super(message, 1);
  }
}

/** The user interrupted (Ctrl-C / SIGTERM); exits 130 or 143 as a shell would. */
export class InterruptedError extends TogoError {
  constructor(readonly signal: string, message: string) {
    super(message, signal === "SIGTERM" ? 143 : 130);
  }
}

/** A user hook (togo.yaml `hooks:`) failed. */
export class HookError extends TogoError {
  constructor(
    readonly hook: string,
    message: string,
  ) {
    super(message, 1);
  }
}
