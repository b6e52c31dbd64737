// The config fuzz test's cases (test/helpers/fuzz-cases.ts, the same seed), each run once through the
// built CLI, one after another, timed by wall clock: max / p99 / median per case against the 2 s
// target. The test bounds each case's CPU time (a busy machine makes wall time measure the machine);
// the wall time a user waits lives here. Baseline in the same run: `togo --help`, the CLI's start.
import { build } from "esbuild";
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { BIN, ROOT, benchEnv, machine, median, repeat, tempDir } from "./lib.mjs";

const TARGET_S = 2;
const work = tempDir("togo-bench-fuzz-");
// The generator is TypeScript: bundled with the esbuild the build already uses.
const gen = join(work, "fuzz-cases.mjs");
await build({ entryPoints: [join(ROOT, "test", "helpers", "fuzz-cases.ts")], bundle: true, platform: "node", format: "esm", outfile: gen, logLevel: "error" });
const { cases, DEFAULT_SEED } = await import(pathToFileURL(gen).href);
const seed = Number(process.env.TOGO_FUZZ_SEED ?? DEFAULT_SEED);
const all = cases(seed);
const server = readFileSync(join(ROOT, "examples", "hello", "server.js"));

/** Seconds one CLI run takes, and its exit code. */
function run(args, cwd) {
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, env: benchEnv(), encoding: "utf8" });
  return { s: Number(process.hrtime.bigint() - start) / 1e9, code: r.status };
}
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

try {
  console.log(`machine: ${machine()}\ndate: ${new Date().toISOString()}\nload average at start: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  const help = repeat(9, () => run(["--help"], work).s);
  const times = [];
  const wrong = [];
  all.forEach((c, i) => {
    const dir = join(work, `case-${i}`);
    const file = join(dir, "togo.yaml");
    spawnSync("mkdir", ["-p", dir]);
    writeFileSync(join(dir, "server.js"), server);
    writeFileSync(file, c.text);
    const r = run(["status", "-c", file], dir);
    times.push({ s: r.s, name: c.name });
    if (r.code !== 2) wrong.push(`#${i} ${c.name}: exit ${r.code}`);
    rmSync(dir, { recursive: true, force: true });
  });
  const s = times.map((t) => t.s);
  const slowest = [...times].sort((a, b) => b.s - a.s).slice(0, 3);
  const max = Math.max(...s);
  console.log(`load average at end: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  console.log(`\n## config fuzz, wall time per case (seed ${seed}, ${all.length} cases, serially)`);
  console.log("| measure | value | runs | target |");
  console.log("| --- | ---: | ---: | --- |");
  console.log(`| togo --help (baseline: the CLI's start) | ${median(help).toFixed(3)} s median | ${help.length} |  |`);
  console.log(`| case, median | ${median(s).toFixed(3)} s | ${s.length} |  |`);
  console.log(`| case, p99 | ${pct(s, 99).toFixed(3)} s | ${s.length} |  |`);
  console.log(`| case, max | ${max.toFixed(3)} s | ${s.length} | ≤ ${TARGET_S} s — ${max <= TARGET_S ? "met" : "MISSED"} |`);
  console.log(`slowest: ${slowest.map((t) => `${t.name.slice(0, 50)} ${t.s.toFixed(3)} s`).join("; ")}`);
  if (wrong.length) console.log(`not exit 2 (the test says why): ${wrong.join("; ")}`);
  process.exitCode = max <= TARGET_S && wrong.length === 0 ? 0 : 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
