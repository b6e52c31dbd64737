// Command-line usage errors: yargs' validation messages turned into togo's (what was wrong, a
// did-you-mean where one is close, where to look), and the parsers of numeric flags.
import { UsageError } from "../core/errors.js";
import { closest } from "../config/suggest.js";

/** The command words togo knows, for did-you-mean: top-level commands and their subcommands. */
export interface CommandWords {
  top: string[];
  sub: Record<string, string[]>;
}

/** The arguments that are togo's own (everything before a `--`). */
function ownArgs(argv: string[]): string[] {
  const end = argv.indexOf("--");
  return end === -1 ? argv : argv.slice(0, end);
}

/** True when `name` was given as an option (`--name`, `--no-name`, `--name=x`, `-n`, `-xn`). */
function givenAsOption(name: string, args: string[]): boolean {
  return args.some((a) => {
    const long = /^--(?:no-)?([^=]+)/.exec(a);
    if (long) return long[1] === name;
    return name.length === 1 && /^-[^-]/.test(a) && a.slice(1).split("=")[0].includes(name);
  });
}

const dashed = (name: string) => (name.length === 1 ? `-${name}` : `--${name}`);

/**
 * One usage error from a yargs validation message. `options` are the option names the command in
 * play accepts (for did-you-mean); argv is what the user typed.
 */
export function usageError(msg: string, argv: string[], options: string[], words: CommandWords): UsageError {
  const args = ownArgs(argv);
  const command = args.find((a) => words.top.includes(a));
  const help = command ? `togo ${command} --help` : "togo --help";
  const unknown = /^Unknown arguments?: (.*)$/s.exec(msg);
  if (unknown) {
    const names = unknown[1].split(", ");
    // yargs reports `--lock-wat` twice (also as lockWat): keep the name as typed.
    const typed = names.filter((n) => !(/[A-Z]/.test(n) && names.includes(n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`))));
    const longOptions = options.filter((o) => o.length > 1 && !/[A-Z]/.test(o));
    const parts: string[] = [];
    for (const name of typed) {
      if (givenAsOption(name, args)) {
        const guess = name.length > 1 ? closest(name.replace(/-/g, "_"), longOptions.map((o) => o.replace(/-/g, "_"))) : undefined;
        parts.push(`unknown option ${dashed(name)}${guess ? `; did you mean ${dashed(guess.replace(/_/g, "-"))}?` : ""}`);
        continue;
      }
      const candidates = command === undefined ? words.top : words.sub[command];
      if (candidates === undefined) {
        parts.push(`unexpected argument "${name}"`);
        continue;
      }
      // Only the word in the command's place is one; what follows an unknown command means nothing yet.
      if (parts.some((p) => p.startsWith("unknown command") || p.startsWith("unknown subcommand"))) continue;
      const guess = closest(name, candidates);
      const what = command === undefined ? `command "${name}"` : `subcommand "${name}" of togo ${command}`;
      parts.push(`unknown ${what}${guess ? `; did you mean "${guess}"?` : `; one of: ${candidates.join(", ")}`}`);
    }
    return new UsageError(`${parts.join("; ")} (${help} lists what it takes)`);
  }
  const missing = /^Not enough arguments following: (.*)$/.exec(msg);
  if (missing) return new UsageError(`${dashed(missing[1])} needs a value (see ${help})`);
  return new UsageError(`${msg} (see ${help})`);
}

/** A flag given twice comes as a list: refused rather than guessing which one was meant. */
function single(flag: string, value: unknown): unknown {
  if (Array.isArray(value)) throw new Error(`${flag} was given ${value.length} times; give it once`);
  return value;
}

/** A yargs `coerce` for a string flag that may be given once. */
export function once(flag: string): (value: string) => string {
  return (value: string) => single(flag, value) as string;
}

/**
 * A yargs `coerce` for a flag whose value is a count or a number of seconds: the text must be a
 * whole number from 0 up, so `abc`, `-1`, `1.5`, `1e3`, `0x10`, NaN and Infinity are usage errors
 * rather than numbers that mean something else.
 */
export function wholeNumber(flag: string, what: string): (value: unknown) => number {
  return (value: unknown) => {
    const text = String(single(flag, value));
    if (!/^\d{1,9}$/.test(text)) throw new Error(`${flag}: got ${JSON.stringify(text)}; expected ${what}: a whole number, 0 or more`);
    return Number(text);
  };
}
