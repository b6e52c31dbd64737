// togo dev's `sync` reloader over a real sshd on loopback: change-to-served latency, i.e. from the
// write of an edited file to the first response carrying the new body through the local forward on
// dev.port (the watcher, rsync over the one SSH connection, the copy's restart, its health check).
// Median of 15 edits; target ≤ 1 s. Baseline: shipping the same edit with `togo deploy` (a new
// release), the way to see a change on the host without togo dev.
// The manager is driven in-process (bundled from src/ with esbuild), exactly as `togo dev --type sync` runs it.
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { get } from "node:http";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { spawnSync } from "node:child_process";
import { BIN, ROOT, benchEnv, freePort, machine, median, report, startSshd, tempDir } from "./lib.mjs";

const EDITS = 15;
const DEPLOYS = 3;

function body(url) {
  return new Promise((resolve) => {
    const req = get(url, (res) => {
      let b = "";
      res.on("data", (d) => (b += d));
      res.on("end", () => resolve(b));
    });
    req.on("error", () => resolve(""));
  });
}

async function servedWithin(url, want, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await body(url)) === want) return;
    if (Date.now() > deadline) throw new Error(`${url} did not serve ${JSON.stringify(want)} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const server = (greeting) => readFileSync(join(ROOT, "examples", "hello", "server.js"), "utf8").replace("${greeting} from ${version}", `${greeting} from \${version}`);

const outDir = join(ROOT, ".bench");
mkdirSync(outDir, { recursive: true });
const bundle = join(outDir, "dev-sync-manager.mjs");
const { build } = await import("esbuild");
await build({
  stdin: {
    contents: [
      `export { SyncReloader } from "./src/dev/sync.js";`,
      `export { parseConfig } from "./src/config/load.js";`,
      `export { createReporter } from "./src/core/log.js";`,
      `export { workspaceOf } from "./src/core/workspace.js";`,
    ].join("\n"),
    resolveDir: ROOT,
    loader: "ts",
  },
  bundle: true,
  platform: "node",
  format: "esm",
  packages: "external",
  outfile: bundle,
  logLevel: "error",
});
const { SyncReloader, parseConfig, createReporter, workspaceOf } = await import(pathToFileURL(bundle).href);

const sshd = await startSshd();
const dir = tempDir("togo-bench-dev-sync-");
try {
  console.log(`machine: ${machine()}\ndate: ${new Date().toISOString()}`);
  const appPort = await freePort();
  const devPort = await freePort();
  writeFileSync(join(dir, "server.js"), server("edit 0"));
  const yaml = `app: bench\ndeploy:\n  provider: vps\n  host: 127.0.0.1\n  port: ${sshd.port}\n  user: ${sshd.user}\n  identity_file: ${sshd.identityFile}\n  known_hosts: ${sshd.knownHosts}\n  binary: server.js\n  run: node server.js\n  app_dir: ~/apps/bench\n  app_port: ${appPort}\n  healthcheck: { path: /up, timeout: 10, interval: 0.05, settle: 0 }\ndev:\n  type: sync\n  port: ${devPort}\n`;
  writeFileSync(join(dir, "togo.yaml"), yaml);

  // Baseline: a deploy of each edit.
  const deploys = [];
  for (let i = 1; i <= DEPLOYS + 1; i++) {
    writeFileSync(join(dir, "server.js"), server(`deploy ${i}`));
    const start = process.hrtime.bigint();
    const r = spawnSync(process.execPath, [BIN, "deploy", "--version", String(i)], { cwd: dir, encoding: "utf8", env: benchEnv() });
    if (r.status !== 0) throw new Error(`togo deploy failed (${r.status}):\n${r.stderr}`);
    await servedWithin(`http://127.0.0.1:${appPort}/`, `deploy ${i} from ${i}\n`);
    if (i > 1) deploys.push(Number(process.hrtime.bigint() - start) / 1e9); // the first one lays the host out
  }

  writeFileSync(join(dir, "server.js"), server("edit 0"));
  const spec = parseConfig(yaml, join(dir, "togo.yaml"), {});
  const out = [];
  const config = { spec, log: createReporter({ stream: { write: (s) => (out.push(s), true) }, progress: false, color: false }), stateFile: workspaceOf(spec).devStateFile, env: spec.env };
  const stop = new AbortController();
  const running = new SyncReloader().run(config, stop.signal);
  const url = `http://127.0.0.1:${devPort}/`;
  const edits = [];
  try {
    await servedWithin(url, "edit 0 from dev\n", 60_000);
    // Watching starts right after the first answer.
    for (let i = 0; i < 200 && !readFileSync(config.stateFile, "utf8").includes("watching"); i++) await new Promise((r) => setTimeout(r, 25));
    for (let i = 1; i <= EDITS; i++) {
      const start = process.hrtime.bigint();
      writeFileSync(join(dir, "server.js"), server(`edit ${i}`));
      await servedWithin(url, `edit ${i} from dev\n`);
      edits.push(Number(process.hrtime.bigint() - start) / 1e9);
      await new Promise((r) => setTimeout(r, 100)); // the reload's tail (state file) is not part of the next one
    }
  } catch (e) {
    console.error(out.join(""));
    throw e;
  } finally {
    stop.abort();
    await running;
  }
  const m = { edit: median(edits), deploy: median(deploys) };
  report("togo dev --type sync over a loopback sshd", [
    { name: `edit → new body through dev.port (watch, rsync, restart, health check); min ${Math.min(...edits).toFixed(3)} s, max ${Math.max(...edits).toFixed(3)} s`, median: m.edit, runs: edits.length, target: "≤ 1 s" },
    { name: "baseline: togo deploy of the edit (new release) until it serves", median: m.deploy, runs: deploys.length, ratio: `sync ${(m.deploy / m.edit).toFixed(1)}× faster` },
  ]);
  const fails = [];
  if (m.edit > 1) fails.push(`edit-to-served median ${m.edit.toFixed(3)} s > 1 s`);
  console.log(fails.length ? `\nMISSED: ${fails.join("; ")}` : "\nall targets met");
  if (fails.length) process.exitCode = 1;
} finally {
  await sshd.stop();
  rmSync(dir, { recursive: true, force: true });
}
