// Several Commands in one round trip. Adjacent small scripts of a stage (the layout and the lock,
// the env and the upload check, the prunes) run in one remote shell, one after the other, each in a
// subshell of its own so that its `exit` ends only its part. After each part a marker line with its
// exit code goes to both streams, so the results come apart exactly as if each had run alone. The
// batch stops at the first part that fails; the parts after it do not run.
import { randomBytes } from "node:crypto";
import { checkResult } from "./local.js";
import type { Command, CommandResult, RunOptions, Transport } from "./transport.js";

export interface Batch {
  /** Begins the line that closes each part's output; random, so no output can end a part early. */
  marker: string;
  parts: Command[];
}

/** One Command that runs `parts` in order; at most one part may read stdin (its `input`). */
export function batchCommand(parts: Command[], marker = `--togo-part-${randomBytes(8).toString("hex")}`): Command & { batch: Batch } {
  const readers = parts.filter((p) => p.input !== undefined);
  if (readers.length > 1) throw new Error(`a batch carries one input, not ${readers.length} (${readers.map((p) => p.op).join(", ")})`);
  const body = parts.map((p) =>
    [
      // A part without input must not read what another part is given.
      `(\n${p.script}\n)${p.input === undefined ? " </dev/null" : ""}`,
      `r=$?; printf '\\n%s %s\\n' '${marker}' "$r"; printf '\\n%s %s\\n' '${marker}' "$r" >&2; [ "$r" -eq 0 ] || exit "$r"`,
    ].join("\n"),
  );
  return {
    op: parts.map((p) => p.op).join("+"),
    script: body.join("\n"),
    what: parts.map((p) => p.what ?? p.op).join(", then "),
    ...(readers[0] ? { input: readers[0].input } : {}),
    batch: { marker, parts },
  };
}

/**
 * The parts' own results from the batch's. A part cut off before its marker (an interrupt, a lost
 * connection) gets what it printed and the batch's exit code; the parts after it get none.
 */
export function splitBatch(b: Batch, r: CommandResult): CommandResult[] {
  const out = pieces(b.marker, r.stdout);
  const err = pieces(b.marker, r.stderr);
  const results: CommandResult[] = [];
  for (let i = 0; i < b.parts.length; i++) {
    const o = out[i];
    if (!o) break;
    results.push({ code: o.code ?? r.code, stdout: o.text, stderr: err[i]?.text ?? "" });
    if (o.code === undefined || o.code !== 0) break;
  }
  return results;
}

/** What a batch prints for these part results (the fake transport answers batches with it). */
export function joinBatch(b: Batch, results: CommandResult[]): CommandResult {
  const close = (code: number) => `\n${b.marker} ${code}\n`;
  return {
    code: results.find((r) => r.code !== 0)?.code ?? 0,
    stdout: results.map((r) => r.stdout + close(r.code)).join(""),
    stderr: results.map((r) => r.stderr + close(r.code)).join(""),
  };
}

function pieces(marker: string, text: string): { text: string; code?: number }[] {
  const found: { text: string; code?: number }[] = [];
  const close = `\n${marker} `;
  let at = 0;
  for (;;) {
    const end = text.indexOf(close, at);
    if (end < 0) break;
    const eol = text.indexOf("\n", end + close.length);
    const code = Number(text.slice(end + close.length, eol < 0 ? undefined : eol));
    found.push({ text: text.slice(at, end), code });
    if (eol < 0) return found;
    at = eol + 1;
  }
  // What the part running when the batch ended printed, without its marker.
  found.push({ text: text.slice(at) });
  return found;
}

/** Checks each part's result as if it had run alone; a part the batch never reached counts as failed. */
export function checkParts(target: string, parts: Command[], results: CommandResult[]): void {
  parts.forEach((c, i) => checkResult(results[i] ?? { code: 1, stdout: "", stderr: "did not run" }, target, c, {}));
}

/**
 * Runs `parts` as one round trip and returns each part's result (fewer when one failed: the batch
 * stops there). With `check` (the default) a failed part throws as it would have alone.
 */
export async function runBatch(t: Transport, parts: Command[], opts: RunOptions = {}): Promise<CommandResult[]> {
  if (parts.length === 0) return [];
  if (parts.length === 1) return [await t.run(parts[0], opts)];
  const cmd = batchCommand(parts);
  const results = splitBatch(cmd.batch, await t.run(cmd, { ...opts, check: false }));
  results.forEach((r, i) => checkResult(r, t.target, parts[i], opts));
  return results;
}
