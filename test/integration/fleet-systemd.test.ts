// Fleets (issue 10) on THREE real systemd hosts (booted Debian bookworm containers, each on its own
// network namespace: test/helpers/systemd-hosts.ts), one togo.yaml with `deploy.hosts: [a, b, c]`,
// driven only through the built CLI. The hosts are set up as a fleet usually is: one deploy key in
// every host's authorized_keys and one known_hosts file holding every host's keys. Checked on the
// hosts themselves (the unit's process environment, what answers on app_port, the app's own log of
// its starts, stops and health probes, the deploy user's processes and cgroups):
//   - a deploy reaches all three; status/releases across the fleet and per host (--host);
//   - a release that fails its health check only on host 2: no host switches, no candidate is left
//     on any host, every lock is given back;
//   - `rolling: 1`: the hosts switch one after the other, in the listed order, and no two switches
//     overlap (from the app's own monotonic timestamps on the hosts, not from timing thresholds);
//   - a lock held on one host refuses the whole deploy before anything changes on any host;
//   - rollback across the fleet, logs --host.
// The same fleet branches with the recording fake transport: test/unit/deploy-pipeline.test.ts.
// Black box on purpose: nothing from src/ or drivers/.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, test } from "@jest/globals";
import { execa } from "execa";
import { cleanupTempDirs, helloProject, tempDir, togo, type CliResult } from "../helpers/index.js";
import { startSystemdHost, type ExecResult, type SystemdHost } from "../helpers/systemd-hosts.js";
import { hostChecks } from "../helpers/checks.js";

const APP = "fleet";
const UNIT = `togo-${APP}.service`;
const APP_DIR = `/home/deploy/apps/${APP}`;
const PORT = 3300;
/** A release refuses to be healthy on a host where /tmp/togo-refuse/<version> exists (made by root). */
const REFUSE = "/tmp/togo-refuse";

/**
 * The app: answers `hello from <version>`; /up is 503 where this host refuses the version. It logs
 * `event <start|up|stop> <port> <CLOCK_MONOTONIC ns>` to its stdout (logs/<version>.log): the
 * containers share the kernel's monotonic clock, so the hosts' events can be ordered against each other.
 */
const APP_JS = `const http = require("node:http");
const fs = require("node:fs");
const port = Number(process.env.PORT);
const version = process.env.TOGO_VERSION || "dev";
const refused = fs.existsSync(${JSON.stringify(REFUSE)} + "/" + version);
const event = (what) => console.log("event " + what + " " + port + " " + process.hrtime.bigint());
const server = http.createServer((req, res) => {
  if (req.url === "/up") {
    event("up");
    res.writeHead(refused ? 503 : 200);
    res.end(refused ? "refused on this host\\n" : "ok\\n");
    return;
  }
  res.writeHead(200);
  res.end("hello from " + version + "\\n");
});
server.listen(port, "127.0.0.1", () => event("start"));
for (const s of ["SIGTERM", "SIGINT"]) process.on(s, () => { event("stop"); server.close(() => process.exit(0)); });
`;

let hosts: SystemdHost[];
let dir: string;
let fleetKey: string;
let knownHosts: string;

const yaml = (o: { rolling?: number } = {}) => `app: ${APP}
deploy:
  provider: vps
  hosts: [${hosts.map((h) => h.ip).join(", ")}]
  user: deploy
  identity_file: ${fleetKey}
  known_hosts: ${knownHosts}
  ssh_config: ${hosts[0].sshConfig}
  binary: app.js
  run: node app.js
  app_port: ${PORT}
  app_dir: ~/apps/${APP}
${o.rolling !== undefined ? `  rolling: ${o.rolling}\n` : ""}  healthcheck: { path: /up, timeout: 20, interval: 0.1, settle: 1 }
  versions_to_keep: 5
  options: { service: systemd }
`;

const cli = (args: string[], timeout?: number) => togo(args, { cwd: dir, timeout });
const sh = async (h: SystemdHost, cmd: string) => (await h.exec(cmd)).stdout.trim();
const userctl = (h: SystemdHost, args: string) => h.exec(`runuser -u deploy -- env XDG_RUNTIME_DIR=/run/user/1000 systemctl --user ${args}`);
const hostName = (h: SystemdHost) => `deploy@${h.ip}:22`;

/** Every host's unit, journal, app dir and processes: what to look at when a step fails. */
async function diagnostics(): Promise<string> {
  const parts = await Promise.all(
    hosts.map(async (h, i) => {
      const r = await h
        .exec(
          [
            `echo "== systemctl --user status"`,
            `runuser -u deploy -- env XDG_RUNTIME_DIR=/run/user/1000 systemctl --user status --no-pager ${UNIT} 2>&1 | tail -n 12`,
            `echo "== ${APP_DIR}"; ls -la ${APP_DIR} 2>&1; echo "-- .versions"; cat ${APP_DIR}/.versions 2>&1; echo "-- .failed"; cat ${APP_DIR}/.failed 2>&1; echo "-- .lock"; cat ${APP_DIR}/.lock/info 2>&1`,
            `echo "== app logs"; for f in ${APP_DIR}/logs/*.log; do echo "-- $f"; grep -v ' up ' "$f" | tail -n 6; done 2>&1`,
            `echo "== deploy's processes"; ps -u deploy -o pid,pgid,stat,cmd 2>&1`,
          ].join("; "),
          { timeoutMs: 20_000 },
        )
        .catch((e: Error) => ({ code: 1, stdout: "", stderr: e.message }));
      return `=== host ${i + 1} (${h.ip})\n${r.stdout}${r.stderr}`;
    }),
  );
  return parts.join("\n");
}

const { fail, ok, check, eventually } = hostChecks(diagnostics, { label: "hosts" });

/** What answers on the host's app_port (the app listens on the host's 127.0.0.1 only). */
const served = async (h: SystemdHost) => /^hello from (\S+)$/.exec(await sh(h, `curl -s --max-time 2 http://127.0.0.1:${PORT}/`))?.[1];
const mainPid = async (h: SystemdHost) => Number((await userctl(h, `show -p MainPID --value ${UNIT}`)).stdout.trim());
/** TOGO_VERSION in the environment of the unit's main process. */
async function unitVersion(h: SystemdHost): Promise<string | undefined> {
  const pid = await mainPid(h);
  if (!(pid > 0)) return undefined;
  return /^TOGO_VERSION=(.*)$/m.exec(await sh(h, `tr '\\0' '\\n' < /proc/${pid}/environ`))?.[1];
}
/** Every host: the unit's process runs `version`, it answers on app_port, `current` names it. */
async function allServe(version: string, context: string): Promise<void> {
  for (const [i, h] of hosts.entries()) {
    const [unit, live, current, active] = await Promise.all([unitVersion(h), served(h), sh(h, `readlink ${APP_DIR}/current`), userctl(h, `is-active ${UNIT}`)]);
    await check(
      unit === version && live === version && current === `v${version}` && active.stdout.trim() === "active",
      `host ${i + 1} (${h.ip}) should run ${version} (${context}): unit runs ${unit}, ${live ?? "nothing"} answers, current is ${current}, the unit is ${active.stdout.trim()}`,
    );
  }
}

interface Proc {
  pid: number;
  cgroup: string;
  cmd: string;
}
/** The deploy user's processes on a host outside its user manager and the app's unit (a candidate, a leftover session). */
async function strays(h: SystemdHost): Promise<Proc[]> {
  const r = await h.exec(
    [
      `for d in /proc/[0-9]*; do`,
      `  [ "$(stat -c %u "$d" 2>/dev/null)" = 1000 ] || continue`,
      `  read -r l < "$d/stat" 2>/dev/null || continue`,
      `  set -- \${l##*")"}`,
      `  [ "$1" = Z ] && continue`,
      `  printf '%s\\t%s\\t%s\\n' "\${d#/proc/}" "$(cat "$d/cgroup" 2>/dev/null | tr '\\n' ' ')" "$(tr '\\0\\n\\t' '   ' < "$d/cmdline" 2>/dev/null)"`,
      `done`,
    ].join("\n"),
  );
  return r.stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const [pid, cgroup, cmd] = l.split("\t");
      return { pid: Number(pid), cgroup: cgroup.trim(), cmd: cmd.trim() };
    })
    .filter((p) => !p.cgroup.endsWith("/user@1000.service/init.scope") && !p.cgroup.endsWith(`/user@1000.service/app.slice/${UNIT}`));
}
async function noStrays(context: string): Promise<void> {
  for (const [i, h] of hosts.entries()) {
    await eventually(`no process of deploy outside ${UNIT} on host ${i + 1} (${context})`, () => strays(h), (l) => l.length === 0);
  }
}
async function noLocks(context: string): Promise<void> {
  for (const [i, h] of hosts.entries()) {
    await check((await sh(h, `test -e ${APP_DIR}/.lock && echo held || echo free`)) === "free", `the lock on host ${i + 1} was given back (${context})`);
  }
}

type StatusJson = { state?: string; version?: string; hosts?: { host: string; state: string; version: string | null; healthy: boolean }[] };
const parse = <T>(text: string): T | undefined => {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
};

/** The app's events on one host, from logs/<version>.log: on app_port, or on a spare port (a candidate being verified). */
async function events(h: SystemdHost, version: string, what: "start" | "up" | "stop", where: "app_port" | "spare" = "app_port"): Promise<bigint[]> {
  const log = await sh(h, `cat ${APP_DIR}/logs/${version}.log 2>/dev/null`);
  return log
    .split("\n")
    .map((l) => /^event (\w+) (\d+) (\d+)$/.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null && m[1] === what && (Number(m[2]) === PORT) === (where === "app_port"))
    .map((m) => BigInt(m[3]));
}

beforeAll(async () => {
  const started = await Promise.allSettled([startSystemdHost(), startSystemdHost(), startSystemdHost()]);
  hosts = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed) throw failed.reason;

  // One deploy key for the fleet, in every host's authorized_keys; one known_hosts with every host.
  const keys = tempDir("togo-fleet-keys-");
  fleetKey = join(keys, "id_ed25519");
  await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "togo-fleet", "-f", fleetKey]);
  for (const h of hosts) await ok(await h.exec(`cat >> /home/deploy/.ssh/authorized_keys`, { input: readFileSync(`${fleetKey}.pub`, "utf8") }), `authorizing the fleet key on ${h.ip}`);
  knownHosts = join(keys, "known_hosts");
  writeFileSync(knownHosts, hosts.map((h) => readFileSync(h.knownHosts, "utf8")).join(""));
  for (const h of hosts) await ok(await h.exec(`mkdir -p ${REFUSE} && chmod 755 ${REFUSE}`), `making ${REFUSE}`);

  dir = helloProject(yaml());
  writeFileSync(join(dir, "app.js"), APP_JS);
  writeFileSync(join(dir, "rolling.yaml"), yaml({ rolling: 1 }));
  // Provision bootstraps every host (lingering: a systemd deploy is refused without it).
  const p = await ok(await cli(["provision", "--yes"], 600_000), "togo provision --yes");
  await check(p.stdout.includes("provisioned") || p.stderr.includes("apply"), "provision applied the stack", p);
  for (const [i, h] of hosts.entries()) {
    await check((await sh(h, "loginctl show-user deploy -p Linger --value")) === "yes", `provision enabled lingering on host ${i + 1}`);
  }
}, 15 * 60_000);

afterAll(async () => {
  await Promise.all((hosts ?? []).map((h) => h.stop()));
  cleanupTempDirs();
}, 180_000);

test("a deploy reaches all three hosts: every unit runs the new release, status is ready with 3 hosts, releases per host", async () => {
  await ok(await cli(["deploy", "--version", "1"]), "togo deploy --version 1");
  await allServe("1", "after deploy 1");
  const d = await ok(await cli(["deploy", "--version", "2", "--json"]), "togo deploy --version 2 --json");
  await allServe("2", "after deploy 2");
  const report = parse<{ raw?: { hosts?: { host: string; previous?: string }[] } }>(d.stdout);
  await check(
    JSON.stringify(report?.raw?.hosts?.map((x) => [x.host, x.previous])) === JSON.stringify(hosts.map((h) => [h.ip, "1"])),
    `deploy --json reports every host with its previous release: ${JSON.stringify(report?.raw?.hosts)}`,
    d,
  );
  await noStrays("after deploy 2");
  await noLocks("after deploy 2");

  const st = await cli(["status", "--json"]);
  const s = parse<StatusJson>(st.stdout);
  await check(
    st.exitCode === 0 && s?.state === "ready" && s.version === "2" && s.hosts?.length === 3 &&
      hosts.every((h) => s.hosts!.some((x) => x.host === h.ip && x.state === "ready" && x.version === "2" && x.healthy)),
    "status --json: ready, version 2, three ready hosts",
    st,
  );

  type Release = { version: string; current: boolean; host?: string };
  const all = await ok(await cli(["releases", "--json"]), "togo releases --json");
  const list = parse<Release[]>(all.stdout) ?? [];
  for (const h of hosts) {
    const mine = list.filter((r) => r.host === h.ip).map((r) => `${r.version}${r.current ? "*" : ""}`);
    await check(JSON.stringify(mine) === JSON.stringify(["2*", "1"]), `releases --json lists 2 (current) and 1 for ${h.ip}: ${JSON.stringify(mine)}`, all);
    const one = await ok(await cli(["releases", "--json", "--host", h.ip]), `togo releases --json --host ${h.ip}`);
    const only = parse<Release[]>(one.stdout) ?? [];
    await check(JSON.stringify(only.map((r) => [r.version, r.current, r.host])) === JSON.stringify([["2", true, undefined], ["1", false, undefined]]), `releases --host ${h.ip}`, one);
  }
}, 300_000);

test("a release that fails its health check only on host 2: exit 1, all three keep serving the old release, no candidate left, locks given back", async () => {
  const [h1, h2, h3] = hosts;
  const pids = await Promise.all(hosts.map(mainPid));
  await ok(await h2.exec(`touch ${REFUSE}/3`), "making host 2 refuse release 3");
  try {
    const r = await cli(["deploy", "--version", "3"]);
    await check(r.exitCode === 1, "the deploy must exit 1", r);
    await check(r.stderr.includes(`release 3 failed its health check on ${hostName(h2)}`), "the message names host 2", r);
    await check(r.stderr.includes("2 keeps serving on every host (no host switched)"), "the message says the old release keeps serving everywhere", r);
    await check(!r.stderr.includes(hostName(h1) + ": ✗ verify") && !r.stderr.includes(hostName(h3) + ": ✗ verify"), "hosts 1 and 3 passed their verify", r);
    // The release really ran (and passed) on hosts 1 and 3 before the barrier held them back.
    for (const h of [h1, h3]) {
      await check((await events(h, "3", "up", "spare")).length > 0 && (await events(h, "3", "stop", "spare")).length === 1, `release 3 was verified on ${h.ip} and stopped`);
      await check((await events(h, "3", "start")).length === 0, `release 3 never started on ${h.ip}'s app_port`);
    }
    await check((await events(h2, "3", "up", "spare")).length > 0 && (await events(h2, "3", "start")).length === 0, "release 3 was probed on host 2 and never started on its app_port");
  } finally {
    await h2.exec(`rm -f ${REFUSE}/3`);
  }
  await allServe("2", "after the failed deploy");
  const after = await Promise.all(hosts.map(mainPid));
  await check(JSON.stringify(after) === JSON.stringify(pids), `no unit was restarted: MainPIDs ${pids.join(",")} → ${after.join(",")}`);
  await noStrays("after the failed deploy");
  await noLocks("after the failed deploy");
  for (const [i, h] of hosts.entries()) {
    await check((await sh(h, `head -n 1 ${APP_DIR}/.failed`)) === "3", `release 3 is recorded as failed on host ${i + 1}`);
    await check((await sh(h, `head -n 1 ${APP_DIR}/.versions`)) === "2", `.versions still starts with 2 on host ${i + 1}`);
  }
  const st = await cli(["status", "--json"]);
  await check(st.exitCode === 0 && parse<StatusJson>(st.stdout)?.version === "2", "status: ready, 2", st);
}, 300_000);

test("rolling: 1 switches the hosts one after the other, in order; no two switches overlap", async () => {
  const r = await ok(await cli(["deploy", "-c", "rolling.yaml", "--version", "4"]), "togo deploy --version 4 (rolling: 1)");
  await allServe("4", "after the rolling deploy");
  for (const [i, h] of hosts.entries()) await check(r.stderr.includes(`batch ${i + 1} of 3: ${hostName(h)}`), `batch ${i + 1} is ${h.ip}`, r);
  // A host's switch begins when its old release stops on app_port and ends with the last health
  // probe of the new one there (the settle window); both are on the host, on one clock.
  const spans: { begin: bigint; end: bigint }[] = [];
  for (const [i, h] of hosts.entries()) {
    const stops = await events(h, "2", "stop");
    const ups = await events(h, "4", "up");
    const starts = await events(h, "4", "start");
    await check(stops.length === 1 && starts.length === 1 && ups.length > 0, `host ${i + 1}: one stop of 2 and one start of 4 on app_port, and probes (stops ${stops.length}, starts ${starts.length}, probes ${ups.length})`);
    const span = { begin: stops[0], end: ups.reduce((a, b) => (b > a ? b : a)) };
    await check(span.begin < starts[0] && starts[0] < span.end, `host ${i + 1}: 2 stopped, then 4 started, then was probed`);
    spans.push(span);
  }
  for (let i = 1; i < spans.length; i++) {
    const gap = Number(spans[i].begin - spans[i - 1].end) / 1e6;
    await check(spans[i - 1].end < spans[i].begin, `host ${i + 1}'s switch began ${(-gap).toFixed(0)} ms before host ${i}'s ended`, r);
  }
  await noStrays("after the rolling deploy");
  await noLocks("after the rolling deploy");
}, 300_000);

test("a lock held on one host refuses the whole deploy before anything changes on any host", async () => {
  // The host whose lock is taken last (locks go in a fixed order): the others were locked and must be given back.
  const held = [...hosts].sort((a, b) => (hostName(a) < hostName(b) ? -1 : 1)).at(-1)!;
  const info = `holder=ops@laptop:4242:1700000000000 time=${new Date().toISOString()} version=hand app=${APP}`;
  await ok(await held.exec(`runuser -u deploy -- sh -c 'mkdir ${APP_DIR}/.lock && printf "%s\\n" "$1" > ${APP_DIR}/.lock/info' sh '${info}'`), "taking the lock by hand");
  // What must not change: every file and folder but the lock (and app_dir's own mtime, which the
  // other hosts' lock dirs touch), the unit's process and start time.
  const snapshot = (h: SystemdHost) =>
    h
      .exec(
        `cd ${APP_DIR} && find . -path ./.lock -prune -o ! -path . -printf '%p %y %s %T@ %l\\n' | sort; cat .env .versions .failed | md5sum; ` +
          `runuser -u deploy -- env XDG_RUNTIME_DIR=/run/user/1000 systemctl --user show -p MainPID -p NRestarts -p ActiveEnterTimestampMonotonic ${UNIT}`,
      )
      .then((x) => x.stdout);
  // A changed artifact: a deploy that got through would upload it.
  writeFileSync(join(dir, "app.js"), `${APP_JS}// changed\n`);
  try {
    const before = await Promise.all(hosts.map(snapshot));
    const r = await cli(["deploy", "--version", "5"]);
    await check(r.exitCode === 1, "the deploy must exit 1", r);
    await check(r.stderr.includes(`another deploy of ${APP} holds the lock on ${hostName(held)}: ${info}`), "the message names the host and the holder", r);
    const after = await Promise.all(hosts.map(snapshot));
    for (const [i, h] of hosts.entries()) {
      await check(after[i] === before[i], `nothing changed on host ${i + 1} (${h.ip}):\n--- before\n${before[i]}\n--- after\n${after[i]}`, r);
      await check((await sh(h, `test -e ${APP_DIR}/v5 && echo v5 || echo none`)) === "none", `no release folder 5 on host ${i + 1}`);
      await check((await sh(h, `ls -A ${APP_DIR}/.uploads | grep -c partial || true`)) === "0", `no upload begun on host ${i + 1}`);
      if (h !== held) await check((await sh(h, `test -e ${APP_DIR}/.lock && echo held || echo free`)) === "free", `the lock on host ${i + 1} was given back`);
    }
    await check((await sh(held, `cat ${APP_DIR}/.lock/info`)) === info, "the hand-held lock is untouched");
    await allServe("4", "after the refused deploy");
    await noStrays("after the refused deploy");
  } finally {
    await held.exec(`rm -rf ${APP_DIR}/.lock`);
    writeFileSync(join(dir, "app.js"), APP_JS);
  }
}, 300_000);

test("rollback across the fleet; status and logs of one host with --host", async () => {
  const r = await ok(await cli(["rollback"]), "togo rollback");
  await allServe("2", "after the rollback (3 failed, so the release before 4 is 2)");
  await check(!r.stderr.includes("✗"), "no host failed a rollback stage", r);
  await noStrays("after the rollback");
  await noLocks("after the rollback");
  const h2 = hosts[1];
  const st = await cli(["status", "--json", "--host", h2.ip]);
  const s = parse<StatusJson>(st.stdout);
  await check(st.exitCode === 0 && s?.state === "ready" && s.version === "2" && s.hosts === undefined, "status --host: one host, ready, 2, no hosts list", st);
  const logs = await ok(await cli(["logs", "--host", h2.ip, "-n", "50"]), `togo logs --host ${h2.ip}`);
  await check(/event start 3300 \d+/.test(logs.stdout), "logs --host shows the app's own lines", logs);
  const bad = await cli(["status", "--host", "10.0.0.9"]);
  await check(bad.exitCode === 2 && bad.stderr.includes("is not one of this app's hosts"), "an unknown --host is a usage error", bad);
}, 300_000);
