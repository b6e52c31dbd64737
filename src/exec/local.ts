// The local transport: commands run under this machine's sh.
import { cp, lstat, mkdir, readdir, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { execa } from "execa";
import { OperationError } from "../core/errors.js";
import { expandHome } from "../core/home.js";
import { q } from "../core/shell.js";
import { hostFactsCommand, parseHostFacts } from "./facts.js";
import { trackedScript } from "./tracked.js";
import type { Command, CommandResult, HostFacts, RunOptions, Transport, UploadOptions, UploadResult } from "./transport.js";

/** Bytes and regular files under a path (symlinks are not followed). */
export async function treeSize(path: string): Promise<UploadResult> {
  const s = await lstat(path);
  if (s.isDirectory()) {
    const total = { bytes: 0, files: 0 };
    for (const e of await readdir(path)) {
      const t = await treeSize(join(path, e));
      total.bytes += t.bytes;
      total.files += t.files;
    }
    return total;
  }
  return s.isFile() ? { bytes: s.size, files: 1 } : { bytes: 0, files: 0 };
}

/**
 * `--link-dest` for each base, with `--checksum`: rsync's quick check (size and whole-second mtime)
 * would link a file changed within the same second as its base, or by a build that pins mtimes,
 * from the old release. Both ends read the files to compare them; only changed ones are sent.
 */
export function linkFrom(bases: string[]): string[] {
  return bases.length > 0 ? ["--checksum", ...bases.map((d) => `--link-dest=${d}`)] : [];
}

/** rsync of a file or a directory's contents into a local path; see UploadOptions for linkDest. */
export function localRsyncArgs(local: string, dest: string, isDir: boolean, linkDest: string[] = []): string[] {
  if (!isDir) return ["-a", "--stats", local, dest];
  return ["-a", "--delete", "--stats", ...linkFrom(linkDest), `${local.replace(/\/+$/, "")}/`, `${dest}/`];
}

/** "Total bytes sent: 1,234" from rsync --stats. */
export function parseRsyncBytes(stats: string): number | undefined {
  const m = /Total bytes sent:\s*([\d,.]+)/.exec(stats);
  return m ? Number(m[1].replace(/[,.]/g, "")) : undefined;
}

/** "Number of regular files transferred: 1,234" from rsync --stats. */
export function parseRsyncFiles(stats: string): number | undefined {
  const m = /Number of regular files transferred:\s*([\d,.]+)/.exec(stats);
  return m ? Number(m[1].replace(/[,.]/g, "")) : undefined;
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
  readonly stats = { commands: 0, bytesUploaded: 0, connections: 0, sessions: 0 };
  readonly stopped: string[] = [];
  private probed?: HostFacts;
  private rsync?: boolean;

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
    const r = await this.stoppable(proc, cmd.what ?? cmd.op, opts.signal);
    const result = { code: r.exitCode ?? 1, stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? "") };
    return checkResult(result, this.target, cmd, opts);
  }

  /** Waits for `proc`; an abort stops its whole group (TERM, KILL after 5 s) and notes `what` as stopped. */
  private async stoppable<R>(proc: Promise<R> & { pid?: number }, what: string, signal?: AbortSignal): Promise<R> {
    const stop = () => {
      killGroup(proc.pid, "SIGTERM");
      this.stopped.push(what);
      setTimeout(() => killGroup(proc.pid, "SIGKILL"), 5000).unref();
    };
    signal?.addEventListener("abort", stop, { once: true });
    return await proc.finally(() => signal?.removeEventListener("abort", stop));
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

  async upload(localPath: string, remotePath: string, opts: UploadOptions = {}): Promise<UploadResult> {
    const dest = expandHome(remotePath);
    await mkdir(dirname(dest), { recursive: true });
    await rm(dest, { recursive: true, force: true });
    const isDir = (await stat(localPath)).isDirectory();
    let sent: UploadResult | undefined;
    // With an earlier version of a directory at hand, rsync hard-links what did not change.
    if (isDir && opts.linkDest?.length && (this.rsync ??= (await execa("rsync", ["--version"], { reject: false })).exitCode === 0)) {
      // Like a stage's command: its own process group that dies with togo (even after kill -9)
      // and that an interrupt stops whole.
      const rsync = ["rsync", ...localRsyncArgs(localPath, dest, true, opts.linkDest)].map(q).join(" ");
      const proc = execa("sh", ["-c", trackedScript(rsync, { watch: process.pid })], { reject: false, all: true, detached: true });
      const r = await this.stoppable(proc, "the upload (rsync)", opts.signal);
      if (opts.signal?.aborted) throw new OperationError(`copying ${localPath} to ${dest} was interrupted`);
      if (r.exitCode !== 0) throw new OperationError(`copying ${localPath} to ${dest} with rsync failed (exit ${r.exitCode}):\n${String(r.all ?? "").trim().split("\n").slice(-6).join("\n")}`);
      const [bytes, files] = [parseRsyncBytes(String(r.all ?? "")), parseRsyncFiles(String(r.all ?? ""))];
      if (bytes !== undefined && files !== undefined) sent = { bytes, files, linked: true };
    } else {
      await cp(localPath, dest, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
    }
    sent ??= await treeSize(localPath);
    this.stats.bytesUploaded += sent.bytes;
    return sent;
  }

  async reach(port: number): Promise<string> {
    return `http://127.0.0.1:${port}`;
  }

  async close(): Promise<void> {}
}
