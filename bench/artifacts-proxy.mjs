// The build proxy serving artifacts: `togo artifacts serve` (built CLI) on loopback with an fs store,
// a bare git repository whose build writes 50 MB of random bytes.
// 1. Throughput: 100 parallel downloads of the 50 MB artifact (GET, bytes counted, one hashed and
//    checked against X-Togo-Sha256) against 100 parallel reads of the same blob from disk, same run.
// 2. Latency of a cached GET (a built 1 KB artifact): `curl` of the proxy against `curl` of the same
//    file served statically by Caddy, interleaved run by run. By tag (ls-remote at most every 2 s)
//    and by commit id (no ls-remote).
//    The same 100 downloads of the same file from Caddy's file_server are the HTTP reference.
// Targets: downloads ≥ 50 % of Caddy's throughput (server and client share the 2 cores);
// cached GET by commit id ≤ 3× Caddy's time.
import { spawn, spawnSync, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import http from "node:http";
import { BIN, benchEnv, freePort, machine, median, tempDir } from "./lib.mjs";

const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
const MB = Number(process.env.BENCH_MB ?? 50);
const PARALLEL = Number(process.env.BENCH_PARALLEL ?? 100);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const LATENCY_RUNS = Number(process.env.BENCH_LATENCY_RUNS ?? 40);

const dir = tempDir("togo-bench-proxy-");
const stops = [];
process.on("exit", () => {
  for (const s of stops) s();
  rmSync(dir, { recursive: true, force: true });
});

const gitEnv = { ...process.env, GIT_AUTHOR_NAME: "b", GIT_AUTHOR_EMAIL: "b@example.test", GIT_COMMITTER_NAME: "b", GIT_COMMITTER_EMAIL: "b@example.test" };
const git = (cwd, ...args) => execFileSync("git", args, { cwd, env: gitEnv, encoding: "utf8" }).trim();

function repo(name, files) {
  const bare = join(dir, "git", "example.test", "bench", `${name}.git`);
  const work = join(dir, "work", name);
  mkdirSync(bare, { recursive: true });
  mkdirSync(work, { recursive: true });
  git(bare, "init", "-q", "--bare", "-b", "main");
  git(work, "init", "-q", "-b", "main");
  for (const [f, c] of Object.entries(files)) writeFileSync(join(work, f), c);
  git(work, "add", "-A");
  git(work, "commit", "-q", "-m", "bench");
  git(work, "remote", "add", "origin", bare);
  git(work, "push", "-q", "origin", "HEAD:main");
  return git(work, "rev-parse", "HEAD");
}

const bigCommit = repo("big", { "togo.yaml": `app: big\ndeploy:\n  build_cmd: "mkdir -p out && head -c ${MB * 1048576} /dev/urandom > out/app"\n  binary: out/app\n` });
const smallCommit = repo("small", { "togo.yaml": `app: small\ndeploy:\n  build_cmd: "mkdir -p out && head -c 1024 /dev/urandom > out/app"\n  binary: out/app\n` });

async function startProxy() {
  const store = join(dir, "store");
  const p = spawn(process.execPath, [BIN, "artifacts", "serve", "--listen", "127.0.0.1:0", "--store", store, "--git-url", `file://${dir}/git/{remote}/{owner}/{repo}.git`, "--work-dir", join(dir, "builds")], { env: benchEnv(), stdio: ["ignore", "pipe", "inherit"] });
  stops.push(() => p.kill("SIGTERM"));
  let out = "";
  const url = await new Promise((resolve, reject) => {
    p.stdout.on("data", (c) => {
      out += c;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) resolve(m[1]);
    });
    p.on("exit", (code) => reject(new Error(`the proxy exited (${code}):\n${out}`)));
  });
  return { url, pid: p.pid, store };
}

async function build(url, path) {
  const r = await fetch(`${url}/${path}`, { method: "POST" });
  if (r.status === 200) return;
  const { build_id } = await r.json();
  for (;;) {
    const s = await (await fetch(`${url}/builds/${build_id}`)).json();
    if (s.state === "succeeded") return s;
    if (s.state === "failed") throw new Error(`build failed: ${s.error}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

async function drain(stream, hash) {
  let n = 0;
  const h = hash ? createHash("sha256") : undefined;
  for await (const c of stream) {
    n += c.length;
    h?.update(c);
  }
  return { n, sha: h?.digest("hex") };
}

/** GET with node:http (fetch's web streams would cost the client more than the servers under test). */
function get(url) {
  return new Promise((resolve, reject) => {
    http.get(url, { agent }, (res) => resolve(res)).on("error", reject);
  });
}

async function downloads(url, sha256) {
  const start = performance.now();
  const results = await Promise.all(
    Array.from({ length: PARALLEL }, async (_, i) => {
      const r = await get(url);
      if (r.statusCode !== 200) throw new Error(`GET ${url}: ${r.statusCode}`);
      const { n, sha } = await drain(r, i === 0);
      return { n, sha };
    }),
  );
  const s = (performance.now() - start) / 1000;
  const bytes = results.reduce((a, r) => a + r.n, 0);
  if (results[0].sha !== sha256) throw new Error("sha256 mismatch");
  if (bytes !== PARALLEL * MB * 1048576) throw new Error(`got ${bytes} bytes`);
  return { s, bytes };
}

async function diskReads(file) {
  const start = performance.now();
  const results = await Promise.all(Array.from({ length: PARALLEL }, () => drain(createReadStream(file))));
  const s = (performance.now() - start) / 1000;
  return { s, bytes: results.reduce((a, r) => a + r.n, 0) };
}

function curlTime(url) {
  const r = spawnSync("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", url], { encoding: "utf8" });
  const [code, t] = r.stdout.trim().split(" ");
  if (code !== "200") throw new Error(`curl ${url}: ${code}`);
  return Number(t);
}

async function startCaddy(root) {
  const port = await freePort();
  const admin = await freePort();
  const cfg = join(dir, "Caddyfile");
  writeFileSync(cfg, `{\n  auto_https off\n  admin 127.0.0.1:${admin}\n}\nhttp://127.0.0.1:${port} {\n  root * ${root}\n  file_server\n}\n`);
  const env = { ...benchEnv(), XDG_CONFIG_HOME: join(dir, "xdg-config"), XDG_DATA_HOME: join(dir, "xdg-data") };
  const p = spawn("caddy", ["run", "--config", cfg, "--adapter", "caddyfile"], { env, stdio: "ignore" });
  stops.push(() => p.kill("SIGTERM"));
  for (let i = 0; i < 200; i++) {
    const ok = spawnSync("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", `http://127.0.0.1:${port}/`], { encoding: "utf8" }).stdout;
    if (ok && ok !== "000") return `http://127.0.0.1:${port}`;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("caddy did not start");
}

const vmHWM = (pid) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;

const proxy = await startProxy();
const bigPath = `example.test/bench/big/linux/amd64/main`;
const t0 = performance.now();
const built = await build(proxy.url, bigPath);
const buildS = (performance.now() - t0) / 1000;
const blob = join(proxy.store, "artifacts", "example.test", "bench", "big", bigCommit);
const blobFile = (() => {
  const sub = execFileSync("find", [blob, "-type", "f", "-name", built.sha256], { encoding: "utf8" }).trim();
  if (!sub) throw new Error("blob not found");
  return sub;
})();

const staticRoot = join(dir, "static");
mkdirSync(staticRoot);
execFileSync("cp", [blobFile, join(staticRoot, "big")]);
const caddy = await startCaddy(staticRoot);
const head = await get(`${proxy.url}/${bigPath}`);
head.resume();
if (head.headers["x-togo-sha256"] !== built.sha256) throw new Error("X-Togo-Sha256 is not the build's sha256");

const dl = [];
const disk = [];
const caddyDl = [];
for (let i = 0; i < RUNS; i++) {
  disk.push(await diskReads(blobFile));
  dl.push(await downloads(`${proxy.url}/${bigPath}`, built.sha256));
  caddyDl.push(await downloads(`${caddy}/big`, built.sha256));
}
const gbps = (r) => r.bytes / r.s / 1e9;
const dlMed = median(dl.map(gbps));
const diskMed = median(disk.map(gbps));
const caddyDlMed = median(caddyDl.map(gbps));
const rss = vmHWM(proxy.pid);

await build(proxy.url, `example.test/bench/small/linux/amd64/main`);
const smallMeta = JSON.parse(execFileSync("sh", ["-c", `cat ${join(proxy.store, "artifacts", "example.test", "bench", "small", smallCommit)}/*/meta.json`], { encoding: "utf8" }));
execFileSync("sh", ["-c", `cp ${join(proxy.store, "artifacts", "example.test", "bench", "small", smallCommit)}/*/${smallMeta.sha256} ${join(staticRoot, "app")}`]);
const byTag = [];
const byCommit = [];
const fromCaddy = [];
for (let i = 0; i < LATENCY_RUNS; i++) {
  byTag.push(curlTime(`${proxy.url}/example.test/bench/small/linux/amd64/main`));
  byCommit.push(curlTime(`${proxy.url}/example.test/bench/small/linux/amd64/${smallCommit}`));
  fromCaddy.push(curlTime(`${caddy}/app`));
}
const p90 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)];

console.log(`\n## build proxy (bench/artifacts-proxy.mjs) — ${machine()}`);
console.log(`build of the ${MB} MB artifact (checkout + build_cmd + store): ${buildS.toFixed(2)} s`);
console.log("| measure | median | runs | ratio | target |");
console.log("| --- | ---: | ---: | ---: | --- |");
const ratio = dlMed / diskMed;
const vsCaddy = dlMed / caddyDlMed;
console.log(`| ${PARALLEL} parallel GETs of the ${MB} MB artifact (${((PARALLEL * MB) / 1024).toFixed(1)} GiB, sha256 checked on one) | ${dlMed.toFixed(2)} GB/s | ${RUNS} | ${(ratio * 100).toFixed(0)} % of disk reads; ${(vsCaddy * 100).toFixed(0)} % of Caddy | ≥ 50 % of Caddy — ${vsCaddy >= 0.5 ? "met" : "NOT met"} |`);
console.log(`| ${PARALLEL} parallel reads of the blob from disk (page cache; same run) | ${diskMed.toFixed(2)} GB/s | ${RUNS} |  |  |`);
console.log(`| ${PARALLEL} parallel GETs of the same file from Caddy 2.6 file_server (same client, same run) | ${caddyDlMed.toFixed(2)} GB/s | ${RUNS} |  |  |`);
console.log(`| server peak RSS (VmHWM) through the downloads | ${rss.toFixed(0)} MiB | 1 |  |  |`);
const cm = median(byCommit);
const km = median(byTag);
const caddyMed = median(fromCaddy);
console.log(`| cached GET, 1 KB, by commit id (curl time_total) | ${(cm * 1000).toFixed(2)} ms (p90 ${(p90(byCommit) * 1000).toFixed(2)}) | ${LATENCY_RUNS} | ${(cm / caddyMed).toFixed(2)}× Caddy | ≤ 3× — ${cm / caddyMed <= 3 ? "met" : "NOT met"} |`);
console.log(`| cached GET, 1 KB, by branch name (ls-remote at most every 2 s) | ${(km * 1000).toFixed(2)} ms (p90 ${(p90(byTag) * 1000).toFixed(2)}) | ${LATENCY_RUNS} | ${(km / caddyMed).toFixed(2)}× Caddy |  |`);
console.log(`| Caddy 2.6 file_server, same 1 KB file (curl time_total) | ${(caddyMed * 1000).toFixed(2)} ms (p90 ${(p90(fromCaddy) * 1000).toFixed(2)}) | ${LATENCY_RUNS} |  |  |`);
process.exit(0);
