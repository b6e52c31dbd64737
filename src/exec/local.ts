// The local transport: commands run under this machine's sh.
import { cp, mkdir, rm, stat, readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { execa } from "execa";
import { OperationError } from "../core/errors.js";
import { expandHome } from "../core/home.js";
import { hostFactsCommand, parseHostFacts } from "./facts.js";
import { trackedScript } from "./tracked.js";
import type { Command, CommandResult, HostFacts, RunOptions, Transport } from "./transport.js";

export async function sizeOf(path: string): Promise<number> {
  const s = await stat(path);
  if (!s.isDirectory()) return s.size;
  let total = 0;
  for (const e of await readdir(path)) total += await sizeOf(join(path, e));
  return total;
}

/** Turns a finished command into an OperationError that says what failed and shows its stderr. */
export function checkResult(result: CommandResult, target: string, cmd: Command, opts: RunOptions): CommandResult {
  if (result.code === 0 || opts.check === false) return result;
  const detail = (result.stderr || result.stdout).trim().split("\n").slice(-15).join("\n");
  throw new OperationError(`${cmd.what ?? cmd.op} failed on ${target} (exit ${result.code})${detail ? `:\n${detail}` : ""}`);
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  try {
    if (pid) process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

export class LocalTransport implements Transport {
  readonly target = "local";
  readonly stats = { commands: 0, bytesUploaded: 0, connections: 0 };
  readonly stopped: string[] = [];
  private probed?: HostFacts;

  async run(cmd: Command, opts: RunOptions = {}): Promise<CommandResult> {
    this.stats.commands++;
    if (opts.signal?.aborted) return checkResult({ code: 130, stdout: "", stderr: "interrupted before it started" }, this.target, cmd, opts);
    // A stage's command runs as its own process group that dies with togo (even after kill -9) and
    // that an interrupt stops whole: killing `sh` alone would leave what it started running.
    const tracked = opts.signal !== undefined;
    const proc = execa("sh", ["-c", tracked ? trackedScript(cmd.script, { watch: process.pid }) : cmd.script], {
      input: cmd.input ?? "",
      reject: false,
      stripFinalNewline: false,
      detached: tracked,
      ...(opts.inherit ? { stdout: "inherit", stderr: "inherit" } : {}),
    });
    const stop = () => {
      killGroup(proc.pid, "SIGTERM");
      this.stopped.push(cmd.what ?? cmd.op);
      setTimeout(() => killGroup(proc.pid, "SIGKILL"), 5000).unref();
    };
    opts.signal?.addEventListener("abort", stop, { once: true });
    const r = await proc.finally(() => opts.signal?.removeEventListener("abort", stop));
    const result = { code: r.exitCode ?? 1, stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? "") };
    return checkResult(result, this.target, cmd, opts);
  }

  async interactive(cmd: Command): Promise<number> {
    this.stats.commands++;
    const r = await execa("sh", ["-c", cmd.script], { stdio: "inherit", reject: false });
    return r.exitCode ?? 1;
  }

  async facts(): Promise<HostFacts> {
    this.probed ??= parseHostFacts((await this.run(hostFactsCommand())).stdout);
    return this.probed;
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
