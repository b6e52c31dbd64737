// Test harness helpers: temp dirs, free ports, running the real togo CLI, stopping what a test started.
import { execa, type Result } from "execa";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, cpSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const BIN = join(ROOT, "bin", "togo.js");
export const EXAMPLE = join(ROOT, "examples", "hello");

/** A fresh temp dir; `cleanup()` removes every one made so far. */
const made: string[] = [];
export function tempDir(prefix = "togo-test-"): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}
export function cleanupTempDirs(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** The environment the CLI runs with in tests: no colours, no inherited togo/terraform settings. */
export function testEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    // CI too: togo warns about local state under CI, and a test says CI itself when it means it.
    if (v === undefined || k.startsWith("TOGO_") || k === "DEPLOY_PROVIDER" || k === "NODE_OPTIONS" || k === "CI") continue;
    env[k] = v;
  }
  return { ...env, NO_COLOR: "1", CHECKPOINT_DISABLE: "1", ...extra };
}

/** Runs the built togo CLI (bin/togo.js → dist/) as a user would. Never throws on a non-zero exit. */
export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function togo(args: string[], opts: { cwd: string; env?: Record<string, string>; input?: string; timeout?: number }): Promise<CliResult> {
  const r: Result = await execa(process.execPath, [BIN, ...args], {
    cwd: opts.cwd,
    env: testEnv(opts.env),
    extendEnv: false,
    reject: false,
    input: opts.input ?? "",
    timeout: opts.timeout ?? 300_000,
  });
  return { exitCode: r.exitCode ?? 1, stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? "") };
}

/** Writes files (path → content) under dir. */
export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [rel, content] of Object.entries(files)) {
    const p = join(dir, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, content);
  }
}

/** A copy of examples/hello in a temp dir with togo.yaml replaced by `yaml`. */
export function helloProject(yaml: string): string {
  const dir = tempDir("togo-hello-");
  cpSync(join(EXAMPLE, "server.js"), join(dir, "server.js"));
  writeFileSync(join(dir, "togo.yaml"), yaml);
  return dir;
}

/** Kills a process group started detached by togo's process manager, by its pid file. */
export async function killPidFile(pidFile: string): Promise<void> {
  try {
    const pid = Number((await import("node:fs")).readFileSync(pidFile, "utf8").trim());
    if (pid > 0) process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}
