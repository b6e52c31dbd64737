// togo status vs `cdktf output`, and an unchanged `togo provision` vs `cdktf deploy`, on the same
// app deployed with the local driver. Medians of repeated runs; the ratio is the point.
import { cpSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { BIN, ROOT, freePort, machine, median, repeat, report, tempDir, timed } from "./lib.mjs";

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const cdktfCli = join(createRequire(import.meta.url).resolve("cdktf-cli/package.json"), "..", "bundle", "bin", "cdktf");

const dir = tempDir("togo-bench-local-");
const port = await freePort();
cpSync(join(ROOT, "examples", "hello", "server.js"), join(dir, "server.js"));
writeFileSync(join(dir, "togo.yaml"), `app: bench\ndeploy:\n  provider: local\n  binary: server.js\n  run: node server.js\n  app_port: ${port}\n`);
writeFileSync(join(dir, "cdktf.json"), JSON.stringify({ language: "typescript", app: `node ${BIN} synth`, output: "cdktf.out" }));
const togo = (...args) => timed(process.execPath, [BIN, ...args], { cwd: dir });
const cdktf = (...args) => timed(process.execPath, [cdktfCli, ...args], { cwd: dir });

try {
  console.log(`machine: ${machine()}\ndate: ${new Date().toISOString()}`);
  togo("provision", "--yes");
  togo("deploy", "--version", "1");

  const status = repeat(RUNS, () => togo("status"));
  const output = repeat(Math.max(5, Math.ceil(RUNS / 2)), () => cdktf("output", "bench-local", "--skip-synth"));
  const outputSynth = repeat(Math.max(5, Math.ceil(RUNS / 2)), () => cdktf("output", "bench-local"));
  const provision = repeat(RUNS, () => togo("provision", "--yes"));
  const cdktfDeploy = repeat(5, () => cdktf("deploy", "bench-local", "--auto-approve", "--skip-provider-lock"));

  const m = { status: median(status), output: median(output), outputSynth: median(outputSynth), provision: median(provision), cdktfDeploy: median(cdktfDeploy) };
  report("local driver: togo vs cdktf on the same deployed app", [
    { name: "togo status (outputs + process + HTTP probe)", median: m.status, runs: status.length, target: "≤ 0.3 s" },
    { name: "cdktf output --skip-synth", median: m.output, runs: output.length, ratio: `togo ${(m.output / m.status).toFixed(1)}× faster`, target: "≥ 20×" },
    { name: "cdktf output (synth, as it runs by default)", median: m.outputSynth, runs: outputSynth.length, ratio: `togo ${(m.outputSynth / m.status).toFixed(1)}× faster` },
    { name: "togo provision, unchanged spec", median: m.provision, runs: provision.length, target: "≤ 0.5 s" },
    { name: "cdktf deploy, unchanged", median: m.cdktfDeploy, runs: cdktfDeploy.length, ratio: `togo ${(m.cdktfDeploy / m.provision).toFixed(1)}× faster` },
  ]);
  const fails = [];
  if (m.status > 0.3) fails.push(`status median ${m.status.toFixed(3)} s > 0.3 s`);
  if (m.output / m.status < 20) fails.push(`status only ${(m.output / m.status).toFixed(1)}× faster than cdktf output`);
  if (m.provision > 0.5) fails.push(`unchanged provision median ${m.provision.toFixed(3)} s > 0.5 s`);
  console.log(fails.length ? `\nMISSED: ${fails.join("; ")}` : "\nall targets met");
} finally {
  try {
    togo("destroy", "--yes");
  } catch (e) {
    console.error(String(e));
  }
  rmSync(dir, { recursive: true, force: true });
}
