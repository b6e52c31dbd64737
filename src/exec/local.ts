// The local transport: scripts run under this machine's sh.
import { cp, mkdir, rm, stat, readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { execa } from "execa";
import { OperationError } from "../core/errors.js";
import { expandHome } from "../core/home.js";
import type { CommandResult, RunOptions, Transport } from "./transport.js";

export async function sizeOf(path: string): Promise<number> {
  const s = await stat(path);
  if (!s.isDirectory()) return s.size;
  let total = 0;
  for (const e of await readdir(path)) total += await sizeOf(join(path, e));
  return total;
}

/** Turns a finished script into an OperationError that says what failed and shows its stderr. */
export function checkResult(result: CommandResult, target: string, opts: RunOptions): CommandResult {
  if (result.code === 0 || opts.check === false) return result;
  const detail = (result.stderr || result.stdout).trim().split("\n").slice(-15).join("\n");
  throw new OperationError(`${opts.what ?? "a command"} failed on ${target} (exit ${result.code})${detail ? `:\n${detail}` : ""}`);
}

export class LocalTransport implements Transport {
  readonly target = "local";
  readonly stats = { commands: 0, bytesUploaded: 0, connections: 0 };

  async run(script: string, opts: RunOptions = {}): Promise<CommandResult> {
    this.stats.commands++;
    const r = await execa("sh", ["-c", script], {
      input: opts.input ?? "",
      reject: false,
      stripFinalNewline: false,
      ...(opts.inherit ? { stdout: "inherit", stderr: "inherit" } : {}),
    });
    const result = { code: r.exitCode ?? 1, stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? "") };
    return checkResult(result, this.target, opts);
  }

  async upload(localPath: string, remotePath: string): Promise<number> {
    const dest = expandHome(remotePath);
    await mkdir(dirname(dest), { recursive: true });
    await rm(dest, { recursive: true, force: true });
    await cp(localPath, dest, { recursive: true, preserveTimestamps: true });
    const bytes = await sizeOf(localPath);
    this.stats.bytesUploaded += bytes;
    return bytes;
  }

  async reach(port: number): Promise<string> {
    return `http://127.0.0.1:${port}`;
  }

  async close(): Promise<void> {}
}
