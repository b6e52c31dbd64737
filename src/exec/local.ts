// The local transport: commands run under this machine's sh.
import { cp, mkdir, rm, stat, readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { execa } from "execa";
import { OperationError } from "../core/errors.js";
import { expandHome } from "../core/home.js";
import { hostFactsCommand, parseHostFacts } from "./facts.js";
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

export class LocalTransport implements Transport {
  readonly target = "local";
  readonly stats = { commands: 0, bytesUploaded: 0, connections: 0 };
  private probed?: HostFacts;

  async run(cmd: Command, opts: RunOptions = {}): Promise<CommandResult> {
    this.stats.commands++;
    const r = await execa("sh", ["-c", cmd.script], {
      input: cmd.input ?? "",
      reject: false,
      stripFinalNewline: false,
      ...(opts.signal ? { cancelSignal: opts.signal } : {}),
      ...(opts.inherit ? { stdout: "inherit", stderr: "inherit" } : {}),
    });
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
