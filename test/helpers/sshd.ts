// A private OpenSSH server for integration tests: its own config,
// host key, a fresh unprivileged user with a fresh ed25519 key, listening on 127.0.0.1 on a free
// port. stop() ends what it started by PID (sshd, its sessions, the user's processes), deletes the
// user and removes its temp dir. Needs root (useradd) and openssh-server.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { freePort } from "./index.js";

export interface Sshd {
  port: number;
  pid: number;
  user: string;
  uid: number;
  home: string;
  /** Temp dir holding the config, keys and log. */
  dir: string;
  identityFile: string;
  knownHosts: string;
  /** An ssh_config (for `deploy.ssh_config`) with a fast key exchange. */
  sshConfig: string;
  /** `ssh-ed25519 AAAA…` of the server. */
  hostKey: string;
  logFile: string;
  /** The `deploy:` keys that reach this server (indented for togo.yaml), for the vps driver. */
  deployKeys: string;
  /** Connections sshd accepted so far (its `Accepted publickey` log lines). */
  accepted(): number;
  /** Kills every process of the server's live sessions (the way a dropped connection ends them). */
  killSessions(): number[];
  /** Processes of the server's live sessions (empty when no connection is open). */
  sessions(): number[];
  /** Processes owned by the test user. */
  userPids(): number[];
  stop(): Promise<void>;
}

export interface SshdOptions {
  /** Write the server's key into known_hosts (default true); false tests accept-new. */
  pinHostKey?: boolean;
}

function procTable(): { pid: number; ppid: number; uid: number }[] {
  const rows: { pid: number; ppid: number; uid: number }[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const uid = statSync(`/proc/${name}`).uid;
      rows.push({ pid: Number(name), ppid, uid });
    } catch {
      // exited meanwhile
    }
  }
  return rows;
}

function descendants(root: number): number[] {
  const table = procTable();
  const out: number[] = [];
  const walk = (pid: number) => {
    for (const r of table) if (r.ppid === pid) {
      out.push(r.pid);
      walk(r.pid);
    }
  };
  walk(root);
  return out;
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

async function waitListening(port: number, child: ChildProcess, log: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`sshd exited (${child.exitCode}):\n${readFileSync(log, "utf8")}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, "127.0.0.1");
      s.once("connect", () => (s.destroy(), resolve(true)));
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`sshd did not listen on 127.0.0.1:${port}`);
}

export async function startSshd(opts: SshdOptions = {}): Promise<Sshd> {
  const dir = mkdtempSync(join(tmpdir(), "togo-sshd-"));
  // sshd reads authorized_keys as the user: the dir must be traversable (private keys stay 0600).
  chmodSync(dir, 0o755);
  const user = `togo${randomBytes(4).toString("hex")}`;
  const home = `/home/${user}`;
  await execa("useradd", ["-m", "-d", home, "-s", "/bin/sh", user]);
  await execa("usermod", ["-p", "*", user]); // a locked account is refused with UsePAM no
  const uid = Number((await execa("id", ["-u", user])).stdout.trim());

  const hostKeyFile = join(dir, "host_ed25519");
  const identityFile = join(dir, "id_ed25519");
  await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "togo-test-host", "-f", hostKeyFile]);
  await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "togo-test-client", "-f", identityFile]);
  writeFileSync(join(dir, "authorized_keys"), readFileSync(`${identityFile}.pub`), { mode: 0o644 });
  const hostKey = readFileSync(`${hostKeyFile}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" ");

  const port = await freePort();
  const logFile = join(dir, "sshd.log");
  const config = join(dir, "sshd_config");
  writeFileSync(
    config,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKeyFile}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      `AllowUsers ${user}`,
      "LogLevel INFO",
      "Subsystem sftp internal-sftp",
      "",
    ].join("\n"),
  );
  const knownHosts = join(dir, "known_hosts");
  writeFileSync(knownHosts, opts.pinHostKey === false ? "" : `[127.0.0.1]:${port} ${hostKey}\n`);
  const sshConfig = join(dir, "ssh_config");
  writeFileSync(sshConfig, "Host *\n  KexAlgorithms curve25519-sha256\n  LogLevel ERROR\n");

  mkdirSync("/run/sshd", { recursive: true });
  await execa("/usr/sbin/sshd", ["-t", "-f", config]);
  const fd = openSync(logFile, "a");
  const child = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", config], { stdio: ["ignore", "ignore", fd] });
  closeSync(fd);
  await waitListening(port, child, logFile);
  const pid = child.pid!;

  const userPids = () => procTable().filter((r) => r.uid === uid).map((r) => r.pid);
  return {
    port,
    pid,
    user,
    uid,
    home,
    dir,
    identityFile,
    knownHosts,
    sshConfig,
    hostKey,
    logFile,
    deployKeys: [
      "  provider: vps",
      "  host: 127.0.0.1",
      `  port: ${port}`,
      `  user: ${user}`,
      `  identity_file: ${identityFile}`,
      `  known_hosts: ${knownHosts}`,
      `  ssh_config: ${sshConfig}`,
    ].join("\n"),
    accepted: () => (readFileSync(logFile, "utf8").match(/Accepted publickey for /g) ?? []).length,
    killSessions() {
      const pids = descendants(pid);
      for (const p of pids) kill(p, "SIGKILL");
      return pids;
    },
    userPids,
    sessions: () => descendants(pid),
    async stop() {
      for (const p of descendants(pid)) kill(p, "SIGKILL");
      kill(pid, "SIGTERM");
      // The user's own processes (apps the tests deployed, detached from any session).
      for (let i = 0; i < 20; i++) {
        const left = userPids();
        if (left.length === 0) break;
        for (const p of left) kill(p, "SIGKILL");
        await new Promise((r) => setTimeout(r, 50));
      }
      if (child.exitCode === null && child.signalCode === null) {
        let timer: NodeJS.Timeout | undefined;
        await new Promise((r) => (child.once("exit", r), (timer = setTimeout(r, 5000))));
        clearTimeout(timer);
      }
      await execa("userdel", ["-r", user], { reject: false });
      if (existsSync(home)) rmSync(home, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
