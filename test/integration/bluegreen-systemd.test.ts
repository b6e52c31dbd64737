// Blue-green deploys on a REAL systemd host (a booted Debian bookworm container, see
// test/helpers/systemd-hosts.ts) behind the host's Caddy, driven only through the built CLI:
// `strategy: auto` picks blue-green, each release runs as its own user unit togo-<app>-<port>.service,
// Caddy is pointed at it with a graceful reload and the old unit stops once its drain is over (the
// drain outlives togo's SSH session), rollback takes the same switch, a release that fails after the
// switch puts Caddy back, the live unit comes back after a reboot, and a move to `strategy: restart`
// leaves no per-port unit.
// Then the zero-downtime test: autocannon drives a fixed-rate load through Caddy while 10 deploys and
// 2 rollbacks run — 0 errors, 0 non-2xx, and a 10 s stream started before a deploy completes intact —
// and the same load during restart-style deploys records failures (the test can fail).
// Black box on purpose: nothing from src/ or drivers/.
import { readFileSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "@jest/globals";
import autocannon from "autocannon";
import { cleanupTempDirs, ROOT, tempDir, togo, type CliResult } from "../helpers/index.js";
import { startSystemdHost, type ExecResult, type SystemdHost } from "../helpers/systemd-hosts.js";
import { getWithHost, hostChecks } from "../helpers/checks.js";

const APP = "hello";
const DOMAIN = "hello.test";
const APP_DIR = `/home/deploy/apps/${APP}`;
const SITE = `/etc/caddy/togo.d/${APP}.caddy`;
const UNIT_DIR = "/home/deploy/.config/systemd/user";

let host: SystemdHost;
let dir: string;

const yaml = (o: { strategy?: string; drain?: number; env?: string; chunks?: number } = {}) => `app: ${APP}
deploy:
${host.deployKeys}
  domain: ${DOMAIN}
  binary: server.js
  run: node server.js
  app_port: 3000
  strategy: ${o.strategy ?? "auto"}
  drain: ${o.drain ?? 2}
  healthcheck: { path: /up, timeout: 30, interval: 0.2, settle: 1 }
  versions_to_keep: 30
  env:
    STREAM_CHUNKS: "${o.chunks ?? 20}"
    STREAM_EVERY_MS: "500"
${o.env ?? ""}  options:
    service: systemd
    https: false
`;

/** Writes a config beside togo.yaml and returns its name (for `-c`). */
function config(name: string, o: Parameters<typeof yaml>[0]): string {
  writeFileSync(join(dir, name), yaml(o));
  return name;
}

const userctl = (args: string) => host.exec(`runuser -u deploy -- env XDG_RUNTIME_DIR=/run/user/1000 systemctl --user ${args}`);
const sh = async (cmd: string) => (await host.exec(cmd)).stdout.trim();
const cli = (args: string[], timeout?: number) => togo(args, { cwd: dir, timeout });

/** What to look at when a step fails on the host: the units, their journal, the app logs, Caddy. */
async function diagnostics(): Promise<string> {
  const r = await host
    .exec(
      [
        `echo "== systemctl --user list-units"`,
        `runuser -u deploy -- env XDG_RUNTIME_DIR=/run/user/1000 systemctl --user list-units --all --no-pager 'togo-*' 2>&1`,
        `echo "== unit files"; ls -la ${UNIT_DIR} 2>&1`,
        `echo "== journalctl (uid 1000)"; journalctl --no-pager -n 40 _UID=1000 -o short-monotonic 2>&1`,
        `echo "== ${APP_DIR}/run"; ls -la ${APP_DIR}/run 2>&1; cat ${APP_DIR}/run/live.port 2>&1; readlink ${APP_DIR}/current`,
        `echo "== app logs"; tail -n 5 ${APP_DIR}/logs/*.log 2>&1`,
        `echo "== caddy"; journalctl --no-pager -n 15 -u caddy -o cat 2>&1; cat ${SITE} 2>&1`,
        `echo "== sessions"; loginctl list-sessions --no-legend 2>&1`,
      ].join("; "),
      { timeoutMs: 20_000 },
    )
    .catch((e: Error) => ({ code: 1, stdout: "", stderr: e.message }));
  return `${r.stdout}${r.stderr}\n== console (last lines)\n${host.consoleLog().trimEnd().split("\n").slice(-10).join("\n")}`;
}

const { fail, ok, check, eventually } = hostChecks(diagnostics, { label: "host", timeoutMs: 60_000, intervalMs: 200 });

/** GET `path` through the host's Caddy (port 80) as the app's domain. */
const viaCaddy = (path = "/") => getWithHost(host.ip, 80, path, DOMAIN, 5000);

const serves = async (version: string) => {
  const r = await viaCaddy();
  await check(r.status === 200 && r.body === `hello from ${version}\n`, `expected ${version} through Caddy, got ${r.status} ${JSON.stringify(r.body)}`);
};

/** The deploy user's togo units that are loaded (active, draining or failed), by name. */
const units = async () =>
  (await userctl("list-units --all --no-legend --plain 'togo-*'")).stdout
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[0])
    .map((f) => `${f[0]} ${f[2]}`)
    .sort();
const unitFiles = async () => (await sh(`ls ${UNIT_DIR} | grep '^togo-' || true`)).split("\n").filter(Boolean).sort();
const livePort = async () => Number(await sh(`cat ${APP_DIR}/run/live.port 2>/dev/null || echo 0`));
const current = async () => (await sh(`readlink ${APP_DIR}/current`)).replace(/^v/, "");
const slotUnit = (port: number) => `togo-${APP}-${port}.service`;

/** Once the drain is over: the live unit is the only togo unit left, loaded and on disk. */
async function onlyLive(context: string): Promise<number> {
  const port = await livePort();
  await check(port > 0, `run/live.port names no port (${context})`);
  await eventually(`only ${slotUnit(port)} loaded (${context})`, units, (u) => u.length === 1 && u[0] === `${slotUnit(port)} active`);
  await check(JSON.stringify(await unitFiles()) === JSON.stringify([slotUnit(port)]), `unit files: ${(await unitFiles()).join(", ")} (${context})`);
  await check((await sh(`cat ${SITE}`)).includes(`reverse_proxy 127.0.0.1:${port}`), `Caddy's site points at ${port} (${context})`);
  return port;
}

async function deploy(version: string, cfg = "togo.yaml"): Promise<CliResult> {
  return ok(await cli(["deploy", "-c", cfg, "--version", version]), `togo deploy -c ${cfg} --version ${version}`);
}

beforeAll(async () => {
  host = await startSystemdHost();
  dir = tempDir("togo-bluegreen-");
  writeFileSync(join(dir, "server.js"), readFileSync(join(ROOT, "test", "fixtures", "streamer.js")));
  writeFileSync(join(dir, "togo.yaml"), yaml());
  // The bootstrap enables lingering and hands Caddy's site directory to deploy.
  await ok(await cli(["provision", "--yes"], 300_000), "togo provision --yes");
}, 15 * 60_000);

afterAll(async () => {
  await host?.stop();
  cleanupTempDirs();
}, 120_000);

test("strategy auto on a systemd host with Caddy: blue-green, each release its own unit, only the live one left after the drain", async () => {
  const first = await deploy("1");
  await check(first.stderr.includes("strategy: blue-green (auto)"), "auto chose blue-green", first);
  await serves("1");
  const p1 = await onlyLive("after deploy 1");

  const second = await deploy("2");
  await check(second.stderr.includes("strategy: blue-green (auto)"), "auto chose blue-green", second);
  await serves("2");
  const p2 = await onlyLive("after deploy 2");
  await check(p2 !== p1, `deploy 2 runs on its own port (${p1} → ${p2})`);
  await check((await current()) === "2", "current is v2");

  // The live unit runs release 2 from its own folder, in its own cgroup.
  const pid = Number((await userctl(`show -p MainPID --value ${slotUnit(p2)}`)).stdout.trim());
  await check(pid > 0 && (await sh(`cat /proc/${pid}/comm`)) === "node", `MainPID ${pid} of ${slotUnit(p2)} is node`);
  await check((await sh(`cat /proc/${pid}/cgroup`)).includes(`/user@1000.service/app.slice/${slotUnit(p2)}`), "the app runs in its unit's cgroup");
  await check((await sh(`readlink /proc/${pid}/cwd`)) === `${APP_DIR}/v2`, "the unit runs from v2's folder");
  await check((await userctl(`is-enabled ${slotUnit(p2)}`)).stdout.trim() === "enabled", "the live unit is enabled (it comes back after a reboot)");

  const st = await ok(await cli(["status", "--json"]), "togo status --json");
  const s = JSON.parse(st.stdout);
  await check(s.state === "ready" && s.version === "2" && s.healthy === true, `status: ${st.stdout}`, st);
}, 240_000);

test("the drain outlives togo's SSH session; the live unit outlives every login (lingering)", async () => {
  const before = await livePort();
  // A drain long enough that it is still running when togo and its SSH session are gone.
  const r = await deploy("3", config("long-drain.yaml", { drain: 20 }));
  await serves("3");
  const live = await livePort();
  await eventually("deploy's SSH sessions to close", () => sh("loginctl list-sessions --no-legend | awk '$3 == \"deploy\"' | wc -l"), (n) => n === "0");
  const draining = await units();
  await check(draining.includes(`${slotUnit(before)} active`), `the old unit still drains once togo has logged out: ${draining.join(", ")}`, r);
  await check((await userctl(`is-enabled ${slotUnit(before)}`)).stdout.trim() !== "enabled", "the draining unit is disabled (it does not come back after a reboot)");
  // The drain is a timer of deploy's user manager, not a process of the (closed) SSH session.
  await check(draining.some((u) => u.startsWith(`togo-${APP}-drain-${before}-`) && u.endsWith(".timer active")), `a drain timer for ${before}: ${draining.join(", ")}`);
  await check(await onlyLive("after the 20 s drain").then((p) => p === live), "the live unit is the one that stays");
  await check((await sh("loginctl show-user deploy -p Linger --value")) === "yes", "lingering is on");
  await serves("3");
}, 240_000);

test("rollback: the previous release starts as its own unit beside the live one, Caddy switches to it, the other drains away", async () => {
  const before = await livePort();
  const r = await ok(await cli(["rollback"]), "togo rollback");
  await serves("2");
  const port = await onlyLive("after the rollback");
  await check(port !== before, `the rollback runs 2 on a port of its own (${before} → ${port})`, r);
  await check((await current()) === "2", "current is v2 after the rollback");
  const s = JSON.parse((await cli(["status", "--json"])).stdout);
  await check(s.state === "ready" && s.version === "2", `status after the rollback: ${JSON.stringify(s)}`);
  // And forward again.
  await deploy("4");
  await serves("4");
  await onlyLive("after deploy 4");
}, 240_000);

test("a release that fails its health check after the switch: Caddy is pointed back, its unit stops, the old one keeps serving", async () => {
  const before = await livePort();
  const siteBefore = await sh(`cat ${SITE}`);
  const r = await cli(["deploy", "-c", config("sick.yaml", { env: '    UNHEALTHY_WHEN_CURRENT: "1"\n' }), "--version", "5"]);
  await check(r.exitCode === 1, "a release unhealthy after the switch: expected exit 1", r);
  await check(r.stderr.includes("passed verification but failed on port") && r.stderr.includes("behind Caddy") && r.stderr.includes("switched back to 4"), "the message says what happened", r);
  await serves("4");
  await check((await sh(`cat ${SITE}`)) === siteBefore, "Caddy's site is the one before the deploy");
  await check((await livePort()) === before && (await current()) === "4", "live.port and current are back");
  await onlyLive("after the failed switch");
  const s = JSON.parse((await cli(["status", "--json"])).stdout);
  await check(s.state === "ready" && s.version === "4", `status after the failed switch: ${JSON.stringify(s)}`);
}, 240_000);

test("a reboot of the host: the live unit (enabled) comes back on its port and Caddy serves it with no action from togo", async () => {
  const port = await livePort();
  const pid = Number((await userctl(`show -p MainPID --value ${slotUnit(port)}`)).stdout.trim());
  await host.reboot();
  await eventually("4 to serve through Caddy after the reboot", viaCaddy, (r) => r.status === 200 && r.body === "hello from 4\n");
  await check(host.consoleLog().includes("[supervisor] nspawn exited rc=133"), "a real in-container reboot");
  const after = Number((await userctl(`show -p MainPID --value ${slotUnit(port)}`)).stdout.trim());
  await check(after > 0 && after !== pid, `${slotUnit(port)} runs again (MainPID ${pid} → ${after})`);
  await onlyLive("after the reboot");
  const s = JSON.parse((await cli(["status", "--json"])).stdout);
  await check(s.state === "ready" && s.version === "4", `status after the reboot: ${JSON.stringify(s)}`);
}, 240_000);

test("strategy restart after blue-green: every per-port unit stops, the app runs as togo-hello.service on app_port", async () => {
  const restart = config("restart.yaml", { strategy: "restart" });
  await deploy("6", restart);
  await serves("6");
  await eventually("only togo-hello.service loaded", units, (u) => u.length === 1 && u[0] === `togo-${APP}.service active`);
  await check(JSON.stringify(await unitFiles()) === JSON.stringify([`togo-${APP}.service`]), `unit files: ${(await unitFiles()).join(", ")}`);
  await check((await livePort()) === 0, "run/live.port is gone");
  await check((await sh(`cat ${SITE}`)).includes("reverse_proxy 127.0.0.1:3000"), "Caddy points at app_port");

  // Blue-green again: the restart-style unit drains like an instance (20 s) …
  await deploy("7", config("long-drain.yaml", { drain: 20 }));
  await serves("7");
  await check((await units()).some((u) => u.startsWith(`togo-${APP}-drain-app-`) && u.endsWith(".timer active")), `a drain timer for togo-hello.service: ${(await units()).join(", ")}`);
  // … and a move back to restart within that drain calls the drain off: nothing stops the unit later.
  await deploy("8", restart);
  await serves("8");
  await eventually("only togo-hello.service loaded, no drain pending", units, (u) => u.length === 1 && u[0] === `togo-${APP}.service active`);
  await check((await sh(`ls ${APP_DIR}/run`)).split("\n").every((f) => !f.startsWith("draining-")), `no drain marker left: ${await sh(`ls ${APP_DIR}/run`)}`);

  await deploy("9");
  await serves("9");
  await onlyLive("blue-green after restart");
}, 240_000);

// --- zero downtime ----------------------------------------------------------------------------------

/** Requests a second through Caddy while the deploys run (a fixed rate, whatever the latency), over this many keep-alive connections. */
const RATE = 100;
const LOAD_CONNECTIONS = 10;

interface LoadRun {
  result: autocannon.Result;
  /** Responses (status, latency in ms) and errors, tagged with the phase they fell in. */
  samples: { phase: string; status: number; ms: number }[];
  errors: { phase: string; error: string }[];
}

/**
 * autocannon at RATE req/s through the host's Caddy (bounded by `duration` and by stop()), with the
 * phase each response fell in, set by `phase.now`.
 */
function startLoad(phase: { now: string }): { stop: () => Promise<LoadRun>; responses: () => number } {
  const samples: LoadRun["samples"] = [];
  const errors: LoadRun["errors"] = [];
  let done!: Promise<autocannon.Result>;
  const instance = autocannon(
    { url: `http://${host.ip}:80/`, headers: { host: DOMAIN }, connections: LOAD_CONNECTIONS, overallRate: RATE, duration: 900, timeout: 20 },
    () => undefined,
  );
  done = new Promise((resolve, reject) => {
    instance.on("done", resolve);
    instance.on("error", reject);
  });
  instance.on("response", (_client, status, _bytes, ms) => samples.push({ phase: phase.now, status, ms }));
  instance.on("reqError", (e: Error) => errors.push({ phase: phase.now, error: String(e?.message ?? e) }));
  return {
    responses: () => samples.length,
    stop: async () => {
      instance.stop();
      return { result: await done, samples, errors };
    },
  };
}

interface StreamRun {
  status: number;
  body: string;
  complete: boolean;
}

/** GET /stream through Caddy; resolves `started` at the first chunk and `finished` at the end (or a cut). */
function startStream(): { started: Promise<string>; finished: Promise<StreamRun> } {
  let started!: (first: string) => void;
  const startedP = new Promise<string>((r) => (started = r));
  const finished = new Promise<StreamRun>((resolve) => {
    const req = request({ host: host.ip, port: 80, path: "/stream", headers: { host: DOMAIN } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        if (!body) started(d);
        body += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, complete: res.complete }));
      res.on("error", () => resolve({ status: res.statusCode ?? 0, body, complete: false }));
      res.on("aborted", () => resolve({ status: res.statusCode ?? 0, body, complete: false }));
    });
    req.on("error", (e) => {
      started(`error ${e.message}`);
      resolve({ status: 0, body: e.message, complete: false });
    });
    req.end();
  });
  return { started: startedP, finished };
}

const STREAM_CHUNKS = 20;
const intactStream = (version: string) => `${Array.from({ length: STREAM_CHUNKS }, (_, i) => `chunk ${i} ${version}\n`).join("")}end ${version}\n`;

/** What a load run saw, for the failure message and the log. */
const summary = (l: LoadRun) =>
  `${l.result.requests.total} requests, ${l.result["2xx"]} 2xx, ${l.result.non2xx} non-2xx, ${l.result.errors} errors (${l.result.timeouts} timeouts)` +
  (l.errors.length ? `; first errors: ${l.errors.slice(0, 3).map((e) => `${e.phase}: ${e.error}`).join("; ")}` : "") +
  (l.samples.some((s) => s.status >= 300) ? `; non-2xx: ${[...new Set(l.samples.filter((s) => s.status >= 300).map((s) => `${s.phase}: ${s.status}`))].slice(0, 5).join(", ")}` : "");

test("zero downtime: 10 blue-green deploys and 2 rollbacks under a fixed-rate load through Caddy: 0 errors but keep-alive resets at a reload, 0 non-2xx; a 10 s stream started before a deploy completes intact", async () => {
  const long = config("stream-drain.yaml", { drain: 15 }); // longer than the stream
  const phase = { now: "idle" };
  const load = startLoad(phase);
  await eventually("the load to get answers", async () => load.responses(), (n) => n >= RATE);
  let stream: { version: string; finished: Promise<StreamRun> } | undefined;
  let run: LoadRun;
  try {
    for (let i = 1; i <= 10; i++) {
      const version = `z${i}`;
      let cfg = "togo.yaml";
      if (i === 3) {
        // The stream starts on the live release, then the deploy switches away from it and drains it.
        const before = await current();
        const s = startStream();
        const first = await s.started;
        await check(first.startsWith(`chunk 0 ${before}`), `the stream started on ${before}: ${JSON.stringify(first)}`);
        stream = { version: before, finished: s.finished };
        cfg = long;
      }
      phase.now = `deploy ${version}`;
      const r = await deploy(version, cfg);
      await check(r.stderr.includes("strategy: blue-green (auto)"), `deploy ${version} was blue-green`, r);
      if (i === 4 || i === 8) {
        phase.now = `rollback after ${version}`;
        await ok(await cli(["rollback"]), `togo rollback after ${version}`);
      }
      phase.now = "idle";
    }
  } finally {
    run = await load.stop();
  }
  const s = await stream!.finished;
  await check(s.status === 200 && s.complete && s.body === intactStream(stream!.version), `the stream across deploy z3: ${s.status} complete=${s.complete} ${JSON.stringify(s.body)}`);
  // Caddy's graceful reload (the switch) closes idle keep-alive connections; a client writing its next
  // request on one in that instant is reset before any byte of an answer. Browsers and curl retry
  // such a request, autocannon does not (README, "one known gap"). Those resets are told apart, and
  // bounded: only during a switch, at most one per connection per switch. Anything else fails:
  // another error, a timeout, a non-2xx (an upstream down answers 502 through Caddy).
  const resets = run.errors.filter((e) => /ECONNRESET/.test(e.error));
  const perPhase = new Map<string, number>();
  for (const e of resets) perPhase.set(e.phase, (perPhase.get(e.phase) ?? 0) + 1);
  await check(
    run.result.errors - resets.length === 0 && run.result.timeouts === 0 && run.result.non2xx === 0 && run.result["2xx"] > 0,
    `blue-green under load: ${summary(run)}`,
  );
  await check(
    resets.every((e) => e.phase !== "idle") && [...perPhase.values()].every((n) => n <= LOAD_CONNECTIONS),
    `connection resets outside a switch, or more than one per connection in one: ${JSON.stringify(Object.fromEntries(perPhase))}`,
  );
  if (resets.length) console.log(`zero-downtime run: ${resets.length} keep-alive reset(s) at Caddy reloads: ${JSON.stringify(Object.fromEntries(perPhase))}`);
  await check(run.samples.some((x) => x.phase.startsWith("deploy")) && run.samples.some((x) => x.phase.startsWith("rollback")), "the load ran during the deploys and the rollbacks");
  await serves("z10");
  await onlyLive("after the zero-downtime run");
}, 15 * 60_000);

test("the same load during restart-style deploys records failures (the zero-downtime test can fail)", async () => {
  // Caddy's lb_try_duration (5 s) holds requests while nothing listens on app_port, so a quick
  // restart loses none; an app that takes 8 s to shut down after it stopped listening (under
  // TimeoutStopSec=15) holds the restart longer than that on every deploy, whatever the timing.
  // The stream (40 chunks, 20 s) runs across a restart as well.
  const restart = config("restart-long-stream.yaml", { strategy: "restart", chunks: 40, env: '    STOP_DELAY_MS: "8000"\n' });
  await deploy("r0", restart); // the move from blue-green to restart happens before the load
  const phase = { now: "idle" };
  const load = startLoad(phase);
  await eventually("the load to get answers", async () => load.responses(), (n) => n >= RATE);
  let stream: { version: string; finished: Promise<StreamRun> } | undefined;
  let run: LoadRun;
  try {
    for (let i = 1; i <= 3; i++) {
      if (i === 2) {
        const s = startStream();
        await s.started;
        stream = { version: "r1", finished: s.finished };
      }
      phase.now = `deploy r${i}`;
      const r = await deploy(`r${i}`, restart);
      await check(r.stderr.includes("strategy: restart"), `deploy r${i} was restart-style`, r);
      phase.now = "idle";
    }
  } finally {
    run = await load.stop();
  }
  await stream?.finished;
  await check(run.result.errors + run.result.non2xx > 0, `restart under load recorded no failure: ${summary(run)}`);
  await serves("r3");
}, 15 * 60_000);
