// Shared bench helpers: timing commands, medians, printing ratios. Plain JS (runs on the built CLI).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir, cpus, totalmem } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createServer } from "node:net";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const BIN = join(ROOT, "bin", "togo.js");

export function tempDir(prefix) {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export const benchEnv = (extra = {}) => {
  const env = { ...process.env, NO_COLOR: "1", CHECKPOINT_DISABLE: "1", CI: "1", ...extra };
  delete env.NODE_OPTIONS;
  // A CLI config that does not exist only makes terraform warn on every run.
  if (env.TF_CLI_CONFIG_FILE && !existsSync(env.TF_CLI_CONFIG_FILE)) delete env.TF_CLI_CONFIG_FILE;
  return env;
};

/** Runs a command, throws with its output if it fails; returns seconds taken. */
export function timed(file, args, opts) {
  const start = process.hrtime.bigint();
  const r = spawnSync(file, args, { encoding: "utf8", env: benchEnv(), ...opts });
  const s = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`${file} ${args.join(" ")} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return s;
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export function repeat(n, fn) {
  return Array.from({ length: n }, () => fn());
}

export function machine() {
  const node = process.version;
  let tf = "";
  try {
    tf = execFileSync("terraform", ["version"], { encoding: "utf8", env: benchEnv(), stdio: ["ignore", "pipe", "ignore"] }).split("\n")[0];
  } catch {
    tf = "terraform: not found";
  }
  return `${cpus().length}× ${cpus()[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${node}, ${tf}`;
}

export function report(title, rows) {
  console.log(`\n## ${title}`);
  console.log("| measure | median | runs | ratio | target |");
  console.log("| --- | ---: | ---: | ---: | --- |");
  for (const r of rows) console.log(`| ${r.name} | ${r.median.toFixed(3)} s | ${r.runs} | ${r.ratio ?? ""} | ${r.target ?? ""} |`);
}
