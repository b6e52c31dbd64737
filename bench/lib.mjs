// Shared bench helpers: timing commands, medians, printing ratios. Plain JS (runs on the built CLI).
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir, cpus, totalmem } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { connect, createServer } from "node:net";

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

function sh(file, args, opts = {}) {
  return execFileSync(file, args, { encoding: "utf8", ...opts });
}

/**
 * A private sshd on 127.0.0.1 with a fresh user and key (as the tests make one, without jest);
 * stop() ends it by PID, kills the user's processes and removes the user with its home.
 * Needs root (useradd) and openssh-server.
 */
export async function startSshd() {
  const dir = tempDir("togo-bench-sshd-");
  chmodSync(dir, 0o755); // sshd reads authorized_keys as the user
  const user = `togobench${process.pid}`;
  const home = `/home/${user}`;
  sh("useradd", ["-m", "-d", home, "-s", "/bin/sh", user]);
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
    home,
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
