// The vps driver over a real sshd on loopback (a private sshd, a fresh user and key, as the tests
// do): a first deploy, then redeploys of the unchanged artifact. Reports wall time, remote
// commands, SSH connections and bytes uploaded (from `togo deploy --json`). Baseline: the same
// number of remote commands each over its own fresh SSH connection (no multiplexing), measured.
// Targets: redeploy ≤ 2 s and 0 artifact bytes re-sent, with `healthcheck.settle: 0` (this measures
// the shipping; the default 2 s settle window adds about 2 s to each of the two health checks).
// Needs root (useradd) and openssh-server.
import { spawn, spawnSync, execFileSync } from "node:child_process";
import { chmodSync, cpSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { BIN, ROOT, benchEnv, freePort, machine, median, report, tempDir } from "./lib.mjs";

const RUNS = Number(process.env.BENCH_RUNS ?? 7);

function sh(file, args, opts = {}) {
  return execFileSync(file, args, { encoding: "utf8", ...opts });
}

/** A private sshd on 127.0.0.1 with a fresh user; stop() ends it by PID and removes the user. */
async function startSshd() {
  const dir = tempDir("togo-bench-sshd-");
  chmodSync(dir, 0o755); // sshd reads authorized_keys as the user
  const user = `togobench${process.pid}`;
  sh("useradd", ["-m", "-d", `/home/${user}`, "-s", "/bin/sh", user]);
  sh("usermod", ["-p", "*", user]);
  const uid = Number(sh("id", ["-u", user]).trim());
  sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "host")]);
  sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "id")]);
  writeFileSync(join(dir, "authorized_keys"), readFileSync(join(dir, "id.pub")), { mode: 0o644 });
  const port = await freePort();
  const cfg = join(dir, "sshd_config");
  writeFileSync(
    cfg,
    `Port ${port}\nListenAddress 127.0.0.1\nHostKey ${join(dir, "host")}\nPidFile ${join(dir, "pid")}\nAuthorizedKeysFile ${join(dir, "authorized_keys")}\nPasswordAuthentication no\nUsePAM no\nStrictModes no\nAllowUsers ${user}\nSubsystem sftp internal-sftp\n`,
  );
  const hostKey = readFileSync(join(dir, "host.pub"), "utf8").split(" ").slice(0, 2).join(" ");
  writeFileSync(join(dir, "known_hosts"), `[127.0.0.1]:${port} ${hostKey}\n`);
  sh("mkdir", ["-p", "/run/sshd"]);
  const child = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", cfg], { stdio: "ignore" });
  for (let i = 0; i < 200; i++) {
    const up = await new Promise((resolve) => {
      const s = connect(port, "127.0.0.1");
      s.once("connect", () => (s.destroy(), resolve(true)));
      s.once("error", () => resolve(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  const userPids = () =>
    readdirSync("/proc")
      .filter((n) => /^\d+$/.test(n))
      .filter((n) => {
        try {
          return statSync(`/proc/${n}`).uid === uid;
        } catch {
          return false;
        }
      })
      .map(Number);
  return {
    port,
    user,
    dir,
    identityFile: join(dir, "id"),
    knownHosts: join(dir, "known_hosts"),
    async stop() {
      child.kill("SIGTERM");
      for (let i = 0; i < 20 && userPids().length; i++) {
        for (const p of userPids()) {
          try {
            process.kill(p, "SIGKILL");
          } catch {}
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      spawnSync("userdel", ["-r", user]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
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
