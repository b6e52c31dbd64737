// The vps driver over a real sshd on loopback (a private sshd, a fresh user and key, as the tests
// do): a first deploy, then redeploys of the unchanged artifact. Reports wall time, remote
// commands, SSH connections and bytes uploaded (from `togo deploy --json`). Baseline: the same
// number of remote commands each over its own fresh SSH connection (no multiplexing), measured.
// Targets: redeploy ≤ 2 s and 0 artifact bytes re-sent, with `healthcheck.settle: 0` (this measures
// the shipping; the default 2 s settle window adds about 2 s to each of the two health checks).
// Needs root (useradd) and openssh-server.
import { spawnSync, execFileSync } from "node:child_process";
import { cpSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BIN, ROOT, benchEnv, freePort, machine, median, report, startSshd, tempDir } from "./lib.mjs";

const RUNS = Number(process.env.BENCH_RUNS ?? 7);

function sh(file, args, opts = {}) {
  return execFileSync(file, args, { encoding: "utf8", ...opts });
}

function togoJson(cwd, args) {
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [BIN, ...args, "--json"], { cwd, encoding: "utf8", env: benchEnv() });
  const s = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`togo ${args.join(" ")} failed (${r.status}):\n${r.stderr}`);
  return { s, result: JSON.parse(r.stdout) };
}

const sshd = await startSshd();
const dir = tempDir("togo-bench-vps-");
try {
  console.log(`machine: ${machine()}\ndate: ${new Date().toISOString()}`);
  const appPort = await freePort();
  cpSync(join(ROOT, "examples", "hello", "server.js"), join(dir, "server.js"));
  writeFileSync(
    join(dir, "togo.yaml"),
    `app: bench\ndeploy:\n  provider: vps\n  host: 127.0.0.1\n  port: ${sshd.port}\n  user: ${sshd.user}\n  identity_file: ${sshd.identityFile}\n  known_hosts: ${sshd.knownHosts}\n  binary: server.js\n  run: node server.js\n  app_port: ${appPort}\n  healthcheck: { path: /up, timeout: 10, interval: 0.05, settle: 0 }\n  env: { GREETING: bench }\n`,
  );

  const first = togoJson(dir, ["deploy", "--version", "1"]);
  const redeploys = [];
  for (let i = 0; i < RUNS; i++) redeploys.push(togoJson(dir, ["deploy", "--version", "1"]));
  const re = redeploys.at(-1).result.raw;
  const commands = re.ssh.commands;

  // Baseline: the same number of remote commands, each over a fresh connection (no ControlMaster).
  const fresh = [];
  for (let i = 0; i < 3; i++) {
    const start = process.hrtime.bigint();
    for (let c = 0; c < commands; c++) {
      sh("ssh", ["-p", String(sshd.port), "-i", sshd.identityFile, "-o", "BatchMode=yes", "-o", `UserKnownHostsFile=${sshd.knownHosts}`, "-o", "StrictHostKeyChecking=yes", `${sshd.user}@127.0.0.1`, "true"]);
    }
    fresh.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  const m = { first: first.s, redeploy: median(redeploys.map((r) => r.s)), fresh: median(fresh) };
  report("vps driver over a loopback sshd", [
    { name: `first deploy (${first.result.raw.ssh.commands} remote commands, ${first.result.raw.ssh.connections} connection, ${first.result.raw.ssh.bytesUploaded} bytes uploaded)`, median: m.first, runs: 1 },
    {
      name: `redeploy, unchanged artifact (${commands} remote commands, ${re.ssh.connections} connection, ${re.ssh.bytesUploaded} bytes uploaded)`,
      median: m.redeploy,
      runs: redeploys.length,
      target: "≤ 2 s, 0 bytes",
    },
    { name: `baseline: ${commands} remote commands, one fresh ssh connection each`, median: m.fresh, runs: fresh.length, ratio: `${(m.fresh / m.redeploy).toFixed(1)}× the whole multiplexed redeploy` },
  ]);
  const fails = [];
  if (m.redeploy > 2) fails.push(`redeploy median ${m.redeploy.toFixed(3)} s > 2 s`);
  if (re.ssh.bytesUploaded !== 0 || re.bytes !== 0) fails.push(`redeploy re-sent ${re.ssh.bytesUploaded} bytes`);
  if (redeploys.some((r) => r.result.raw.ssh.connections !== 1)) fails.push("a deploy opened more than one SSH connection");
  console.log(fails.length ? `\nMISSED: ${fails.join("; ")}` : "\nall targets met");
  if (fails.length) process.exitCode = 1;
} finally {
  await sshd.stop();
  rmSync(dir, { recursive: true, force: true });
}
