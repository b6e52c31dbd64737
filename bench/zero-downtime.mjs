// Zero downtime through Caddy on a real systemd host (a booted Debian container, the harness of
// test/helpers/systemd-hosts.ts, bundled here with esbuild): autocannon drives a fixed-rate load
// (100 req/s, loopback netns only) through the host's Caddy while 10 deploys and 2 rollbacks run, a
// 10 s streaming response started just before the third deploy; once with `strategy: auto`
// (blue-green: separate user units, Caddy switched by a graceful reload, a 2 s drain; 15 s for the
// deploy the stream spans) and once with `strategy: restart`. Prints errors and non-2xx for both, and
// p99 latency through Caddy while idle vs while a deploy or rollback runs, in the same run.
// Target: blue-green 0 errors and 0 non-2xx. Needs root, systemd-container, zstd (as the tests).
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import autocannon from "autocannon";
import { build } from "esbuild";
import { BIN, ROOT, benchEnv, machine, tempDir } from "./lib.mjs";

const RATE = 100;
const DOMAIN = "hello.test";
const STREAM_CHUNKS = 20;

/** The test harness's systemd hosts, bundled to plain JS (it finds its scripts beside the .ts file). */
async function systemdHosts(tmp) {
  const src = join(ROOT, "test", "helpers", "systemd-hosts.ts");
  const out = join(tmp, "systemd-hosts.mjs");
  await build({
    entryPoints: [src],
    bundle: true,
    platform: "node",
    format: "esm",
    outfile: out,
    define: { "import.meta.url": JSON.stringify(pathToFileURL(src).href) },
    banner: { js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);' },
    logLevel: "error",
  });
  return import(pathToFileURL(out).href);
}

const yaml = (host, o = {}) => `app: hello
deploy:
${host.deployKeys}
  domain: ${DOMAIN}
  binary: server.js
  run: node server.js
  app_port: 3000
  strategy: ${o.strategy ?? "auto"}
  drain: ${o.drain ?? 2}
  healthcheck: { path: /up, timeout: 30, interval: 0.2, settle: 1 }
  versions_to_keep: 40
  env: { STREAM_CHUNKS: "${STREAM_CHUNKS}", STREAM_EVERY_MS: "500" }
  options: { service: systemd, https: false }
`;

/** Runs the CLI without blocking: autocannon runs in this process and must keep sending. */
function cli(dir, args) {
  const start = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: dir, env: benchEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) reject(new Error(`togo ${args.join(" ")} failed (${code}):\n${out}\n${err}`));
      else resolve({ s: Number(process.hrtime.bigint() - start) / 1e9, stderr: err });
    });
  });
}

const until = async (cond) => {
  while (!cond()) await new Promise((r) => setTimeout(r, 100));
};

function percentile(xs, p) {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

/** GET /stream through Caddy: resolves `started` at the first chunk, `finished` with what arrived. */
function stream(host) {
  let started;
  const startedP = new Promise((r) => (started = r));
  const finished = new Promise((resolve) => {
    const req = request({ host: host.ip, port: 80, path: "/stream", headers: { host: DOMAIN } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => {
        if (!body) started(d);
        body += d;
      });
      res.on("end", () => resolve({ status: res.statusCode, body, complete: res.complete }));
      res.on("aborted", () => resolve({ status: res.statusCode, body, complete: false }));
    });
    req.on("error", (e) => {
      started(`error ${e.message}`);
      resolve({ status: 0, body: e.message, complete: false });
    });
    req.end();
  });
  return { started: startedP, finished };
}

/**
 * The load during `ops` (deploys and rollbacks, in order): an idle window of 10 s first (the idle
 * p99), a stream started before op `streamBefore`. Responses are tagged idle or busy (an op runs).
 */
async function underLoad(host, dir, ops, streamBefore, streamCfg) {
  const samples = [];
  let busy = false;
  let current = "idle";
  const instance = autocannon({ url: `http://${host.ip}:80/`, headers: { host: DOMAIN }, connections: 10, overallRate: RATE, duration: 1800, timeout: 20 }, () => undefined);
  const done = new Promise((resolve, reject) => {
    instance.on("done", resolve);
    instance.on("error", reject);
  });
  instance.on("response", (_c, status, _b, ms) => samples.push({ busy, op: current, status, ms, at: Date.now() }));
  const t0 = Date.now();
  const marks = [];
  await until(() => samples.length >= RATE * 10);
  let s;
  const times = [];
  try {
    for (const [i, op] of ops.entries()) {
      let args = op;
      if (i === streamBefore) {
        s = stream(host);
        s.first = await s.started;
        if (streamCfg) args = [...op, "-c", streamCfg];
      }
      busy = true;
      current = `${args[0]} ${i + 1}${i === streamBefore ? " (stream)" : ""}`;
      marks.push(`${current} ${((Date.now() - t0) / 1000).toFixed(1)}s`);
      times.push((await cli(dir, args)).s);
      busy = false;
      current = "idle";
    }
  } finally {
    instance.stop();
  }
  const result = await done;
  const st = s ? await s.finished : undefined;
  const version = /^chunk 0 (\S+)/.exec(s?.first ?? "")?.[1];
  const intact = st && version !== undefined && st.status === 200 && st.complete && st.body === `${Array.from({ length: STREAM_CHUNKS }, (_, i) => `chunk ${i} ${version}\n`).join("")}end ${version}\n`;
  const lat = (b) => samples.filter((x) => x.busy === b).map((x) => x.ms);
  return {
    requests: result.requests.total,
    ok: result["2xx"],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    idleP99: percentile(lat(false), 99),
    busyP99: percentile(lat(true), 99),
    busyCount: lat(true).length,
    spread: `p50 ${percentile(lat(false), 50).toFixed(1)} → ${percentile(lat(true), 50).toFixed(1)} ms, max ${Math.max(...lat(false)).toFixed(0)} → ${Math.max(...lat(true)).toFixed(0)} ms`,
    slow: samples.filter((x) => x.ms > 500).map((x) => `${x.op}@${((x.at - t0) / 1000).toFixed(1)}s:${x.ms.toFixed(0)}`),
    marks,
    failedIn: [...new Set(samples.filter((x) => x.status < 200 || x.status > 299).map((x) => x.op))].map((op) => `${op}: ${samples.filter((x) => x.op === op && (x.status < 200 || x.status > 299)).length}`),
    stream: intact ? "intact" : st ? `cut: ${st.status}, ${st.body.split("\n").filter((l) => l.startsWith("chunk")).length} of ${STREAM_CHUNKS} chunks${st.body.includes("end ") ? ", end" : ", no end"}` : "not run",
    opMedian: [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)],
  };
}

/** 10 deploys and a rollback after the 4th and the 8th. */
function ops(prefix, cfg) {
  const list = [];
  for (let i = 1; i <= 10; i++) {
    list.push(["deploy", "--version", `${prefix}${i}`, ...(cfg ? ["-c", cfg] : [])]);
    if (i === 4 || i === 8) list.push(["rollback", ...(cfg ? ["-c", cfg] : [])]);
  }
  return list;
}

const tmp = tempDir("togo-bench-zd-");
const { startSystemdHost } = await systemdHosts(tmp);
const host = await startSystemdHost();
try {
  console.log(`machine: ${machine()}\ndate: ${new Date().toISOString()}`);
  const dir = join(tmp, "app");
  mkdirSync(dir);
  copyFileSync(join(ROOT, "test", "fixtures", "streamer.js"), join(dir, "server.js"));
  writeFileSync(join(dir, "togo.yaml"), yaml(host));
  writeFileSync(join(dir, "stream.yaml"), yaml(host, { drain: 15 }));
  writeFileSync(join(dir, "restart.yaml"), yaml(host, { strategy: "restart" }));
  await cli(dir, ["provision", "--yes"]);
  const first = await cli(dir, ["deploy", "--version", "b0"]);
  if (!first.stderr.includes("strategy: blue-green")) throw new Error(`auto did not choose blue-green:\n${first.stderr}`);

  // The deploy the stream spans (the third) gets a 15 s drain: the stream lasts 10 s.
  const bg = await underLoad(host, dir, ops("b"), 2, "stream.yaml");
  await cli(dir, ["deploy", "-c", "restart.yaml", "--version", "r0"]); // the move to restart-style, before the load
  const rs = await underLoad(host, dir, ops("r", "restart.yaml"), 2, undefined);

  const row = (name, r) =>
    `| ${name} | ${r.requests} | ${r.non2xx} | ${r.errors} (${r.timeouts} timeouts) | ${r.idleP99.toFixed(1)} ms | ${r.busyP99.toFixed(1)} ms (${r.busyCount} responses) | ${(r.busyP99 / r.idleP99).toFixed(2)}× | ${r.stream} | ${r.opMedian.toFixed(2)} s |`;
  console.log(`\n## zero downtime through Caddy: ${RATE} req/s during 10 deploys + 2 rollbacks, real systemd host`);
  console.log("| strategy | requests | non-2xx | errors | p99 idle | p99 during deploys | ratio | 10 s stream across deploy 3 | median deploy/rollback |");
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |");
  console.log(row("auto → blue-green (drain 2 s)", bg));
  console.log(row("restart", rs));
  for (const [name, r] of [["blue-green", bg], ["restart", rs]]) console.log(`${name}: idle → during deploys ${r.spread}`);
  if (process.env.BENCH_VERBOSE) for (const r of [bg, rs]) console.log(`ops: ${r.marks.join(", ")}\nslow: ${r.slow.join(" ")}`);
  for (const [name, r] of [["blue-green", bg], ["restart", rs]]) if (r.failedIn.length) console.log(`${name}: non-2xx during ${r.failedIn.join(", ")}`);
  console.log(`\ntarget: blue-green 0 errors and 0 non-2xx — ${bg.errors === 0 && bg.non2xx === 0 ? "met" : "MISSED"}; restart recorded ${rs.errors + rs.non2xx} failures`);
} finally {
  await host.stop();
  rmSync(tmp, { recursive: true, force: true });
}
