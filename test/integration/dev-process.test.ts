// togo dev with the process reloader, for real: the built CLI, a real app, real files changed on disk.
// Everything synchronizes on HTTP answers, togo dev's own lines and its state file; processes are
// stopped by PID; every failed check prints togo dev's stderr.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BIN, cleanupTempDirs, freePort, tempDir, testEnv, togo, writeFiles } from "../helpers/index.js";

interface Dev {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  /** When (Date.now()) stderr first held a match of `re`, looking from its character `from` on. */
  errAt: (re: RegExp, from?: number) => number | undefined;
  exited: Promise<number | null>;
}

const running: Dev[] = [];

function startDev(cwd: string, args: string[] = [], env: Record<string, string> = {}): Dev {
  const child = spawn(process.execPath, [BIN, "dev", ...args], { cwd, env: testEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += d));
  const arrivals: { at: number; end: number }[] = [];
  child.stderr!.on("data", (d) => {
    err += d;
    arrivals.push({ at: Date.now(), end: err.length });
  });
  const errAt = (re: RegExp, from = 0) => arrivals.find((a) => re.test(err.slice(from, a.end)))?.at;
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 : null))));
  const dev = { child, out: () => out, err: () => err, errAt, exited };
  running.push(dev);
  return dev;
}

function fail(what: string, dev?: Dev): never {
  throw new Error(dev ? `${what}\n--- togo dev stderr\n${dev.err()}\n--- togo dev stdout\n${dev.out()}` : what);
}

async function eventually<T>(what: string, get: () => Promise<T> | T, test: (v: T) => boolean, dev?: Dev, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (test(v)) return v;
    if (Date.now() > deadline) fail(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`, dev);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function get(url: string): Promise<{ status: number; body: string }> {
  try {
    const r = await fetch(url, { headers: { connection: "close" } });
    return { status: r.status, body: await r.text() };
  } catch (e) {
    return { status: 0, body: String((e as Error).cause ?? e) };
  }
}

/** Alive and not a zombie. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

afterAll(async () => {
  for (const d of running) {
    if (d.child.exitCode === null && d.child.signalCode === null) {
      d.child.kill("SIGTERM");
      await d.exited;
    }
  }
  cleanupTempDirs();
});

// The app: records its pid and a child's pid (stopping must reach the whole group), answers
// /up, /crash (exits) and / (its body); with CHECK_FLAG it refuses to start while CRASH_FLAG exists.
const app = (body: string, opts: { checkFlag?: boolean; broken?: boolean } = {}) => `const { createServer } = require("node:http");
const { appendFileSync, existsSync } = require("node:fs");
const { spawn } = require("node:child_process");
appendFileSync(process.env.PIDS, process.pid + "\\n");
if (process.env.STARTS) appendFileSync(process.env.STARTS, Date.now() + "\\n");
const kid = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
appendFileSync(process.env.PIDS, kid.pid + "\\n");
if (${opts.checkFlag ? "true" : "false"} && existsSync(process.env.CRASH_FLAG)) {
  console.error("Error: the crash flag is set");
  process.exit(3);
}
createServer((req, res) => {
  if (req.url === "/crash") {
    res.end("bye");
    setImmediate(() => process.exit(1));
    return;
  }
  res.end(req.url === "/up" ? "ok" : ${JSON.stringify(body)} + " " + process.env.GREETING + " " + process.env.TOKEN + " " + process.env.PORT_SEEN);
}).listen(Number(process.env.PORT), "127.0.0.1");
${opts.broken ? "syntax(\n" : ""}`;

describe("togo dev (process)", () => {
  let dir: string;
  let outside: string;
  let url: string;
  let dev: Dev;
  const status = async () => {
    const r = await togo(["dev", "status", "--json"], { cwd: dir });
    try {
      return { exitCode: r.exitCode, ...(JSON.parse(r.stdout) as { state: string; pid: number | null; reloads: number; restarts: number; message: string }) };
    } catch {
      return fail(`togo dev status --json printed no JSON (exit ${r.exitCode}):\n${r.stdout}\n${r.stderr}`, dev);
    }
  };
  const edit = (body: string, opts: { checkFlag?: boolean; broken?: boolean } = {}) => writeFileSync(join(dir, "server.js"), app(body, opts));
  /** The first time (the app's own Date.now()) the app started after `t`. */
  const startAfter = (t: number | undefined) =>
    t === undefined ? undefined : readFileSync(join(outside, "starts"), "utf8").trim().split("\n").map(Number).find((x) => x > t);

  beforeAll(async () => {
    dir = tempDir("togo-dev-");
    outside = tempDir("togo-dev-pids-");
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    writeFiles(dir, {
      "togo.yaml": `app: devapp
deploy:
  provider: local
  binary: server.js
  run: node server.js
  app_port: 1
  healthcheck: { path: /up, timeout: 15 }
  env: { GREETING: from-deploy, PORT_SEEN: "no" }
  secrets: { TOKEN: env:DEV_TEST_TOKEN }
dev:
  port: ${port}
  env: { GREETING: from-dev, PIDS: ${join(outside, "pids")}, STARTS: ${join(outside, "starts")}, CRASH_FLAG: ${join(outside, "crash")} }
`,
    });
    edit("v1", { checkFlag: true });
    dev = startDev(dir, [], { DEV_TEST_TOKEN: "tok" });
  });

  test("serves the app with deploy.env, secrets and dev.env on dev.port", async () => {
    await eventually("the first answer", () => get(`${url}/`), (r) => r.status === 200, dev);
    const r = await get(`${url}/`);
    if (r.body !== "v1 from-dev tok no") fail(`unexpected body ${JSON.stringify(r.body)}`, dev);
    const s = await status();
    if (s.exitCode !== 0 || s.state !== "ready" || s.pid !== dev.child.pid) fail(`status: ${JSON.stringify(s)}`, dev);
  });

  test("an edit is served, with one line saying what changed and how long it took", async () => {
    edit("v2", { checkFlag: true });
    await eventually("the new body", () => get(`${url}/`), (r) => r.body.startsWith("v2 "), dev);
    if (!/↻ server\.js changed → served in \d/.test(dev.err())) fail("no reload line", dev);
    const s = await status();
    if (s.reloads !== 1) fail(`reloads: ${JSON.stringify(s)}`, dev);
  });

  test("a syntax error keeps the old process serving and reports the error", async () => {
    edit("v3", { checkFlag: true, broken: true });
    await eventually("the failure line", () => dev.err(), (e) => /✗ server\.js changed → the new process exited .*SyntaxError.*still serving the previous one/.test(e), dev);
    const r = await get(`${url}/`);
    if (!r.body.startsWith("v2 ")) fail(`the old process should still serve: ${JSON.stringify(r)}`, dev);
    const s = await status();
    if (s.state !== "ready" || !/serving the previous process/.test(s.message)) fail(`status: ${JSON.stringify(s)}`, dev);
    edit("v2", { checkFlag: true });
    await eventually("the fixed app", () => status(), (st) => st.reloads === 2, dev);
  });

  test("a crash is restarted (not before the 1 s backoff)", async () => {
    const from = dev.err().length;
    await get(`${url}/crash`);
    await eventually("a restart", () => status(), (s) => s.restarts === 1 && s.state === "ready", dev);
    const r = await get(`${url}/`);
    if (!r.body.startsWith("v2 ")) fail(`after the restart: ${JSON.stringify(r)}`, dev);
    // A lower bound only: the restart waited about as long as announced.
    const announced = dev.errAt(/restarting in 1\.00s or on the next change/, from);
    const restarted = startAfter(announced);
    if (announced === undefined || restarted === undefined || restarted - announced < 900) fail(`the app started again ${restarted! - announced!} ms after the 1 s wait was announced`, dev);
  });

  test("repeated crashes → failed (the port says why), then a fix → ready", async () => {
    writeFileSync(join(outside, "crash"), "");
    await get(`${url}/crash`);
    const from = dev.err().length;
    const s = await eventually("failed", () => status(), (st) => st.state === "failed", dev);
    if (s.exitCode !== 3 || !/crashes in a row/.test(s.message)) fail(`status: ${JSON.stringify(s)}`, dev);
    // Lower bound only: the failed restart came at least ~2 s after the crash that announced it.
    const twoSeconds = dev.errAt(/restarting in 2\.00s or on the next change/, from);
    const restarted = startAfter(twoSeconds);
    if (twoSeconds === undefined || restarted === undefined || restarted - twoSeconds < 1800) fail(`the app started again ${restarted! - twoSeconds!} ms after the 2 s wait was announced`, dev);
    const r = await get(`${url}/`);
    if (r.status !== 503 || !/crashes in a row/.test(r.body)) fail(`while failed: ${JSON.stringify(r)}`, dev);
    edit("v4");
    await eventually("the fix served", () => get(`${url}/`), (x) => x.body.startsWith("v4 "), dev);
    const after = await status();
    if (after.state !== "ready") fail(`after the fix: ${JSON.stringify(after)}`, dev);
  });

  test("Ctrl-C stops everything togo dev started", async () => {
    const pids = readFileSync(join(outside, "pids"), "utf8").trim().split("\n").map(Number);
    if (pids.length < 8) fail(`expected pids of every start, got ${pids.length}`, dev);
    dev.child.kill("SIGINT");
    const code = await dev.exited;
    if (code !== 130) fail(`togo dev exited ${code}, expected 130`, dev);
    const left = pids.filter(alive);
    if (left.length) fail(`still running: ${left.join(", ")}`, dev);
    const r = await get(`${url}/`);
    if (r.status !== 0) fail(`dev.port still answers: ${JSON.stringify(r)}`, dev);
    if (existsSync(join(dir, ".togo", "dev", "devapp.json"))) fail("the state file is left", dev);
    const s = await status();
    if (s.exitCode !== 3 || s.state !== "not-deployed") fail(`status after the stop: ${JSON.stringify(s)}`, dev);
  });
});

describe("togo dev with build_cmd", () => {
  test("a build error keeps the last good build serving; build output is not watched", async () => {
    const dir = tempDir("togo-dev-build-");
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const source = (body: string) => `require("node:http").createServer((q, s) => s.end(${JSON.stringify(body)})).listen(Number(process.env.PORT), "127.0.0.1");\n`;
    writeFiles(dir, {
      "togo.yaml": `app: built
deploy:
  provider: local
  build_cmd: "if grep -q BROKEN src/app.js; then echo 'build: src/app.js is BROKEN' >&2; exit 2; fi; mkdir -p out && cp src/app.js out/app.js"
  binary: out
  run: node out/app.js
  app_port: ${port}
  healthcheck: { path: /, timeout: 15 }
`,
      "src/app.js": source("one"),
    });
    const dev = startDev(dir);
    await eventually("the first build served", () => get(`${url}/`), (r) => r.body === "one", dev);
    writeFileSync(join(dir, "src", "app.js"), source("BROKEN"));
    await eventually("the build failure", () => dev.err(), (e) => /✗ src\/app\.js changed → build_cmd failed \(exit code 2\)/.test(e) && /src\/app\.js is BROKEN/.test(e), dev);
    if ((await get(`${url}/`)).body !== "one") fail("the last good build should still serve", dev);
    writeFileSync(join(dir, "src", "app.js"), source("two"));
    await eventually("the next build served", () => get(`${url}/`), (r) => r.body === "two", dev);
    writeFileSync(join(dir, "src", "app.js"), source("three"));
    await eventually("the third build served", () => get(`${url}/`), (r) => r.body === "three", dev);
    // out/ is written by every build: were it watched, each build would cause more reloads.
    const lines = dev.err().split("\n").filter((l) => l.startsWith("↻") || l.startsWith("✗"));
    if (lines.length !== 4 || lines.some((l) => /out\/\S* changed/.test(l))) fail(`expected start, fail, two reloads:\n${lines.join("\n")}`, dev);
    // A manager killed outright leaves its state file: status checks the pid and says not-deployed.
    const recorded = JSON.parse(readFileSync(join(dir, ".togo", "dev", "built.json"), "utf8")) as { appPid: number };
    dev.child.kill("SIGKILL");
    await dev.exited;
    try {
      const r = await togo(["dev", "status", "--json"], { cwd: dir });
      const s = JSON.parse(r.stdout) as { state: string; message: string };
      if (r.exitCode !== 3 || s.state !== "not-deployed" || !/is not running/.test(s.message)) fail(`status of a killed togo dev: exit ${r.exitCode} ${r.stdout} ${r.stderr}`);
      // Its app outlived it (its own process group); the next togo dev stops it before starting its own.
      if (!alive(recorded.appPid)) fail("the app of the killed togo dev should still run (else this test shows nothing)");
      const next = startDev(dir);
      await eventually("the next togo dev serving", () => get(`${url}/`), (r) => r.body === "three" && alive(recorded.appPid) === false, next);
      if (!next.err().includes(`stopped the app (pid ${recorded.appPid}) an earlier togo dev left running`)) fail("the next togo dev should say it stopped the left app", next);
      next.child.kill("SIGINT");
      if ((await next.exited) !== 130) fail("the next togo dev should exit 130 on Ctrl-C", next);
    } finally {
      try {
        process.kill(-recorded.appPid, "SIGKILL");
      } catch {
        // stopped by the next togo dev
      }
    }
  });
});

describe("togo dev: changes during a build", () => {
  test("coalesce into one more build", async () => {
    const dir = tempDir("togo-dev-coalesce-");
    const gates = tempDir("togo-dev-gates-");
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const count = join(gates, "count");
    const builds = () => (existsSync(count) ? readFileSync(count, "utf8").trim().split("\n").length : 0);
    const source = (body: string) => `require("node:http").createServer((q, s) => s.end(${JSON.stringify(body)})).listen(Number(process.env.PORT), "127.0.0.1");\n`;
    // Build n waits for the file gate<n>: the test holds a build open while it changes files.
    writeFiles(dir, {
      "togo.yaml": `app: coalesce
deploy:
  provider: local
  build_cmd: "echo b >> ${count}; n=$(wc -l < ${count}); while [ ! -e ${gates}/gate$n ]; do sleep 0.02; done; mkdir -p out && cp src/app.js out/app.js"
  binary: out
  run: node out/app.js
  app_port: ${port}
  healthcheck: { path: /, timeout: 15 }
`,
      "src/app.js": source("one"),
    });
    writeFileSync(join(gates, "gate1"), "");
    const dev = startDev(dir);
    await eventually("the first build served", () => get(`${url}/`), (r) => r.body === "one", dev);
    writeFileSync(join(dir, "src", "app.js"), source("two"));
    const twoAt = performance.now();
    await eventually("the second build under way", () => builds(), (n) => n === 2, dev);
    // chokidar reports one change of a file in 50 ms and drops the rest (README: togo dev): the next
    // save of the same file is a separate edit only once that window is over.
    while (performance.now() - twoAt < 80) await new Promise((r) => setTimeout(r, 5));
    writeFileSync(join(dir, "src", "app.js"), source("three"));
    writeFileSync(join(dir, "src", "other.js"), "// another file\n");
    await eventually("both changes seen during the build", () => dev.err(), (e) => /src\/app\.js changed during the reload/.test(e) && /src\/other\.js changed during the reload/.test(e), dev);
    writeFileSync(join(gates, "gate2"), "");
    writeFileSync(join(gates, "gate3"), "");
    await eventually("the coalesced reload", () => dev.err(), (e) => /↻ src\/app\.js, src\/other\.js changed → built in/.test(e), dev);
    if (builds() !== 3) fail(`expected 3 builds (start, the change, one more for the changes during it), got ${builds()}`, dev);
    if ((await get(`${url}/`)).body !== "three") fail("the last change should be served", dev);
    dev.child.kill("SIGTERM");
    await dev.exited;
  });
});

describe("togo dev: the registry and bad usage", () => {
  const plugin = `module.exports = function ({ registerReloader }) {
  const { writeFileSync } = require("node:fs");
  registerReloader("echo", () => ({
    type: "echo",
    validate: (c) => (c.spec.dev.env.ECHO_OUT ? [] : [{ path: "dev.env.ECHO_OUT", expected: "where echo writes" }]),
    run: (c, signal) => new Promise((resolve) => {
      writeFileSync(c.spec.dev.env.ECHO_OUT, JSON.stringify({ port: c.env.PORT, greeting: c.env.GREETING }));
      signal.addEventListener("abort", () => { writeFileSync(c.spec.dev.env.ECHO_OUT + ".stopped", "yes"); resolve(); });
    }),
    status: async () => ({ state: "ready", message: "echo" }),
  }));
};
`;
  let dir: string;
  beforeAll(() => {
    dir = tempDir("togo-dev-plugin-");
    writeFiles(dir, {
      "togo.yaml": `app: plug
deploy: { provider: local, binary: server.js, run: node server.js, app_port: 4321, env: { GREETING: hi } }
plugins: [togo-reloader-echo]
dev: { type: echo, env: { ECHO_OUT: ${join(dir, "echo.json")} } }
`,
      "node_modules/togo-reloader-echo/package.json": JSON.stringify({ name: "togo-reloader-echo", version: "1.0.0", main: "index.js" }),
      "node_modules/togo-reloader-echo/index.js": plugin,
    });
  });

  test("an unknown type exits 2 listing the types, before anything runs", async () => {
    const r = await togo(["dev", "--type", "nope"], { cwd: dir });
    if (r.exitCode !== 2 || !/unknown reloader type "nope" \(from --type\); known types: docker, echo, process, sync/.test(r.stderr)) fail(`exit ${r.exitCode}: ${r.stderr}`);
    if (existsSync(join(dir, ".togo")) || existsSync(join(dir, "echo.json"))) fail("something ran");
    writeFileSync(join(dir, "bad.yaml"), readFileSync(join(dir, "togo.yaml"), "utf8").replace("type: echo", "type: nope"));
    const b = await togo(["dev", "-c", "bad.yaml"], { cwd: dir });
    if (b.exitCode !== 2 || !/unknown reloader type "nope" \(from dev\.type\)/.test(b.stderr)) fail(`exit ${b.exitCode}: ${b.stderr}`);
  });

  test("a plugin reloader registers and runs with the dev environment; SIGTERM stops it", async () => {
    const dev = startDev(dir);
    const out = join(dir, "echo.json");
    await eventually("the plugin's run", () => existsSync(out), (x) => x, dev);
    const seen = JSON.parse(readFileSync(out, "utf8")) as { port: string; greeting: string };
    if (seen.port !== "4321" || seen.greeting !== "hi") fail(`env: ${JSON.stringify(seen)}`, dev);
    dev.child.kill("SIGTERM");
    const code = await dev.exited;
    if (code !== 143 || !existsSync(`${out}.stopped`)) fail(`the plugin was not stopped through its signal (exit ${code})`, dev);
  });

  test("the manager's checks run first; a mistyped subcommand gets a did-you-mean", async () => {
    writeFileSync(join(dir, "noout.yaml"), readFileSync(join(dir, "togo.yaml"), "utf8").replace(/env: \{ ECHO_OUT[^}]*\}/, "env: {}"));
    const r = await togo(["dev", "-c", "noout.yaml"], { cwd: dir });
    if (r.exitCode !== 2 || !/dev\.env\.ECHO_OUT: where echo writes/.test(r.stderr)) fail(`exit ${r.exitCode}: ${r.stderr}`);
    const s = await togo(["dev", "statsu"], { cwd: dir });
    if (s.exitCode !== 2 || !/did you mean "status"/.test(s.stderr)) fail(`exit ${s.exitCode}: ${s.stderr}`);
  });

  test("process: deploy.run is required (exit 2); a taken dev.port is exit 1 naming it", async () => {
    const d = tempDir("togo-dev-port-");
    writeFiles(d, { "togo.yaml": "app: norun\ndeploy: { provider: local, binary: server.js, app_port: 4000 }\n" });
    const r = await togo(["dev"], { cwd: d });
    if (r.exitCode !== 2 || !/deploy\.run: is required for togo dev/.test(r.stderr)) fail(`exit ${r.exitCode}: ${r.stderr}`);
    const { createServer } = await import("node:net");
    const taken = createServer();
    const port = await new Promise<number>((resolve) => taken.listen(0, "127.0.0.1", () => resolve((taken.address() as { port: number }).port)));
    try {
      writeFiles(d, { "togo.yaml": `app: taken\ndeploy: { provider: local, binary: server.js, run: node server.js, app_port: ${port} }\n` });
      const t = await togo(["dev"], { cwd: d });
      if (t.exitCode !== 1 || !new RegExp(`dev\\.port ${port} is in use`).test(t.stderr)) fail(`exit ${t.exitCode}: ${t.stderr}`);
    } finally {
      taken.close();
    }
  });
});

describe("togo dev: a watched folder that does not exist yet", () => {
  test("is watched once it appears (made later by a build or a clone): the first file written in it reloads", async () => {
    const dir = tempDir("togo-dev-later-");
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    // The app answers with gen/deep/body.txt as it was when it started ("none" before it exists).
    writeFiles(dir, {
      "togo.yaml": `app: later
deploy:
  provider: local
  binary: server.js
  run: node server.js
  app_port: ${port}
  healthcheck: { path: /, timeout: 15 }
dev:
  watch: [gen/deep]
`,
      "server.js": `const { existsSync, readFileSync } = require("node:fs");
const body = existsSync("gen/deep/body.txt") ? readFileSync("gen/deep/body.txt", "utf8").trim() : "none";
require("node:http").createServer((q, s) => s.end(body)).listen(Number(process.env.PORT), "127.0.0.1");
`,
    });
    const dev = startDev(dir);
    await eventually("the first answer", () => get(`${url}/`), (r) => r.body === "none", dev);
    await eventually("the watcher ready (the start line)", () => dev.err(), (e) => /watching gen\/deep/.test(e), dev);
    // gen/ and gen/deep/ appear only now, two levels below the nearest folder that existed.
    mkdirSync(join(dir, "gen", "deep"), { recursive: true });
    writeFileSync(join(dir, "gen", "deep", "body.txt"), "made\n");
    await eventually("the new file served", () => get(`${url}/`), (r) => r.body === "made", dev);
    if (!/↻ gen\/deep\/body\.txt changed → served in \d/.test(dev.err())) fail("no reload line naming gen/deep/body.txt", dev);
    // A file beside the watched folder is not watched.
    writeFileSync(join(dir, "gen", "other.txt"), "x\n");
    writeFileSync(join(dir, "gen", "deep", "body.txt"), "again\n");
    await eventually("the next edit served", () => get(`${url}/`), (r) => r.body === "again", dev);
    if (/gen\/other\.txt/.test(dev.err())) fail("gen/other.txt is outside dev.watch and was reported", dev);
    dev.child.kill("SIGINT");
    if ((await dev.exited) !== 130) fail("togo dev should exit 130 on Ctrl-C", dev);
  });
});

describe("togo dev: SIGTERM", () => {
  test("exits 143 and leaves no process, no listener and no state file behind", async () => {
    const dir = tempDir("togo-dev-term-");
    const outside = tempDir("togo-dev-term-pids-");
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    writeFiles(dir, {
      "togo.yaml": `app: term
deploy:
  provider: local
  binary: server.js
  run: node server.js
  app_port: ${port}
  healthcheck: { path: /up, timeout: 15 }
dev:
  env: { PIDS: ${join(outside, "pids")}, CRASH_FLAG: ${join(outside, "crash")} }
`,
    });
    writeFileSync(join(dir, "server.js"), app("t1"));
    const dev = startDev(dir);
    await eventually("the first answer", () => get(`${url}/`), (r) => r.body.startsWith("t1 "), dev);
    if (!existsSync(join(dir, ".togo", "dev", "term.json"))) fail("no state file while running", dev);
    const pids = readFileSync(join(outside, "pids"), "utf8").trim().split("\n").map(Number);
    if (pids.length !== 2 || !pids.every(alive)) fail(`expected the app and its child running: ${pids.join(", ")}`, dev);
    dev.child.kill("SIGTERM");
    const code = await dev.exited;
    if (code !== 143) fail(`togo dev exited ${code} on SIGTERM, expected 143`, dev);
    const left = pids.filter(alive);
    if (left.length) fail(`still running after SIGTERM: ${left.join(", ")}`, dev);
    if ((await get(`${url}/`)).status !== 0) fail("dev.port still answers after SIGTERM", dev);
    if (existsSync(join(dir, ".togo", "dev", "term.json"))) fail("the state file is left after SIGTERM", dev);
  });
});
