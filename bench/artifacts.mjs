// A big directory artifact over a real sshd on loopback: 30,000 files (about 300 MB of random
// bytes, a tiny server.js among them) deployed with the vps driver through the built CLI.
// Measured in one run: the first deploy (time, bytes); unchanged redeploys under the same version
// (the digest cache at work) against two baselines: the same redeploy by the CLI built from the
// commit before this work (BENCH_BASELINE_REF), and with the digest cache removed before each
// one; the unchanged artifact under new versions (install by hard links, prune); a one-file
// change (bytes sent against the first deploy's); the tree's digest computed as before (a read
// stream per file) against the cached one; and install by `cp -al` against `cp -R` on the host.
// Beside the unchanged redeploys, run by run, the same redeploy of a one-file artifact (an app of
// just server.js on the same sshd): the difference is what the 30,000 files cost, whatever else
// loads the machine.
// Targets: unchanged redeploy ≤ 1.5 s; a one-file change sends ≤ 1 % of the first deploy's bytes.
// healthcheck.settle is 0 here: the settle window (2 s by default) is time a deploy waits on
// purpose, the same with any artifact. Needs root (useradd) and openssh-server.
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { readdir, readlink, stat } from "node:fs/promises";
import { loadavg } from "node:os";
import { join } from "node:path";
import { BIN, ROOT, benchEnv, freePort, machine, median, report, startSshd, tempDir } from "./lib.mjs";

const FILES = Number(process.env.BENCH_FILES ?? 30000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
/** The last commit before the digest cache and incremental uploads. */
const BASELINE_REF = process.env.BENCH_BASELINE_REF ?? "95b6108";

const SERVER = `const http = require("node:http");
http.createServer((q, s) => s.end(q.url === "/up" ? "ok\\n" : "big " + process.env.TOGO_VERSION + "\\n")).listen(+process.env.PORT, "127.0.0.1");
`;

/** 30,000 files in 60×8 folders: 6 of 20 MiB, the rest 1–11 KiB; random bytes (nothing compresses). */
function generate(dist) {
  let bytes = 0;
  for (let i = 0; i < FILES - 1; i++) {
    const d = join(dist, "assets", `p${i % 60}`, `q${i % 8}`);
    if (i < 480) mkdirSync(d, { recursive: true });
    const size = i < 6 ? 20 * 2 ** 20 : 1024 + ((i * 2654435761) % 10240);
    writeFileSync(join(d, `f${i}.bin`), randomBytes(size));
    bytes += size;
  }
  writeFileSync(join(dist, "server.js"), SERVER);
  return bytes + SERVER.length;
}

/** The digest as computed before the cache: every file read through a stream of its own. */
async function digestAsBefore(path) {
  const file = async (p) => {
    const h = createHash("sha256");
    for await (const chunk of createReadStream(p)) h.update(chunk);
    return h.digest("hex");
  };
  const h = createHash("sha256");
  const walk = async (dir, rel) => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const full = join(dir, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isSymbolicLink()) h.update(`l ${r} ${await readlink(full)}\n`);
      else if (e.isDirectory()) {
        h.update(`d ${r}\n`);
        await walk(full, r);
      } else h.update(`f ${r} ${((await stat(full)).mode & 0o111) !== 0 ? "x" : "-"} ${await file(full)}\n`);
    }
  };
  await walk(path, "");
  return h.digest("hex");
}

/** The CLI as built from `ref` (read with git archive, built in a temp dir), or undefined when the ref is not here. */
function previousBuild(ref, into) {
  const r = spawnSync("sh", ["-c", `git -C '${ROOT}' archive '${ref}' | tar -x -C '${into}'`], { encoding: "utf8" });
  if (r.status !== 0) return undefined;
  symlinkSync(join(ROOT, "node_modules"), join(into, "node_modules"));
  const b = spawnSync(process.execPath, [join(into, "scripts", "build.mjs")], { cwd: into, encoding: "utf8" });
  return b.status === 0 ? join(into, "bin", "togo.js") : undefined;
}

function deploy(cwd, version, bin = BIN) {
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [bin, "deploy", "--version", version, "--json"], { cwd, encoding: "utf8", env: benchEnv() });
  const s = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`togo deploy --version ${version} failed (${r.status}):\n${r.stderr}`);
  const stages = Object.fromEntries([...r.stderr.matchAll(/✓ (\S+)\s+(\d+(?:\.\d+)?)(ms|s)/g)].map(([, n, v, u]) => [n, Number(v) / (u === "ms" ? 1000 : 1)]));
  return { s, raw: JSON.parse(r.stdout).raw, stages };
}

function timedSh(script) {
  const start = process.hrtime.bigint();
  const r = spawnSync("sh", ["-c", script], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${script} failed:\n${r.stderr}`);
  return Number(process.hrtime.bigint() - start) / 1e9;
}

const mb = (b) => `${(b / 1e6).toFixed(1)} MB`;
const sshd = await startSshd();
const dir = tempDir("togo-bench-artifacts-");
const old = tempDir("togo-bench-baseline-");
const small = tempDir("togo-bench-small-");
try {
  const oldBin = previousBuild(BASELINE_REF, old);
  console.log(`machine: ${machine()}\ndate: ${new Date().toISOString()}`);
  const appPort = await freePort();
  const size = generate(join(dir, "dist"));
  console.log(`artifact: ${FILES} files, ${mb(size)}; load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  const config = (app, port) =>
    `app: ${app}\ndeploy:\n  provider: vps\n  host: 127.0.0.1\n  port: ${sshd.port}\n  user: ${sshd.user}\n  identity_file: ${sshd.identityFile}\n  known_hosts: ${sshd.knownHosts}\n  binary: dist\n  run: node dist/server.js\n  app_port: ${port}\n  healthcheck: { path: /up, timeout: 20, interval: 0.05, settle: 0 }\n`;
  writeFileSync(join(dir, "togo.yaml"), config("big", appPort));
  mkdirSync(join(small, "dist"));
  writeFileSync(join(small, "dist", "server.js"), SERVER);
  writeFileSync(join(small, "togo.yaml"), config("small", await freePort()));
  const cacheDir = join(dir, ".togo", "cache");

  const first = deploy(dir, "1");
  deploy(small, "1");
  const same = [];
  const tiny = [];
  for (let i = 0; i < RUNS + 2; i++) {
    same.push(deploy(dir, "1"));
    tiny.push(deploy(small, "1"));
  }
  const previous = [];
  for (let i = 0; oldBin && i < 3; i++) previous.push(deploy(dir, "1", oldBin));
  const cold = [];
  for (let i = 0; i < Math.max(3, RUNS - 2); i++) {
    rmSync(cacheDir, { recursive: true, force: true });
    cold.push(deploy(dir, "1"));
  }
  const fresh = [];
  for (let i = 0; i < RUNS; i++) fresh.push(deploy(dir, `n${i}`));
  const changes = [];
  for (let i = 0; i < 3; i++) {
    writeFileSync(join(dir, "dist", "assets", `p${10 + i}`, `q${(10 + i) % 8}`, `f${10 + i}.bin`), randomBytes(4096));
    changes.push(deploy(dir, `c${i}`));
  }

  let start = process.hrtime.bigint();
  await digestAsBefore(join(dir, "dist"));
  const before = Number(process.hrtime.bigint() - start) / 1e9;

  // Install as it was (a copy) against as it is (hard links), on the host's own upload.
  const appDir = join(sshd.home, "apps", "big");
  const upload = join(appDir, ".uploads", changes.at(-1).raw.sha256);
  const scratch = join(appDir, ".bench-install");
  const copies = [];
  const links = [];
  for (let i = 0; i < 3; i++) {
    copies.push(timedSh(`cp -R '${upload}' '${scratch}'`));
    rmSync(scratch, { recursive: true, force: true });
    links.push(timedSh(`cp -al '${upload}' '${scratch}'`));
    rmSync(scratch, { recursive: true, force: true });
  }

  const m = {
    first: first.s,
    same: median(same.map((r) => r.s)),
    tiny: median(tiny.map((r) => r.s)),
    /** What the big tree adds to a redeploy: run-by-run differences against the one-file app. */
    extra: median(same.map((r, i) => r.s - tiny[i].s)),
    digest: median(same.map((r) => r.raw.artifact.ms)),
    previous: previous.length ? median(previous.map((r) => r.s)) : 0,
    cold: median(cold.map((r) => r.s)),
    fresh: median(fresh.map((r) => r.s)),
    change: median(changes.map((r) => r.s)),
    before,
    copy: median(copies),
    link: median(links),
  };
  const re = same.at(-1).raw;
  const ch = changes.map((r) => r.raw);
  const changeBytes = median(ch.map((r) => r.bytes));
  const share = changeBytes / first.raw.bytes;
  const stage = (runs, name) => median(runs.map((r) => r.stages[name] ?? 0)).toFixed(2);
  report(`a ${FILES}-file directory artifact (${mb(size)}) over a loopback sshd`, [
    { name: `first deploy (${mb(first.raw.bytes)} sent, ${first.raw.files} files; digest ${(first.raw.artifact.ms / 1000).toFixed(2)} s, upload ${stage([first], "upload")} s)`, median: m.first, runs: 1 },
    {
      name: `redeploy, unchanged artifact, same version (${re.bytes} bytes sent, ${re.artifact.hashedFiles} files read, digest ${(m.digest / 1000).toFixed(2)} s during connect)`,
      median: m.same,
      runs: same.length,
      target: "≤ 1.5 s",
    },
    {
      name: "baseline: the same redeploy of a one-file artifact, alternating run by run with the one above",
      median: m.tiny,
      runs: tiny.length,
      ratio: `the ${FILES} files add ${m.extra.toFixed(3)} s (median of the run-by-run differences)`,
    },
    ...(previous.length
      ? [{ name: `baseline: the same redeploy by the CLI built from ${BASELINE_REF} (build ${stage(previous, "build")} s)`, median: m.previous, runs: previous.length, ratio: `${(m.previous / m.same).toFixed(1)}× the cached redeploy` }]
      : []),
    {
      name: `baseline: the same redeploy with the digest cache removed first (digest ${(median(cold.map((r) => r.raw.artifact.ms)) / 1000).toFixed(2)} s)`,
      median: m.cold,
      runs: cold.length,
      ratio: `${(m.cold / m.same).toFixed(1)}× the cached redeploy`,
    },
    { name: `redeploy, unchanged artifact, new version (install ${stage(fresh, "install")} s, prune ${stage(fresh, "prune")} s)`, median: m.fresh, runs: fresh.length },
    {
      name: `one-file change (${ch.map((r) => `${r.bytes} bytes/${r.files} file`).join(", ")} sent; upload ${stage(changes, "upload")} s, install ${stage(changes, "install")} s)`,
      median: m.change,
      runs: changes.length,
      ratio: `${(share * 100).toFixed(2)} % of the first deploy's bytes`,
      target: "≤ 1 % of the bytes",
    },
    { name: "digest of the tree as before (a read stream per file, in the bench's process)", median: m.before, runs: 1, ratio: `${((m.before * 1000) / m.digest).toFixed(0)}× the cached digest` },
    { name: `install as a copy: cp -R of the upload on the host`, median: m.copy, runs: copies.length },
    { name: `install as hard links: cp -al of the upload on the host`, median: m.link, runs: links.length, ratio: `${(m.copy / m.link).toFixed(1)}× faster than the copy` },
  ]);
  const names = Object.keys(same.at(-1).stages);
  console.log(`\nunchanged redeploy, stage medians: ${names.map((n) => `${n} ${stage(same, n)} s`).join(", ")}`);
  console.log(`the one-file artifact's: ${names.map((n) => `${n} ${stage(tiny, n)} s`).join(", ")}`);
  console.log(`load average at the end: ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  const fails = [];
  if (m.same > 1.5) fails.push(`unchanged redeploy median ${m.same.toFixed(3)} s > 1.5 s`);
  if (share > 0.01) fails.push(`a one-file change sent ${(share * 100).toFixed(2)} % of the first deploy's bytes > 1 %`);
  if (same.some((r) => r.raw.bytes !== 0 || r.raw.uploaded)) fails.push("an unchanged redeploy sent bytes");
  if (ch.some((r) => r.files !== 1)) fails.push(`a one-file change sent ${ch.map((r) => r.files).join(", ")} files`);
  console.log(fails.length ? `\nMISSED: ${fails.join("; ")}` : "\nall targets met");
  if (fails.length) process.exitCode = 1;
} finally {
  await sshd.stop();
  rmSync(dir, { recursive: true, force: true });
  rmSync(old, { recursive: true, force: true });
  rmSync(small, { recursive: true, force: true });
}
