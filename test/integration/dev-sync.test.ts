// togo dev's `sync` reloader against a real sshd on loopback: a live release is deployed with the
// CLI first; the manager (driven directly, as `togo dev --type sync` does) makes a development copy
// beside it, an edit is served through the local forward on dev.port, a crash of the copy is
// restarted, and the abort removes the copy; the live release's version and process never change.
// An unreachable host is ReloaderTargetNotFoundError.
import { afterAll, beforeAll, expect, test } from "@jest/globals";
import { chmodSync, existsSync, readFileSync, readlinkSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { createServer, get } from "node:http";
import { join } from "node:path";
import { parseConfig } from "../../src/config/load.js";
import { createReporter } from "../../src/core/log.js";
import { workspaceOf } from "../../src/core/workspace.js";
import { newReloader, ReloaderRunError, ReloaderTargetNotFoundError, type DevConfig, type DevStatus } from "../../src/dev/reloader.js";
import "../../src/dev/sync.js";
import { execa } from "execa";
import { BIN, cleanupTempDirs, EXAMPLE, freePort, helloProject, tempDir, testEnv, togo } from "../helpers/index.js";
import { startSshd, type Sshd } from "../helpers/sshd.js";

let sshd: Sshd;
let dir: string;
let appPort: number;
let devPort: number;
let appDir: string;

function fetchText(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = get(url, { timeout: 5000 }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", (e) => resolve({ status: 0, body: e.message }));
    req.on("timeout", () => req.destroy());
  });
}

async function until<T>(what: string, fn: () => Promise<T> | T, ok: (v: T) => boolean, timeoutMs = 60_000, diag: () => string = () => ""): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await fn();
  while (!ok(last)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}\n${diag()}`);
    await new Promise((r) => setTimeout(r, 50));
    last = await fn();
  }
  return last;
}

const yaml = (port = sshd.port) =>
  `app: hello
deploy:
${sshd.deployKeys.replace(`port: ${sshd.port}`, `port: ${port}`)}
  binary: server.js
  run: node server.js
  app_dir: ~/apps/hello
  app_port: ${appPort}
  healthcheck: { path: /up, timeout: 20, interval: 0.1, settle: 0 }
  env: { GREETING: live }
dev:
  type: sync
  port: ${devPort}
  env: { GREETING: dev }
`;

function devConfig(text: string, lines: string[] = []): DevConfig {
  const spec = parseConfig(text, join(dir, "togo.yaml"), {});
  const stream = { write: (s: string) => (lines.push(s), true) };
  return { spec, log: createReporter({ stream, progress: false, color: false }), stateFile: workspaceOf(spec).devStateFile, env: { ...spec.env, ...spec.dev.env } };
}

const livePid = () => readFileSync(join(appDir, "run", "app.pid"), "utf8").trim();
const devDir = () => `${appDir}-dev`;
const state = (c: DevConfig): DevStatus => JSON.parse(readFileSync(c.stateFile, "utf8")) as DevStatus;
/** The deploy user's processes of the development copy, by command line. */
const copyProcesses = () =>
  sshd
    .userPids()
    .map((p) => { try { return readFileSync(`/proc/${p}/cmdline`, "utf8"); } catch { return ""; } })
    .filter((c) => c.includes("hello-dev"));

/** `togo dev` through the built CLI in the project; `said()` is everything it printed so far. */
function startDevCli() {
  const dev = execa(process.execPath, [BIN, "dev"], { cwd: dir, env: testEnv(), extendEnv: false, reject: false });
  let text = "";
  dev.stderr?.on("data", (d) => (text += d));
  dev.stdout?.on("data", (d) => (text += d));
  return { dev, said: () => text, diag: () => `--- togo dev said\n${text}` };
}

beforeAll(async () => {
  sshd = await startSshd();
  appPort = await freePort();
  devPort = await freePort();
  appDir = join(sshd.home, "apps", "hello");
  dir = helloProject("");
  writeFileSync(join(dir, "togo.yaml"), yaml());
  const r = await togo(["deploy", "--version", "1"], { cwd: dir });
  if (r.exitCode !== 0) throw new Error(`togo deploy failed (${r.exitCode})\n${r.stdout}\n${r.stderr}`);
}, 180_000);

afterAll(async () => {
  await sshd?.stop();
  cleanupTempDirs();
}, 60_000);

test("an edit is served through dev.port; a crash is restarted; the abort removes the copy; the live release is untouched; one SSH connection", async () => {
  const live = await fetchText(`http://127.0.0.1:${appPort}/`);
  expect(live.body).toBe("live from 1\n");
  const pidBefore = livePid();

  const lines: string[] = [];
  const config = devConfig(yaml(), lines);
  const manager = await newReloader("sync");
  expect(manager.validate(config)).toEqual([]);
  const acceptedBefore = sshd.accepted();
  const stop = new AbortController();
  let ended = false;
  const running = manager.run(config, stop.signal).finally(() => (ended = true));
  const diag = () => `--- togo dev output\n${lines.join("")}\n--- state\n${existsSync(config.stateFile) ? readFileSync(config.stateFile, "utf8") : "none"}`;
  try {
    const url = `http://127.0.0.1:${devPort}/`;
    await until("the copy to serve through dev.port", () => fetchText(url), (r) => r.body === "dev from dev\n" || ended, 60_000, diag);
    expect((await fetchText(url)).body).toBe("dev from dev\n");
    await until("state ready and watching", () => state(config), (s) => s.state === "ready" && s.message.includes("watching"), 30_000, diag);
    expect(state(config)).toMatchObject({ type: "sync", pid: process.pid, url: `http://127.0.0.1:${devPort}` });
    expect(existsSync(join(devDir(), "vdev", "server.js"))).toBe(true);
    expect((await manager.status(config)).state).toBe("ready");

    // An edit: the new body arrives through the forward.
    writeFileSync(join(dir, "server.js"), readFileSync(join(dir, "server.js"), "utf8").replace("${greeting} from", "${greeting} edited from"));
    await until("the edit to be served", () => fetchText(url), (r) => r.body === "dev edited from dev\n", 60_000, diag);
    // A second edit of the same size and the same mtime (an edit within the same second; rsync's
    // size+mtime check alone would skip it).
    const before = statSync(join(dir, "server.js"));
    writeFileSync(join(dir, "server.js"), readFileSync(join(dir, "server.js"), "utf8").replace("${greeting} edited from", "${greeting} EDITED from"));
    utimesSync(join(dir, "server.js"), before.atime, before.mtime);
    await until("the same-size edit to be served", () => fetchText(url), (r) => r.body === "dev EDITED from dev\n", 60_000, diag);
    await until("the reload to be recorded", () => state(config), (s) => (s.reloads ?? 0) >= 1 && s.lastReload !== undefined, 30_000, diag);
    // The copy's log streams back.
    await until("the copy's log line", () => lines.join(""), (t) => t.includes("[hello] hello dev listening"), 30_000, diag);

    // An edit that breaks the app: the reload fails and says so; the next edit that fixes it serves.
    const good = readFileSync(join(dir, "server.js"), "utf8");
    writeFileSync(join(dir, "server.js"), `throw new Error("broken on purpose");\n${good}`);
    const failed = await until("the broken edit to be reported", () => state(config), (s) => s.state === "failed", 60_000, diag);
    expect(failed.message).toContain("did not answer /up");
    await until("the copy's error in the streamed log", () => lines.join(""), (t) => t.includes("broken on purpose"), 30_000, diag);
    writeFileSync(join(dir, "server.js"), good);
    await until("the fixed edit to be served", () => fetchText(url), (r) => r.body === "dev EDITED from dev\n", 60_000, diag);
    await until("state ready again", () => state(config), (s) => s.state === "ready", 30_000, diag);

    // A crash of the copy: restarted, counted.
    expect(state(config).restarts).toBe(0); // a copy that failed to start waited for the fix, not restarted in a loop
    const devPid = readFileSync(join(devDir(), "run", "dev.pid"), "utf8").trim();
    process.kill(-Number(devPid), "SIGKILL");
    await until("the restart after a crash", () => state(config), (s) => (s.restarts ?? 0) >= 1 && s.state === "ready", 60_000, diag);
    expect((await fetchText(url)).body).toBe("dev EDITED from dev\n");
    expect(readFileSync(join(devDir(), "run", "dev.pid"), "utf8").trim()).not.toBe(devPid);

    // The live release never moved.
    expect(readlinkSync(join(appDir, "current"))).toBe("v1");
    expect(livePid()).toBe(pidBefore);
    expect((await fetchText(`http://127.0.0.1:${appPort}/`)).body).toBe("live from 1\n");
  } finally {
    stop.abort();
    await running;
  }
  expect(existsSync(devDir())).toBe(false);
  // Layout, uploads (rsync), restarts, status checks, the log follower, the forward and the removal
  // all went over one SSH connection: sshd accepted exactly one login for the whole session.
  expect(sshd.accepted() - acceptedBefore).toBe(1);
  expect(state(config)).toMatchObject({ state: "not-deployed" });
  expect((await manager.status(config)).state).toBe("not-deployed");
  expect((await fetchText(`http://127.0.0.1:${devPort}/`)).status).toBe(0); // the forward is gone
  expect(livePid()).toBe(pidBefore);
  expect(readlinkSync(join(appDir, "current"))).toBe("v1");
  expect((await fetchText(`http://127.0.0.1:${appPort}/`)).body).toBe("live from 1\n");
  // Nothing of the copy runs: only the live release's processes belong to the user.
  expect(copyProcesses()).toEqual([]);
}, 240_000);

test("through the CLI: togo dev (dev.type: sync) serves an edit, togo dev status says so, Ctrl-C removes the copy", async () => {
  writeFileSync(join(dir, "server.js"), readFileSync(join(EXAMPLE, "server.js")));
  const pidBefore = livePid();
  const { dev, said, diag } = startDevCli();
  const url = `http://127.0.0.1:${devPort}/`;
  try {
    await until("the copy to serve through dev.port", () => fetchText(url), (r) => r.body === "dev from dev\n" || dev.exitCode !== null, 60_000, diag);
    expect({ body: (await fetchText(url)).body, said: said() }).toMatchObject({ body: "dev from dev\n" });
    writeFileSync(join(dir, "server.js"), readFileSync(join(EXAMPLE, "server.js"), "utf8").replace("${greeting} from", "${greeting} cli from"));
    await until("the edit to be served", () => fetchText(url), (r) => r.body === "dev cli from dev\n", 60_000, diag);
    const st = await togo(["dev", "status", "--json"], { cwd: dir });
    expect({ code: st.exitCode, status: JSON.parse(st.stdout || "{}"), said: said() }).toMatchObject({ code: 0, status: { state: "ready", type: "sync" } });
  } finally {
    dev.kill("SIGINT");
  }
  const r = await dev;
  expect({ code: r.exitCode, said: said() }).toMatchObject({ code: 130 });
  expect(existsSync(devDir())).toBe(false);
  expect((await togo(["dev", "status"], { cwd: dir })).exitCode).toBe(3);
  expect(livePid()).toBe(pidBefore);
  expect((await fetchText(`http://127.0.0.1:${appPort}/`)).body).toBe("live from 1\n");
}, 180_000);

test("through the CLI: SIGTERM stops togo dev (exit 143) and removes the copy; the live release is untouched", async () => {
  writeFileSync(join(dir, "server.js"), readFileSync(join(EXAMPLE, "server.js")));
  const pidBefore = livePid();
  const { dev, said, diag } = startDevCli();
  try {
    await until("the copy to serve through dev.port", () => fetchText(`http://127.0.0.1:${devPort}/`), (r) => r.body === "dev from dev\n" || dev.exitCode !== null, 60_000, diag);
    expect(existsSync(join(devDir(), "vdev", "server.js"))).toBe(true);
  } finally {
    dev.kill("SIGTERM");
    await dev; // a failed wait above must not leave togo dev holding dev.port for the next test
  }
  const r = await dev;
  expect({ code: r.exitCode, said: said() }).toMatchObject({ code: 143 });
  expect(existsSync(devDir())).toBe(false);
  expect((await fetchText(`http://127.0.0.1:${devPort}/`)).status).toBe(0);
  const st = await togo(["dev", "status", "--json"], { cwd: dir });
  expect({ code: st.exitCode, out: st.stdout }).toMatchObject({ code: 3, out: expect.stringContaining('"state": "not-deployed"') });
  expect(copyProcesses()).toEqual([]);
  expect(livePid()).toBe(pidBefore);
}, 180_000);

test("through the CLI: an unreachable host exits 1 naming the host and what to check; status says not-deployed", async () => {
  const closed = await freePort();
  writeFileSync(join(dir, "unreachable.yaml"), yaml(closed));
  const r = await togo(["dev", "-c", "unreachable.yaml"], { cwd: dir, timeout: 60_000 });
  expect({ code: r.exitCode, stderr: r.stderr }).toMatchObject({ code: 1, stderr: expect.stringContaining(`127.0.0.1:${closed}`) });
  expect(r.stderr).toContain("unreachable or not provisioned (run togo provision, check deploy.host/user/port)");
  const st = await togo(["dev", "status", "--json", "-c", "unreachable.yaml"], { cwd: dir });
  expect({ code: st.exitCode, out: st.stdout }).toMatchObject({ code: 3, out: expect.stringContaining('"state": "not-deployed"') });
}, 60_000);

test("an unreachable host is ReloaderTargetNotFoundError, saying which host and what to check", async () => {
  const closed = await freePort();
  const config = devConfig(yaml(closed));
  const manager = await newReloader("sync");
  const err = await manager.run(config, new AbortController().signal).then(() => undefined, (e: Error) => e);
  expect(err).toBeInstanceOf(ReloaderTargetNotFoundError);
  expect(err!.message).toContain(`127.0.0.1:${closed}`);
  expect(err!.message).toContain("unreachable or not provisioned");
  expect(state(config).state).toBe("not-deployed");
}, 60_000);

test("stopped during its first start (the copy made, not yet serving): the copy is removed all the same", async () => {
  const config = devConfig(yaml());
  const manager = await newReloader("sync");
  const stop = new AbortController();
  const running = manager.run(config, stop.signal);
  await until("the copy's folder on the host", () => existsSync(devDir()), (made) => made, 60_000);
  stop.abort();
  await running;
  expect(existsSync(devDir())).toBe(false);
  expect(state(config).state).toBe("not-deployed");
  expect(readlinkSync(join(appDir, "current"))).toBe("v1");
}, 60_000);

test("an edit saved while the copy comes up (after its upload, before it serves) is served after the first start", async () => {
  const config = devConfig(yaml());
  const manager = await newReloader("sync");
  const stop = new AbortController();
  const running = manager.run(config, stop.signal);
  try {
    await until("the first upload on the host", () => existsSync(join(devDir(), "vdev", "server.js")), (up) => up, 60_000);
    const text = readFileSync(join(dir, "server.js"), "utf8");
    writeFileSync(join(dir, "server.js"), text.replace(/\$\{greeting\} \S* ?from/, "${greeting} early from"));
    await until("the early edit to be served", () => fetchText(`http://127.0.0.1:${devPort}/`), (r) => r.body === "dev early from dev\n", 60_000);
  } finally {
    stop.abort();
    await running;
  }
  expect(existsSync(devDir())).toBe(false);
}, 120_000);

test("dev.port taken on this machine: a run error naming the port, before anything connects", async () => {
  const blocker = createServer().listen(devPort, "127.0.0.1");
  await new Promise((r) => blocker.once("listening", r));
  try {
    const accepted = sshd.accepted();
    const manager = await newReloader("sync");
    const err = await manager.run(devConfig(yaml()), new AbortController().signal).then(() => undefined, (e: Error) => e);
    expect(err).toBeInstanceOf(ReloaderRunError);
    expect(err!.message).toContain(`dev.port ${devPort} is already in use`);
    expect(sshd.accepted()).toBe(accepted);
  } finally {
    blocker.close();
  }
});

test("validate: sync needs a vps/aws host, deploy.run and deploy.binary", async () => {
  const manager = await newReloader("sync");
  const local = devConfig("app: hello\ndeploy:\n  provider: local\n  binary: server.js\n  run: node server.js\n");
  expect(manager.validate(local).map((p) => p.path)).toEqual(["dev.type"]);
  const bare = devConfig(yaml().replace("  binary: server.js\n", "").replace("  run: node server.js\n", ""));
  expect(manager.validate(bare).map((p) => p.path)).toEqual(["deploy.run", "deploy.binary"]);
});

test("repeated crashes of the copy: restarts back off (1 s, 2 s), then failed; an edit that fixes it → ready", async () => {
  const flagDir = tempDir("togo-dev-sync-flag-");
  chmodSync(flagDir, 0o755); // the sshd's user looks for the flag
  const flag = join(flagDir, "crash");
  // Exits at start while the flag file exists (the host is this machine: the path is the same there).
  const flagged = (body: string, check: boolean) => `import { createServer } from "node:http";
import { existsSync } from "node:fs";
if (${check} && existsSync(process.env.CRASH_FLAG)) { console.error("Error: the crash flag is set"); process.exit(3); }
createServer((req, res) => res.end(req.url === "/up" ? "ok\\n" : "${body} " + process.env.GREETING + "\\n")).listen(Number(process.env.PORT), "127.0.0.1");
`;
  writeFileSync(join(dir, "server.js"), flagged("flagged", true));
  const lines: string[] = [];
  const at: number[] = [];
  const config = devConfig(yaml().replace("env: { GREETING: dev }", `env: { GREETING: dev, CRASH_FLAG: ${flag} }`), lines);
  const stream = { write: (s: string) => (lines.push(s), at.push(Date.now()), true) };
  config.log = createReporter({ stream, progress: false, color: false });
  const manager = await newReloader("sync");
  const stop = new AbortController();
  let ended = false;
  const running = manager.run(config, stop.signal).finally(() => (ended = true));
  const diag = () => `--- togo dev output\n${lines.join("")}\n--- state\n${existsSync(config.stateFile) ? readFileSync(config.stateFile, "utf8") : "none"}`;
  const url = `http://127.0.0.1:${devPort}/`;
  try {
    await until("the copy to serve", () => fetchText(url), (r) => r.body === "flagged dev\n" || ended, 60_000, diag);
    await until("state ready and watching", () => state(config), (s) => s.state === "ready" && s.message.includes("watching"), 30_000, diag);
    writeFileSync(flag, "");
    const devPid = readFileSync(join(devDir(), "run", "dev.pid"), "utf8").trim();
    process.kill(-Number(devPid), "SIGKILL");
    const failed = await until("failed after crashes in a row", () => state(config), (s) => s.state === "failed", 60_000, diag);
    expect({ message: failed.message, out: diag() }).toMatchObject({ message: expect.stringContaining("3 crashes in a row") });
    await until("the copy's error in the streamed log", () => lines.join(""), (t) => t.includes("[hello] Error: the crash flag is set"), 30_000, diag);
    expect(failed.restarts).toBe(2);
    // The waits grow: the crash, then two failed restarts, each announcing the next wait.
    const waits = lines.filter((l) => /restarting in \S+ or on the next change/.test(l)).map((l) => l.match(/restarting in (\S+) or/)![1]);
    expect({ waits: waits.slice(0, 3), out: diag() }).toMatchObject({ waits: ["1.00s", "2.00s", "4.00s"] });
    // Lower bounds only: the restarts wait at least about as long as announced.
    const restartTimes = lines.map((l, i) => (/restarting the development copy \(restart \d+\)/.test(l) ? at[i] : -1)).filter((t) => t >= 0);
    const announced = lines.map((l, i) => (/restarting in \S+ or on the next change/.test(l) ? at[i] : -1)).filter((t) => t >= 0);
    expect(restartTimes[0] - announced[0]).toBeGreaterThanOrEqual(900);
    expect(restartTimes[1] - announced[1]).toBeGreaterThanOrEqual(1800);
    // Still watching: an edit that no longer exits on the flag is served at once.
    writeFileSync(join(dir, "server.js"), flagged("fixed", false));
    await until("the fix to be served", () => fetchText(url), (r) => r.body === "fixed dev\n", 60_000, diag);
    await until("state ready again", () => state(config), (s) => s.state === "ready", 30_000, diag);
  } finally {
    stop.abort();
    await running;
    rmSync(flag, { force: true });
    writeFileSync(join(dir, "server.js"), readFileSync(join(EXAMPLE, "server.js")));
  }
  expect(existsSync(devDir())).toBe(false);
}, 240_000);
