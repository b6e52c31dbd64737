// togo status vs `npx cdktf output`, and an unchanged `togo provision` vs `npx cdktf deploy`, on the
// same app deployed with the local driver. Medians of repeated runs; the ratio is the point. The app
// lives under this checkout (.bench/, ignored by git) with a cdktf.json whose app is `npx togo synth`:
// exactly how a user's repo runs both tools.
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { BIN, ROOT, freePort, machine, median, repeat, report, timed } from "./lib.mjs";

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
// Another build of togo (e.g. the previous commit's bin/togo.js) timed in the same run, interleaved.
const BASELINE = process.env.BENCH_BASELINE;
const cdktfCli = join(createRequire(import.meta.url).resolve("cdktf-cli/package.json"), "..", "bundle", "bin", "cdktf");

mkdirSync(join(ROOT, ".bench"), { recursive: true });
const dir = mkdtempSync(join(ROOT, ".bench", "local-"));
const port = await freePort();
cpSync(join(ROOT, "examples", "hello", "server.js"), join(dir, "server.js"));
writeFileSync(join(dir, "togo.yaml"), `app: bench\ndeploy:\n  provider: local\n  binary: server.js\n  run: node server.js\n  app_port: ${port}\n`);
writeFileSync(join(dir, "cdktf.json"), JSON.stringify({ language: "typescript", app: "npx togo synth", output: "cdktf.out", projectId: "bench" }));
const togo = (...args) => timed(process.execPath, [BIN, ...args], { cwd: dir });
const before = (...args) => timed(process.execPath, [BASELINE, ...args], { cwd: dir });
/** Both builds, alternately, so a busy moment hits both alike. */
function interleaved(n, args) {
  const a = [];
  const b = [];
  for (let i = 0; i < n; i++) {
    a.push(togo(...args));
    b.push(before(...args));
  }
  return [a, b];
}
const cdktf = (...args) => timed(process.execPath, [cdktfCli, ...args], { cwd: dir });
const npxCdktf = (...args) => timed("npx", ["cdktf", ...args], { cwd: dir });

try {
  console.log(`machine: ${machine()}\ndate: ${new Date().toISOString()}`);
  togo("provision", "--yes");
  togo("deploy", "--version", "1");

  const status = repeat(RUNS, () => togo("status"));
  const npxOutput = repeat(5, () => npxCdktf("output", "bench-local"));
  const output = repeat(5, () => cdktf("output", "bench-local", "--skip-synth"));
  const provision = repeat(RUNS, () => togo("provision", "--yes"));
  const npxDeploy = repeat(5, () => npxCdktf("deploy", "bench-local", "--auto-approve", "--skip-provider-lock"));

  const m = { status: median(status), npxOutput: median(npxOutput), output: median(output), provision: median(provision), npxDeploy: median(npxDeploy) };
  if (BASELINE) {
    const [sNew, sOld] = interleaved(RUNS * 2, ["status"]);
    const [pNew, pOld] = interleaved(RUNS * 2, ["provision", "--yes"]);
    const r = (a, b) => `this build ${(median(b) / median(a)).toFixed(2)}× the speed of the baseline`;
    report(`this build vs ${BASELINE} (interleaved)`, [
      { name: "togo status, this build", median: median(sNew), runs: sNew.length, target: "not slower" },
      { name: "togo status, baseline build", median: median(sOld), runs: sOld.length, ratio: r(sNew, sOld) },
      { name: "unchanged provision, this build", median: median(pNew), runs: pNew.length, target: "not slower" },
      { name: "unchanged provision, baseline build", median: median(pOld), runs: pOld.length, ratio: r(pNew, pOld) },
    ]);
  }
  report("local driver: togo vs cdktf on the same deployed app", [
    { name: "togo status (outputs + process + HTTP probe)", median: m.status, runs: status.length, target: "≤ 0.3 s" },
    { name: "npx cdktf output", median: m.npxOutput, runs: npxOutput.length, ratio: `togo ${(m.npxOutput / m.status).toFixed(1)}× faster`, target: "≥ 20×" },
    { name: "cdktf output --skip-synth (cdktf-cli run directly, no npx)", median: m.output, runs: output.length, ratio: `togo ${(m.output / m.status).toFixed(1)}× faster` },
    { name: "togo provision, unchanged spec", median: m.provision, runs: provision.length, target: "≤ 0.5 s" },
    { name: "npx cdktf deploy, unchanged", median: m.npxDeploy, runs: npxDeploy.length, ratio: `togo ${(m.npxDeploy / m.provision).toFixed(1)}× faster` },
  ]);
  const fails = [];
  if (m.status > 0.3) fails.push(`status median ${m.status.toFixed(3)} s > 0.3 s`);
  if (m.npxOutput / m.status < 20) fails.push(`status only ${(m.npxOutput / m.status).toFixed(1)}× faster than npx cdktf output`);
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
