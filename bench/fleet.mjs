// A fleet deploy: 1 host against 10 hosts (`deploy.hosts`), the same app, the same kind of deploy.
// Each host is a network namespace of its own (a veth pair on 10.232.y.0/24 made here, no route
// out) running its own sshd on port 22, in a mount namespace where the deploy user's home is a
// directory of that host: ten hosts with their own address, loopback (app_port), host key and
// app_dir, sharing this machine's kernel, CPUs and binaries. (systemd-nspawn hosts, as the
// integration tests use, cost about 64 MiB and a boot each: ten of them on two cores would measure
// the containers more than the deploy.) One deploy user and key for the fleet, one known_hosts.
//
// Measured: `togo deploy --version N` of a changed artifact (upload, install, verify, switch,
// record, prune on every host), through the built CLI; 3 hosts as well, to see the slope, with `healthcheck.settle: 0` (the settle
// window is waiting on purpose, the same for any number of hosts). The 1-host and 10-host deploys
// alternate run by run. Target: 10 hosts ≤ 1.5× the time of one.
//
// The hosts' work (sshd sessions, remote scripts, the app's candidate and restart) runs on the same
// CPUs as togo here, unlike on a real fleet. So the CPU time of each side is measured too, from two
// cgroups (cgroup2 `cpu.stat`): the client (togo and its ssh processes) and the hosts (every sshd
// and what its sessions start).
// BENCH_APP=c ships a tiny C server (compiled here with cc, the version baked in) instead of
// examples/hello's node app: a node boot costs each host about 0.1 CPU-seconds, twice a deploy (the
// candidate, then the restart), which on this machine's two shared cores is the hosts' work more
// than togo's; the C app starts in about a millisecond, so what is left is togo and its remote work.
// BENCH_RUNS (default 5), BENCH_HOSTS (default 10); BENCH_NODE_ARGS adds node flags to the deploys
// (e.g. `--cpu-prof --cpu-prof-dir=DIR`). Needs root (useradd, ip netns) and openssh-server.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { cpus } from "node:os";
import { BIN, ROOT, benchEnv, machine, median, report, tempDir } from "./lib.mjs";

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const HOSTS = Number(process.env.BENCH_HOSTS ?? 10);
const SUBNET = "10.232";
const APP = process.env.BENCH_APP === "c" ? "c" : "node";

/** A minimal HTTP/1.0-style server: every request gets 200 and `hello from <VERSION>`, then the connection closes. */
const C_SERVER = `#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(void) {
  const char *p = getenv("PORT");
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(p ? atoi(p) : 3000) };
  a.sin_addr.s_addr = inet_addr("127.0.0.1");
  if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 64)) { perror("listen"); return 1; }
  char req[4096], res[256];
  int n = snprintf(res, sizeof res, "HTTP/1.1 200 OK\\r\\nContent-Length: %zu\\r\\nConnection: close\\r\\n\\r\\nhello from %s\\n", strlen(VERSION) + 12, VERSION);
  for (;;) {
    int c = accept(s, 0, 0);
    if (c < 0) continue;
    if (read(c, req, sizeof req) > 0) write(c, res, n);
    close(c);
  }
}
`;

const sh = (file, args, opts = {}) => execFileSync(file, args, { encoding: "utf8", ...opts });

/** Two cgroup2 groups counting CPU time (no controller needed), or undefined where they cannot be made. */
function cpuGroups(id) {
  const root = existsSync("/sys/fs/cgroup/unified/cgroup.procs") ? "/sys/fs/cgroup/unified" : "/sys/fs/cgroup";
  const groups = { client: join(root, `togo-bench-fleet-${id}-client`), hosts: join(root, `togo-bench-fleet-${id}-hosts`) };
  try {
    for (const g of Object.values(groups)) mkdirSync(g);
    readFileSync(join(groups.client, "cpu.stat"), "utf8");
    return groups;
  } catch {
    for (const g of Object.values(groups)) rmSync(g, { recursive: false, force: true });
    return undefined;
  }
}
/** CPU seconds used in a group so far. */
const cpuSeconds = (group) => (group ? Number(/^usage_usec (\d+)$/m.exec(readFileSync(join(group, "cpu.stat"), "utf8"))?.[1] ?? 0) / 1e6 : 0);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** `n` sshd hosts, each in its own network and mount namespace; stop() removes everything by PID and name. */
async function startHosts(n) {
  const id = randomBytes(2).toString("hex");
  const dir = tempDir("togo-bench-fleet-");
  chmodSync(dir, 0o755); // sshd reads authorized_keys as the user
  const user = `togofleet${id}`;
  sh("useradd", ["-m", "-d", `/home/${user}`, "-s", "/bin/sh", user]);
  sh("usermod", ["-p", "*", user]);
  const uid = Number(sh("id", ["-u", user]).trim());
  sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "id")]);
  writeFileSync(join(dir, "authorized_keys"), readFileSync(join(dir, "id.pub")), { mode: 0o644 });
  writeFileSync(join(dir, "ssh_config"), "Host *\n  KexAlgorithms curve25519-sha256\n  LogLevel ERROR\n");
  mkdirSync("/run/sshd", { recursive: true });
  const hosts = [];
  const children = [];
  const cpu = cpuGroups(id);
  const stop = async () => {
    for (const c of children) c.kill("SIGTERM");
    const userPids = () => readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
      try {
        return statSync(`/proc/${p}`).uid === uid;
      } catch {
        return false;
      }
    });
    for (let i = 0; i < 40 && userPids().length; i++) {
      for (const p of userPids()) {
        try {
          process.kill(Number(p), "SIGKILL");
        } catch {}
      }
      await sleep(50);
    }
    for (const h of hosts) {
      spawnSync("ip", ["link", "del", h.veth]);
      spawnSync("ip", ["netns", "del", h.netns]);
    }
    spawnSync("userdel", ["-r", user], { stdio: "ignore" });
    rmSync(dir, { recursive: true, force: true });
    for (const g of Object.values(cpu ?? {})) {
      for (let i = 0; i < 100 && existsSync(g); i++) {
        try {
          rmdirSync(g);
        } catch {
          await sleep(50); // its last processes are exiting
        }
      }
    }
  };
  try {
    const used = sh("sh", ["-c", "ip -o -4 addr show; ip -4 route show"]);
    let y = 1;
    for (let i = 0; i < n; i++) {
      while (used.includes(`${SUBNET}.${y}.`)) y++;
      if (y > 254) throw new Error(`no free ${SUBNET}.y.0/24 left`);
      const h = { netns: `tgf${id}-${i}`, veth: `tgf${id}${i}h`, ip: `${SUBNET}.${y}.2`, dir: join(dir, `h${i}`) };
      y++;
      hosts.push(h);
      sh("ip", ["netns", "add", h.netns]);
      sh("ip", ["link", "add", h.veth, "type", "veth", "peer", "name", `tgf${id}${i}c`]);
      sh("ip", ["link", "set", `tgf${id}${i}c`, "netns", h.netns]);
      sh("ip", ["addr", "add", `${h.ip.replace(/\.2$/, ".1")}/24`, "dev", h.veth]);
      sh("ip", ["link", "set", h.veth, "up"]);
      sh("ip", ["-n", h.netns, "link", "set", "lo", "up"]);
      sh("ip", ["-n", h.netns, "addr", "add", `${h.ip}/24`, "dev", `tgf${id}${i}c`]);
      sh("ip", ["-n", h.netns, "link", "set", `tgf${id}${i}c`, "up"]);
      mkdirSync(join(h.dir, "home"), { recursive: true, mode: 0o700 });
      chownSync(join(h.dir, "home"), uid, uid);
      sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(h.dir, "host")]);
      const cfg = join(h.dir, "sshd_config");
      writeFileSync(
        cfg,
        `Port 22\nListenAddress ${h.ip}\nHostKey ${join(h.dir, "host")}\nPidFile ${join(h.dir, "pid")}\nAuthorizedKeysFile ${join(dir, "authorized_keys")}\n` +
          `PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nAllowUsers ${user}\nMaxStartups 100\nSubsystem sftp internal-sftp\n`,
      );
      h.hostKey = readFileSync(join(h.dir, "host.pub"), "utf8").split(" ").slice(0, 2).join(" ");
      // `ip netns exec` gives the command a mount namespace of its own: the home is this host's there.
      const child = spawn("ip", ["netns", "exec", h.netns, "sh", "-c", `mount --bind "$1" "$2" && exec /usr/sbin/sshd -D -e -f "$3"`, "sh", join(h.dir, "home"), `/home/${user}`, cfg], { stdio: "ignore" });
      children.push(child);
      if (cpu) writeFileSync(join(cpu.hosts, "cgroup.procs"), String(child.pid));
    }
    for (const h of hosts) {
      for (let i = 0; ; i++) {
        const up = await new Promise((resolve) => {
          const s = connect(22, h.ip);
          s.once("connect", () => (s.destroy(), resolve(true)));
          s.once("error", () => resolve(false));
        });
        if (up) break;
        if (i > 400) throw new Error(`sshd on ${h.ip} did not listen`);
        await sleep(25);
      }
    }
    writeFileSync(join(dir, "known_hosts"), hosts.map((h) => `${h.ip} ${h.hostKey}\n`).join(""));
    return { hosts, cpu, user, identityFile: join(dir, "id"), knownHosts: join(dir, "known_hosts"), sshConfig: join(dir, "ssh_config"), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function project(fleet, app, hostIps, appPort) {
  const dir = tempDir(`togo-bench-${app}-`);
  if (APP === "c") writeFileSync(join(dir, "server.c"), C_SERVER);
  else cpSync(join(ROOT, "examples", "hello", "server.js"), join(dir, "server.js"));
  const [binary, run] = APP === "c" ? ["server", "./server"] : ["server.js", "node server.js"];
  const where = hostIps.length === 1 ? `  host: ${hostIps[0]}\n` : `  hosts: [${hostIps.join(", ")}]\n`;
  writeFileSync(
    join(dir, "togo.yaml"),
    `app: ${app}\ndeploy:\n  provider: vps\n${where}  user: ${fleet.user}\n  identity_file: ${fleet.identityFile}\n  known_hosts: ${fleet.knownHosts}\n  ssh_config: ${fleet.sshConfig}\n` +
      `  binary: ${binary}\n  run: ${run}\n  app_port: ${appPort}\n  healthcheck: { path: /up, timeout: 20, interval: 0.05, settle: 0 }\n  options: { service: process }\n`,
  );
  return dir;
}

/** `togo deploy --json` of a changed artifact (in the client cgroup); wall seconds, CPU seconds of each side, the report. */
function deploy(cpu, dir, version) {
  if (APP === "c") {
    execFileSync("cc", ["-O2", "-o", join(dir, "server"), `-DVERSION="${version}"`, join(dir, "server.c")]);
  } else {
    const file = join(dir, "server.js");
    writeFileSync(file, `${readFileSync(file, "utf8").replace(/\n\/\/ build .*\n$/, "\n")}// build ${version}\n`);
  }
  const args = [...(process.env.BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean), BIN, "deploy", "--version", String(version), "--json"];
  const before = { client: cpuSeconds(cpu?.client), hosts: cpuSeconds(cpu?.hosts) };
  const start = process.hrtime.bigint();
  const r = cpu
    ? spawnSync("sh", ["-c", `echo $$ > "$0/cgroup.procs" && exec "$@"`, cpu.client, process.execPath, ...args], { cwd: dir, encoding: "utf8", env: benchEnv() })
    : spawnSync(process.execPath, args, { cwd: dir, encoding: "utf8", env: benchEnv() });
  const s = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`togo deploy in ${dir} failed (${r.status}):\n${r.stderr}`);
  return { s, client: cpuSeconds(cpu?.client) - before.client, hosts: cpuSeconds(cpu?.hosts) - before.hosts, raw: JSON.parse(r.stdout).raw, stderr: r.stderr };
}

/** The stage lines of a deploy (`✓ name  0.12s`), for where the time went. */
function stages(stderr) {
  const out = {};
  for (const m of stderr.matchAll(/^✓ (\w+)\s+([\d.]+)(ms|s)$/gm)) out[m[1]] = Number(m[2]) / (m[3] === "ms" ? 1000 : 1);
  return out;
}

const fleet = await startHosts(HOSTS);
const projects = [];
try {
  console.log(`machine: ${machine()}\ndate: ${new Date().toISOString()}\nhosts: ${HOSTS} network namespaces, sshd each; app: ${APP === "c" ? "a tiny C server (BENCH_APP=c)" : "examples/hello (node)"}`);
  const ips = fleet.hosts.map((h) => h.ip);
  const one = project(fleet, "one", ips.slice(0, 1), 3001);
  const few = project(fleet, "few", ips.slice(0, 3), 3003);
  const all = project(fleet, "all", ips, 3002);
  projects.push(one, few, all);
  // First deploys (make the layout, the first upload), not measured.
  for (const d of projects) deploy(fleet.cpu, d, 1);
  const r1 = [];
  const r3 = [];
  const rN = [];
  for (let i = 0; i < RUNS; i++) {
    r1.push(deploy(fleet.cpu, one, i + 2));
    r3.push(deploy(fleet.cpu, few, i + 2));
    const b = deploy(fleet.cpu, all, i + 2);
    if (b.raw.hosts.length !== HOSTS || b.raw.hosts.some((h) => !h.uploaded)) throw new Error(`the fleet deploy did not upload to all ${HOSTS} hosts: ${JSON.stringify(b.raw.hosts)}`);
    rN.push(b);
  }
  const times = (xs) => xs.map((x) => x.s);
  const m1 = median(times(r1));
  const m3 = median(times(r3));
  const mN = median(times(rN));
  const ratio = mN / m1;
  const list = (xs) => times(xs).map((x) => x.toFixed(2)).join(" ");
  report(`vps fleet: 1 host vs ${HOSTS} hosts (network namespaces, sshd each)`, [
    { name: `deploy of a changed artifact to 1 host (${list(r1)})`, median: m1, runs: RUNS },
    { name: `deploy of a changed artifact to 3 hosts (${list(r3)})`, median: m3, runs: RUNS, ratio: `${(m3 / m1).toFixed(2)}× one host` },
    { name: `deploy of a changed artifact to ${HOSTS} hosts (${list(rN)})`, median: mN, runs: RUNS, ratio: `${ratio.toFixed(2)}× one host`, target: "≤ 1.5× one host" },
  ]);
  const names = Object.keys(stages(rN[0].stderr));
  const stageMedians = (xs) => names.map((n) => `${n} ${median(xs.map((x) => stages(x.stderr)[n] ?? 0)).toFixed(2)}`).join(", ");
  const trips = (x) => x.raw.hosts.reduce((n, h) => n + (h.roundTrips ?? 0), 0);
  for (const [label, xs] of [["1 host", r1], ["3 hosts", r3], [`${HOSTS} hosts`, rN]]) {
    const cpu = fleet.cpu ? `; CPU client ${median(xs.map((x) => x.client)).toFixed(2)} s, hosts ${median(xs.map((x) => x.hosts)).toFixed(2)} s` : "";
    console.log(`${label}: ${trips(xs.at(-1))} remote commands${cpu}; stages (s): ${stageMedians(xs)}`);
  }
  if (fleet.cpu) {
    const total = median(rN.map((x) => x.client + x.hosts));
    console.log(`\n${HOSTS} hosts: ${total.toFixed(2)} CPU-seconds a deploy (both sides) on ${cpus().length} cores: at least ${(total / cpus().length).toFixed(2)} s here, ${(total / cpus().length / m1).toFixed(2)}× one host, before anything else this machine runs`);
  }
  if (ratio > 1.5) {
    console.log(`\nMISSED: ${HOSTS} hosts took ${ratio.toFixed(2)}× one host (target ≤ 1.5×)`);
    process.exitCode = 1;
  } else console.log("\nall targets met");
} finally {
  await fleet.stop();
  for (const d of projects) rmSync(d, { recursive: true, force: true });
}
