// Real systemd hosts for integration tests: a Debian bookworm container whose PID 1 is systemd
// (systemd-nspawn), on a network namespace of its own, reachable over SSH as `deploy` like a VPS.
//
// - The image is built once with debootstrap (systemd-hosts/build-rootfs.sh) and cached under
//   $XDG_CACHE_HOME/togo-test/systemd-hosts (or ~/.cache/…) as rootfs-<recipe hash>.tar.zst plus
//   its unpacked copy; the build runs under a lock so parallel jest workers build it only once.
// - Each host boots from an overlay (the cached image read-only + a per-instance upper layer in a
//   temp dir), with its own SSH host keys, client key, machine-id, netns + veth pair on a free
//   10.231.y.0/24 (no default route: the host reaches nothing but the test machine) and its own
//   cgroups. systemd-nspawn runs under systemd-hosts/supervise.sh, which boots it again after an
//   in-container reboot.
// - stop() powers the container off, then removes veth, netns, cgroups, the mount and temp dirs.
//   Hosts whose test process died without stop() are removed by the next startSystemdHost().
//
// Needs root, systemd-container (systemd-nspawn), zstd, iproute2, util-linux, openssh-client; and
// debootstrap plus the Debian mirror apt uses to build the image the first time.
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes, randomInt } from "node:crypto";
import {
  accessSync, chmodSync, chownSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync,
  statfsSync, unlinkSync, writeFileSync,
} from "node:fs";
import { homedir, tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";

const HERE = join(dirname(fileURLToPath(import.meta.url)), "systemd-hosts");
const BUILD_SCRIPT = join(HERE, "build-rootfs.sh");
const SUPERVISE = join(HERE, "supervise.sh");

/** What the image holds besides debootstrap's minbase. Part of the cache key. */
export const IMAGE_PACKAGES = [
  "systemd", "systemd-sysv", "dbus", "dbus-user-session", "libpam-systemd", "libnss-systemd",
  "openssh-server", "sudo", "curl", "ca-certificates", "rsync", "iproute2", "procps", "caddy",
  // the host's node binary is bound in read-only (same node as the tests); it needs these
  "libstdc++6", "libgcc-s1",
];

/** Hosts get 10.231.<y>.2, the test machine 10.231.<y>.1 on the other end of the pair. */
const SUBNET = "10.231";
/** Live hosts, so a later run can remove the ones whose test process died without stop(). */
const REGISTRY = "/run/togo-systemd-hosts";
const NET_LOCK = "/run/lock/togo-systemd-hosts.lock";

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface SystemdHost {
  /** Machine name, netns name and hostname. */
  name: string;
  ip: string;
  user: "deploy";
  /** Private key whose public half is in deploy's authorized_keys. */
  identityFile: string;
  /** The host's keys for `ip` (port 22). */
  knownHosts: string;
  /** An ssh_config for `deploy.ssh_config` (fast key exchange). */
  sshConfig: string;
  /** The `deploy:` keys that reach this host (indented for togo.yaml), for the vps driver. */
  deployKeys: string;
  /** Temp dir of this instance (overlay layers, console log, keys). */
  dir: string;
  timings: { imageMs: number; bootMs: number };
  /** Runs `sh -c cmd` as root inside the container (nsenter into its PID 1's namespaces). */
  exec(cmd: string, opts?: { input?: string; timeoutMs?: number }): Promise<ExecResult>;
  /** Runs cmd as deploy over SSH, as a user of the host would. */
  ssh(cmd: string, opts?: { input?: string; timeoutMs?: number }): Promise<ExecResult>;
  /** `systemctl reboot` inside, then waits until the host has booted again and answers SSH. */
  reboot(timeoutMs?: number): Promise<void>;
  /** Waits until systemd reports `running` and SSH answers. */
  waitBooted(timeoutMs?: number): Promise<void>;
  /** Everything the container printed on its console (all boots). */
  consoleLog(): string;
  /** Powers off and removes everything; safe to call twice, and after a failed start. */
  stop(): Promise<void>;
}

export interface SystemdHostOptions {
  /** Bind the node running the tests read-only at /usr/local/bin/node (default true). */
  hostNode?: boolean;
  bootTimeoutMs?: number;
}

/** What teardown needs; also written to the registry. */
interface Instance {
  name: string;
  dir: string;
  root: string;
  vethHost: string;
  cgroups: string[];
  owner: { pid: number; start: string };
}

// --- small utilities ----------------------------------------------------------------------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function onPath(cmd: string): boolean {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/sbin"];
  return dirs.some((d) => {
    try {
      accessSync(join(d, cmd), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Start time of a process (field 22 of /proc/<pid>/stat), to tell a pid from a reused one. */
function procStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return f[0] === "Z" ? undefined : f[19];
  } catch {
    return undefined;
  }
}

function alive(pid: number | undefined): boolean {
  return pid !== undefined && pid > 0 && procStart(pid) !== undefined;
}

function readPid(file: string): number | undefined {
  try {
    const n = Number(readFileSync(file, "utf8").trim());
    return n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

function tail(text: string, n = 40): string {
  return text.trimEnd().split("\n").slice(-n).join("\n");
}

// --- preflight and the image --------------------------------------------------------------

const INSTALL_HINT =
  "apt-get install systemd-container=$(dpkg-query -W -f='${Version}' systemd) debootstrap zstd " +
  "(systemd-container pinned to the installed systemd, else apt upgrades systemd itself)";

function preflight(needDebootstrap: boolean): void {
  if (process.getuid?.() !== 0) throw new Error("systemd test hosts need root (netns, overlay mounts, cgroups, systemd-nspawn)");
  const tools: [string, string][] = [
    ["systemd-nspawn", "systemd-container"], ["zstd", "zstd"], ["nsenter", "util-linux"], ["flock", "util-linux"],
    ["ip", "iproute2"], ["ssh", "openssh-client"], ["ssh-keygen", "openssh-client"],
  ];
  if (needDebootstrap) tools.push(["debootstrap", "debootstrap"]);
  const missing = tools.filter(([cmd]) => !onPath(cmd));
  if (missing.length > 0) {
    throw new Error(
      `systemd test hosts need ${missing.map(([c, p]) => `${c} (Debian package ${p})`).join(", ")}. ` +
        `The Debian packages are systemd-container and debootstrap (plus zstd); install them with: ${INSTALL_HINT}`,
    );
  }
}

export function cacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "togo-test", "systemd-hosts");
}

function recipeHash(): string {
  return createHash("sha256").update(readFileSync(BUILD_SCRIPT)).update("\0").update(IMAGE_PACKAGES.join(",")).digest("hex").slice(0, 16);
}

/** The unpacked image (built or unpacked on first use); returns its dir. */
export async function ensureImage(): Promise<string> {
  const cache = cacheDir();
  const image = join(cache, `rootfs-${recipeHash()}`);
  if (existsSync(join(image, ".ready"))) return image;
  const tarball = `${image}.tar.zst`;
  preflight(!existsSync(tarball));
  mkdirSync(cache, { recursive: true });
  if (!existsSync(tarball)) process.stderr.write(`systemd-hosts: building the test image once, or waiting for the process that is (debootstrap, about a minute): ${tarball}\n`);
  // flock: the kernel drops the lock if the holder dies, so a killed build never blocks the next.
  const r = await execa("flock", ["-w", "1800", join(cache, ".lock"), "bash", BUILD_SCRIPT, tarball, image], {
    env: { ...process.env, PACKAGES: IMAGE_PACKAGES.join(",") },
    reject: false,
    all: true,
    stdin: "ignore",
  });
  if (r.exitCode !== 0 || !existsSync(join(image, ".ready"))) {
    throw new Error(`building the systemd test image failed (exit ${r.exitCode}):\n${tail(String(r.all ?? ""))}`);
  }
  return image;
}

// --- cgroups ------------------------------------------------------------------------------

const CGROUP2_MAGIC = 0x63677270;
const CGROUP1_MAGIC = 0x27e0eb;

function fsType(path: string): number | undefined {
  try {
    return statfsSync(path).type;
  } catch {
    return undefined;
  }
}

/**
 * Hierarchies an instance needs a cgroup of its own in: the cgroup2 one (pure or the hybrid
 * `unified` mount) and, on hybrid hosts, the name=systemd v1 one, which nspawn also writes to.
 */
function cgroupRoots(): string[] {
  if (fsType("/sys/fs/cgroup") === CGROUP2_MAGIC) return ["/sys/fs/cgroup"];
  const roots: string[] = [];
  if (fsType("/sys/fs/cgroup/unified") === CGROUP2_MAGIC) roots.push("/sys/fs/cgroup/unified");
  if (fsType("/sys/fs/cgroup/systemd") === CGROUP1_MAGIC) roots.push("/sys/fs/cgroup/systemd");
  if (roots.length === 0) throw new Error("no cgroup2 or name=systemd hierarchy under /sys/fs/cgroup; systemd-nspawn cannot run here");
  return roots;
}

/** Every pid in a cgroup subtree. */
function cgroupPids(dir: string): number[] {
  const out: number[] = [];
  const walk = (d: string) => {
    try {
      for (const line of readFileSync(join(d, "cgroup.procs"), "utf8").split("\n")) if (line) out.push(Number(line));
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
    } catch {
      // removed meanwhile
    }
  };
  walk(dir);
  return out;
}

function rmdirTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmdirTree(join(dir, e.name));
  try {
    rmdirSync(dir);
  } catch {
    // still busy: reported by the caller's check
  }
}

/** The container's PID 1 as seen from here: the process of the instance whose innermost pid is 1. */
function containerInit(cgroup: string): number | undefined {
  for (const pid of cgroupPids(cgroup)) {
    try {
      const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("NSpid:"));
      const ids = line?.split(/\s+/).slice(1).filter(Boolean) ?? [];
      if (ids.length >= 2 && ids[ids.length - 1] === "1") return pid;
    } catch {
      // exited meanwhile
    }
  }
  return undefined;
}

// --- mounts and network ------------------------------------------------------------------------

function mounted(path: string): boolean {
  const esc = path.replace(/ /g, "\\040");
  return readFileSync("/proc/self/mounts", "utf8").split("\n").some((l) => l.split(" ")[1] === esc);
}

// Under a lock: the address check and the creation must not interleave with another worker's.
const NET_UP = `set -eu
name=$1 vh=$2 vc=$3 sub=$4 start=$5
used=$( { ip -o -4 addr show; ip -4 route show; } 2>/dev/null )
re=$(printf '%s' "$sub" | sed 's/\\./\\\\./g')
y=
for i in $(seq 0 253); do
  c=$(( (start + i) % 254 + 1 ))
  printf '%s\\n' "$used" | grep -Eq "(^| )$re\\.$c\\." || { y=$c; break; }
done
[ -n "$y" ] || { echo "no free $sub.y.0/24 left" >&2; exit 1; }
ip netns add "$name"
ip link add "$vh" type veth peer name "$vc"
ip link set "$vc" netns "$name"
ip addr add "$sub.$y.1/24" dev "$vh"
ip link set "$vh" up
ip -n "$name" link set lo up
ip -n "$name" addr add "$sub.$y.2/24" dev "$vc"
ip -n "$name" link set "$vc" up
echo "$y"
`;

// --- teardown (stop(), a failed start, and leftovers of dead test processes) ----------------------

async function teardown(inst: Instance): Promise<string[]> {
  const problems: string[] = [];
  const main = inst.cgroups[0];
  if (existsSync(inst.dir)) writeFileSync(join(inst.dir, "stopping"), "");
  // SIGTERM to nspawn = a clean poweroff of the container. Re-read the pid file: a reboot in
  // flight may start a new nspawn once before the supervisor sees the stopping file.
  const signalled = new Set<number>();
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; ) {
    const pid = readPid(join(inst.dir, "nspawn.pid"));
    if (pid && alive(pid) && !signalled.has(pid)) {
      signalled.add(pid);
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        // just exited
      }
    }
    if (!main || cgroupPids(main).length === 0) break;
    await sleep(50);
  }
  // Whatever is left (a hung poweroff, the supervisor): kill the whole subtree, then remove it. Retried:
  // a supervisor that joins its cgroup just now is killed on the next pass.
  for (const deadline = Date.now() + 10_000; inst.cgroups.some((cg) => existsSync(cg)) && Date.now() < deadline; ) {
    for (const cg of inst.cgroups) {
      if (!existsSync(cg)) continue;
      try {
        writeFileSync(join(cg, "cgroup.kill"), "1"); // cgroup2 (Linux >= 5.14)
      } catch {
        // v1 or an older kernel: the pids below
      }
      for (const pid of cgroupPids(cg)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone
        }
      }
      if (cgroupPids(cg).length === 0) rmdirTree(cg);
    }
    if (inst.cgroups.some((cg) => existsSync(cg))) await sleep(50);
  }
  for (const cg of inst.cgroups) {
    if (existsSync(cg)) problems.push(`cgroup ${cg} is still busy`);
    try {
      rmdirSync(dirname(cg)); // togo-hosts/, when no other instance uses it
    } catch {
      // in use by another instance
    }
  }
  await execa("ip", ["link", "del", inst.vethHost], { reject: false });
  if (existsSync(`/run/netns/${inst.name}`)) {
    const r = await execa("ip", ["netns", "del", inst.name], { reject: false });
    if (r.exitCode !== 0) problems.push(`ip netns del ${inst.name}: ${r.stderr}`);
  }
  for (let i = 0; i < 50 && mounted(inst.root); i++) {
    const r = await execa("umount", [inst.root], { reject: false });
    if (r.exitCode !== 0) await sleep(100);
  }
  if (mounted(inst.root)) await execa("umount", ["-l", inst.root], { reject: false });
  // nspawn leaves an empty propagation dir behind when /run is not a tmpfs.
  rmSync(`/run/systemd/nspawn/propagate/${inst.name}`, { recursive: true, force: true });
  if (!mounted(inst.root)) rmSync(inst.dir, { recursive: true, force: true });
  else problems.push(`${inst.root} is still mounted`);
  try {
    unlinkSync(join(REGISTRY, `${inst.name}.json`));
  } catch {
    // not registered yet, or already removed
  }
  return problems;
}

/** Removes hosts whose test process died without calling stop() (a killed jest run). */
async function reapStale(): Promise<void> {
  let names: string[];
  try {
    names = readdirSync(REGISTRY).filter((n) => n.endsWith(".json"));
  } catch {
    return;
  }
  for (const n of names) {
    try {
      const inst = JSON.parse(readFileSync(join(REGISTRY, n), "utf8")) as Instance;
      if (procStart(inst.owner.pid) === inst.owner.start) continue;
      await teardown(inst);
    } catch {
      // another worker is reaping it, or the file is half-written: leave it
    }
  }
}

// --- a host -----------------------------------------------------------------------------------

export async function startSystemdHost(opts: SystemdHostOptions = {}): Promise<SystemdHost> {
  preflight(false);
  const t0 = Date.now();
  const image = await ensureImage();
  const imageMs = Date.now() - t0;
  await reapStale();

  const id = randomBytes(3).toString("hex");
  const name = `togo-${id}`;
  const dir = mkdtempSync(join(tmpdir(), `togo-host-${id}-`));
  const root = join(dir, "root");
  const inst: Instance = {
    name,
    dir,
    root,
    vethHost: `tg${id}h`, // interface names are at most 15 characters
    cgroups: cgroupRoots().map((r) => join(r, "togo-hosts", name)),
    owner: { pid: process.pid, start: procStart(process.pid) ?? "" },
  };
  mkdirSync(REGISTRY, { recursive: true });
  writeFileSync(join(REGISTRY, `${name}.json`), JSON.stringify(inst));

  let supervisor: ChildProcess | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      const problems = await teardown(inst);
      if (supervisor && supervisor.exitCode === null && supervisor.signalCode === null) supervisor.kill("SIGKILL");
      if (problems.length > 0) throw new Error(`stopping ${name}: ${problems.join("; ")}`);
    })());
  const consoleLog = () => {
    try {
      return readFileSync(join(dir, "console.log"), "utf8");
    } catch {
      return "";
    }
  };

  try {
    // The image stays read-only below every instance; all writes land in this instance's upper dir.
    for (const d of ["upper", "work", "root"]) mkdirSync(join(dir, d));
    await execa("mount", ["-t", "overlay", name, "-o", `lowerdir=${image},upperdir=${join(dir, "upper")},workdir=${join(dir, "work")}`, root]);

    const net = await execa("flock", ["-w", "60", NET_LOCK, "sh", "-c", NET_UP, "net-up", name, inst.vethHost, `tg${id}c`, SUBNET, String(randomInt(254))], {
      reject: false,
    });
    if (net.exitCode !== 0) throw new Error(`setting up the network of ${name} failed: ${net.stderr}`);
    const ip = `${SUBNET}.${net.stdout.trim()}.2`;

    // Identity of this instance: machine-id, hostname, SSH host keys, deploy's authorized key.
    writeFileSync(join(root, "etc/machine-id"), `${randomBytes(16).toString("hex")}\n`);
    writeFileSync(join(root, "etc/hostname"), `${name}\n`);
    writeFileSync(join(root, "etc/hosts"), `127.0.0.1 localhost ${name}\n::1 localhost ip6-localhost ip6-loopback\n`);
    const knownHosts = join(dir, "known_hosts");
    const hostKeys: string[] = [];
    for (const type of ["ed25519", "ecdsa"]) {
      const key = join(root, `etc/ssh/ssh_host_${type}_key`);
      await execa("ssh-keygen", ["-q", "-t", type, "-N", "", "-C", `root@${name}`, "-f", key]);
      hostKeys.push(`${ip} ${readFileSync(`${key}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" ")}`);
    }
    writeFileSync(knownHosts, `${hostKeys.join("\n")}\n`);
    const identityFile = join(dir, "id_ed25519");
    await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `togo-test@${name}`, "-f", identityFile]);
    const authorized = join(root, "home/deploy/.ssh/authorized_keys");
    writeFileSync(authorized, readFileSync(`${identityFile}.pub`));
    chmodSync(authorized, 0o600);
    chownSync(authorized, 1000, 1000);
    const sshConfig = join(dir, "ssh_config");
    writeFileSync(sshConfig, "Host *\n  KexAlgorithms curve25519-sha256\n  LogLevel ERROR\n");

    for (const cg of inst.cgroups) mkdirSync(cg, { recursive: true });
    const nspawn = [
      "systemd-nspawn", "--boot", `--directory=${root}`, `--machine=${name}`,
      // no systemd-machined and no system bus on the test machine
      "--register=no", "--keep-unit",
      `--network-namespace-path=/run/netns/${name}`,
      "--resolv-conf=off", "--timezone=off", "--link-journal=no", "--console=read-only",
      ...(opts.hostNode !== false ? [`--bind-ro=${process.execPath}:/usr/local/bin/node`] : []),
    ];
    supervisor = spawn("bash", [SUPERVISE, dir, ...nspawn], {
      detached: true,
      stdio: "ignore",
      // unified hierarchy inside: a pure cgroup2 layout, as on a stock bookworm server
      env: { ...process.env, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: "1", TOGO_HOST_CGROUPS: inst.cgroups.join(" ") },
    });
    supervisor.on("error", () => undefined);
    supervisor.unref();

    const sshArgs = [
      "-F", sshConfig, "-i", identityFile, "-o", "IdentitiesOnly=yes", "-o", `UserKnownHostsFile=${knownHosts}`,
      "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
    ];
    const ssh = async (cmd: string, o: { input?: string; timeoutMs?: number } = {}): Promise<ExecResult> => {
      const r = await execa("ssh", [...sshArgs, `deploy@${ip}`, cmd], { reject: false, input: o.input ?? "", timeout: o.timeoutMs ?? 60_000 });
      return { code: r.exitCode ?? 255, stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? "") + (r.timedOut ? "\n(timed out)" : "") };
    };

    const initPid = () => containerInit(inst.cgroups[0]);
    const exec = async (cmd: string, o: { input?: string; timeoutMs?: number } = {}): Promise<ExecResult> => {
      const pid = initPid();
      if (!pid) return { code: 255, stdout: "", stderr: `${name} is not running` };
      const r = await execa(
        "nsenter",
        ["--target", String(pid), "--all", "--root", "--wd", "--", "/usr/bin/env", "-i",
          "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8", "TERM=dumb", "/bin/sh", "-c", cmd],
        { reject: false, input: o.input ?? "", timeout: o.timeoutMs ?? 60_000 },
      );
      return { code: r.exitCode ?? 255, stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? "") + (r.timedOut ? "\n(timed out)" : "") };
    };

    const bootError = (what: string) => new Error(`${name} (${ip}): ${what}; last console lines:\n${tail(consoleLog())}`);
    /** Polls fn until it returns true; fails early when the container is gone for good. */
    const until = async (what: string, deadline: number, fn: () => Promise<boolean> | boolean) => {
      for (;;) {
        if (await fn()) return;
        if (supervisor && (supervisor.exitCode !== null || supervisor.signalCode !== null)) throw bootError(`the container exited while waiting for ${what}`);
        if (Date.now() > deadline) throw bootError(`timed out waiting for ${what}`);
        await sleep(100);
      }
    };
    const waitBooted = async (timeoutMs = opts.bootTimeoutMs ?? 120_000) => {
      const deadline = Date.now() + timeoutMs;
      await until("the container's systemd to start", deadline, () => initPid() !== undefined);
      let state = "";
      await until("systemctl is-system-running --wait", deadline, async () => {
        const r = await exec("systemctl is-system-running --wait", { timeoutMs: Math.max(1000, deadline - Date.now()) });
        state = r.stdout.trim();
        return state === "running" || state === "degraded";
      });
      if (state === "degraded") {
        const failed = await exec("systemctl --failed --no-legend --plain; for u in $(systemctl --failed --no-legend --plain | cut -d' ' -f1); do journalctl -b -u \"$u\" --no-pager -n 15 -o cat; done");
        throw bootError(`booted degraded; failed units:\n${failed.stdout}`);
      }
      let last: ExecResult | undefined;
      await until("SSH as deploy", deadline, async () => (last = await ssh("true", { timeoutMs: 10_000 })).code === 0).catch((e: Error) => {
        throw new Error(`${e.message}\nlast ssh error: ${last?.stderr ?? ""}`);
      });
    };

    const reboot = async (timeoutMs = opts.bootTimeoutMs ?? 120_000) => {
      const deadline = Date.now() + timeoutMs;
      const old = readPid(join(dir, "nspawn.pid"));
      const r = await exec("systemctl reboot");
      if (r.code !== 0) throw new Error(`systemctl reboot in ${name} failed: ${r.stderr}`);
      await until("the container to go down for the reboot", deadline, () => !alive(old));
      await waitBooted(Math.max(1000, deadline - Date.now()));
    };

    const tBoot = Date.now();
    await waitBooted();
    const bootMs = Date.now() - tBoot;

    return {
      name, ip, user: "deploy", identityFile, knownHosts, sshConfig, dir,
      deployKeys: ["  provider: vps", `  host: ${ip}`, "  user: deploy", `  identity_file: ${identityFile}`, `  known_hosts: ${knownHosts}`, `  ssh_config: ${sshConfig}`].join("\n"),
      timings: { imageMs, bootMs },
      exec, ssh, reboot, waitBooted, consoleLog, stop,
    };
  } catch (err) {
    const log = consoleLog();
    await stop().catch(() => undefined);
    if (err instanceof Error && log && !err.message.includes("last console lines")) err.message += `\nlast console lines:\n${tail(log)}`;
    throw err;
  }
}
