// Interrupting a vps deploy at every stage, with SIGINT (Ctrl-C) and SIGKILL (kill -9), against a
// real sshd: afterwards what `togo status` says is what serves, .versions/.failed agree with it, no
// process of togo's is left on either side (the SSH master dies with togo even after kill -9, and
// remote commands die with their session), and the next deploy succeeds — after `togo lock
// release` when the holder was killed, which the lock message says.
import { chmodSync, cpSync, existsSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { execa } from "execa";
import { BIN, cleanupTempDirs, EXAMPLE, freePort, tempDir, testEnv, togo, type CliResult } from "../helpers/index.js";
import { startSshd, type Sshd } from "../helpers/sshd.js";
import { describeProc, pgid } from "../helpers/procs.js";
import { startSiteCaddy, type SiteCaddy } from "../helpers/caddy.js";

let sshd: Sshd;
let dir: string;
let appPort: number;
let appDir: string;
let holdDir: string;
/** TMPDIR of this file's togo runs: its SSH control directories are told apart from a parallel suite's. */
let togoTmp: string;
let n = 1;
const env = () => ({ TMPDIR: togoTmp });

const yaml = (extra = "") => `app: intr
deploy:
${sshd.deployKeys}
  binary: server.js
  run: "sleep 0.3 && exec node server.js"
  app_port: ${appPort}
  app_dir: ~/apps/intr
  build_cmd: "while [ -e ${holdDir}/build ]; do sleep 0.05; done"
  release_cmd: "while [ -e ${holdDir}/release ]; do sleep 0.05; done"
  healthcheck: { path: /up, timeout: 10, interval: 0.1, settle: 0.5 }
${extra}`;

function ok(r: CliResult, what: string): CliResult {
  if (r.exitCode !== 0) throw new Error(`${what}: togo exited ${r.exitCode}\n--- stderr ---\n${r.stderr}\n--- stdout ---\n${r.stdout}`);
  return r;
}
const serving = async (): Promise<string | undefined> => {
  try {
    return /^hello from (\S+)$/.exec((await (await fetch(`http://127.0.0.1:${appPort}/`)).text()).trim())?.[1];
  } catch {
    return undefined;
  }
};
/** Process group ids of what togo runs on purpose on the host: the app, and a candidate a killed deploy left. */
const groups = (names: string[]) =>
  names.flatMap((name) => {
    try {
      return [Number(readFileSync(join(appDir, "run", `${name}.pid`), "utf8").trim())];
    } catch {
      return [];
    }
  });
/** The host's processes of the deploy user that belong to none of `allowed`'s groups. */
const strays = (allowed: string[]) => {
  const ok = new Set(groups(allowed));
  return sshd.userPids().filter((p) => !ok.has(pgid(p)) && pgid(p) !== -1);
};
/** This file's togo processes on this side: the SSH master and clients run with a control path under its TMPDIR. */
const localStrays = () =>
  readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, "utf8").includes(join(togoTmp, "togo-ssh-"));
      } catch {
        return false;
      }
    })
    .map(Number);
/** Polls until `cond` holds or the deadline passes (processes a killed run leaves take a moment to go). */
async function until(cond: () => boolean, ms = 8000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

beforeAll(async () => {
  sshd = await startSshd();
  appPort = await freePort();
  dir = tempDir("togo-intr-");
  holdDir = tempDir("togo-intr-hold-");
  togoTmp = tempDir("togo-intr-tmp-");
  chmodSync(holdDir, 0o755);
  appDir = join(sshd.home, "apps", "intr");
  cpSync(join(EXAMPLE, "server.js"), join(dir, "server.js"));
  writeFileSync(join(dir, "togo.yaml"), yaml());
  writeFileSync(join(dir, "slow-upload.yaml"), yaml("  options: { bwlimit: 1 }\n"));
  ok(await togo(["deploy", "--version", "1"], { cwd: dir, env: env() }), "first deploy");
  expect(await serving()).toBe("1");
}, 120_000);

afterAll(async () => {
  await sshd?.stop();
  cleanupTempDirs();
});

// Where to stop: after the line of the stage before it (holds keep build and release running).
const STAGES: [stage: string, after: string | undefined][] = [
  ["connect", undefined],
  ["build", "connect"],
  ["lock", "build"],
  ["upload", "lock"],
  ["install", "upload"],
  ["release", "install"],
  ["verify", "release"],
  ["switch", "verify"],
  ["record", "switch"],
  ["prune", "record"],
];
const CASES = STAGES.flatMap(([stage, after]) => (["SIGINT", "SIGKILL"] as const).map((signal) => [stage, signal, after] as const));

test.each(CASES)("%s, interrupted with %s: status says what serves, no process left behind, the next deploy works", async (stage, signal, after) => {
  const version = String(++n);
  // A new artifact each time (so upload has work to do), padded so a 1 KiB/s upload takes a while.
  writeFileSync(join(dir, "server.js"), `${readFileSync(join(EXAMPLE, "server.js"), "utf8")}\n// ${version} ${"x".repeat(stage === "upload" ? 4000 : 10)}\n`);
  if (stage === "build") writeFileSync(join(holdDir, "build"), "");
  if (stage === "release") writeFileSync(join(holdDir, "release"), "");
  const cfg = stage === "upload" ? "slow-upload.yaml" : "togo.yaml";
  const run = execa(process.execPath, [BIN, "deploy", "-c", cfg, "--version", version], { cwd: dir, env: testEnv(env()), extendEnv: false, reject: false });
  let err = "";
  run.stderr?.on("data", (d) => (err += d));
  const marker = after ? new RegExp(`✓ ${after}\\s`) : /✓ secrets/;
  while (!marker.test(err) && run.exitCode === null) await new Promise((r) => setTimeout(r, 5));
  // In verify, only once the candidate runs (so stopping it is what is checked).
  const candidateRuns = () => groups(["candidate"]).some((g) => g > 1 && existsSync(`/proc/${g}`));
  if (stage === "verify") while (!candidateRuns() && run.exitCode === null) await new Promise((r) => setTimeout(r, 5));
  // The stray check below sees togo's connection while it runs (so an empty list after it means gone).
  if (stage !== "connect" && run.exitCode === null) expect(localStrays().length).toBeGreaterThan(0);
  run.kill(signal);
  rmSync(join(holdDir, "build"), { force: true });
  rmSync(join(holdDir, "release"), { force: true });
  const r = await run;
  const context = `stage ${stage}, ${signal}\n--- togo said ---\n${r.stderr}`;
  const fail = (what: string) => {
    throw new Error(`${what}\n${context}`);
  };
  // Ctrl-C fails the deploy (130) unless it had already finished (then the new release serves, below).
  const finished = r.exitCode === 0;
  if (signal === "SIGINT" && !finished && r.exitCode !== 130) fail(`exit ${r.exitCode}, not 130`);

  // Nothing of togo's is left on this side, and on the host only the app; after kill -9 also a
  // candidate may be left (the next deploy must stop it, below), never after Ctrl-C.
  const allowed = signal === "SIGKILL" ? ["app", "candidate"] : ["app"];
  if (!(await until(() => localStrays().length === 0))) fail(`togo's processes left on this side:\n${localStrays().map(describeProc).join("\n")}`);
  if (!(await until(() => strays(allowed).length === 0))) fail(`processes left on the host:\n${strays(allowed).map(describeProc).join("\n")}`);
  const leftCandidate = groups(["candidate"]).filter((g) => g > 1 && existsSync(`/proc/${g}`));
  if (signal === "SIGINT" && leftCandidate.length > 0) fail(`a candidate is left running after Ctrl-C: ${leftCandidate.map(describeProc).join(", ")}`);

  // What status says is what serves; the records agree with it.
  const live = await serving();
  const s = JSON.parse((await togo(["status", "--json"], { cwd: dir, env: env() })).stdout);
  expect({ status: s.version, state: s.state, live, context }).toMatchObject({ status: live, state: "ready" });
  const current = readlinkSync(join(appDir, "current")).slice(1);
  expect(current).toBe(live);
  const releases = JSON.parse((await togo(["releases", "--json"], { cwd: dir, env: env() })).stdout) as { version: string; current: boolean }[];
  expect({ first: releases[0], context }).toMatchObject({ first: { version: live, current: true } });
  const failed = existsSync(join(appDir, ".failed")) ? readFileSync(join(appDir, ".failed"), "utf8").split("\n") : [];
  expect(failed).not.toContain(live);
  if (finished) expect({ live, context }).toMatchObject({ live: version });
  if (signal === "SIGINT") {
    // Ctrl-C leaves the records consistent with what serves, and says what serves.
    const versions = readFileSync(join(appDir, ".versions"), "utf8").split("\n");
    expect({ newest: versions[0], context }).toMatchObject({ newest: live });
    if (!finished) expect({ said: new RegExp(`serving on \\S+: release ${live}\\b`).test(r.stderr), context }).toMatchObject({ said: true });
    // The switched-to release is live: it is not called unverified, let alone stopped (#6).
    if (live === version) expect({ unverified: r.stderr.includes("stopping the unverified release"), context }).toMatchObject({ unverified: false });
  }

  // The next deploy works; a lock left by a killed deploy is named as such and broken by hand.
  const next = `${version}b`;
  let d = await togo(["deploy", "--version", next], { cwd: dir, env: env() });
  const held = d.exitCode !== 0 && d.stderr.includes("another deploy of intr holds the lock");
  // kill -9 once the lock is taken (upload on) leaves it held; the message says how to break it.
  const lockTaken = STAGES.findIndex(([s]) => s === stage) >= STAGES.findIndex(([s]) => s === "upload");
  if (signal === "SIGKILL" && !finished && lockTaken && stage !== "prune") expect({ held, context, next: d.stderr }).toMatchObject({ held: true });
  if (held) {
    expect({ signal, context, next: d.stderr }).toMatchObject({ signal: "SIGKILL" });
    expect(d.stderr).toContain("is no longer running: a deploy was killed");
    expect(d.stderr).toContain("togo lock release");
    ok(await togo(["lock", "release"], { cwd: dir, env: env() }), "lock release");
    d = await togo(["deploy", "--version", next], { cwd: dir, env: env() });
  }
  ok(d, `the deploy after ${context}`);
  expect(await serving()).toBe(next);
  // A candidate a killed deploy left is gone now: the next deploy stopped it (its group, whole).
  if (!(await until(() => strays(["app"]).length === 0))) fail(`processes left on the host after the next deploy:\n${strays(["app"]).map(describeProc).join("\n")}`);
  for (const g of leftCandidate) if (existsSync(`/proc/${g}`) && pgid(g) === g) fail(`the candidate ${describeProc(g)} a killed deploy left still runs after the next deploy`);
});

// Blue-green behind a real Caddy (the site written over SSH, Caddy reloaded as the deploy user): the
// stages where the instances and the front move. Each release runs on its own port (run/slot-PORT.pid).
describe("blue-green behind Caddy", () => {
  let caddy: SiteCaddy | undefined;
  let httpPort: number;
  let sites: string;
  const bgDir = () => join(sshd.home, "apps", "intrbg");
  const viaCaddy = (): Promise<string | undefined> =>
    new Promise((resolve) => {
      const req = request({ host: "127.0.0.1", port: httpPort, path: "/", headers: { host: "intrbg.localhost" } }, (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve(res.statusCode === 200 ? /^hello from (\S+)$/.exec(body.trim())?.[1] : undefined));
      });
      req.on("error", () => resolve(undefined));
      req.end();
    });
  /** Process groups of the instances togo runs on purpose: every slot, or only the live one. */
  const slots = (onlyLive: boolean) => {
    const run = join(bgDir(), "run");
    const live = existsSync(join(run, "live.port")) ? readFileSync(join(run, "live.port"), "utf8").trim() : "";
    return readdirSync(run)
      .filter((f) => /^slot-\d+\.pid$/.test(f) && (!onlyLive || f === `slot-${live}.pid`))
      .map((f) => Number(readFileSync(join(run, f), "utf8").trim()));
  };
  const bgStrays = (onlyLive: boolean) => {
    const ok = new Set([...slots(onlyLive), ...groups(["app"])]);
    return sshd.userPids().filter((p) => !ok.has(pgid(p)) && pgid(p) !== -1);
  };

  beforeAll(async () => {
    caddy = await startSiteCaddy(sshd.uid);
    ({ httpPort, sites } = caddy);
    const { caddyfile } = caddy;
    const bg = `${yaml().replace("app: intr", "app: intrbg").replace("app_dir: ~/apps/intr", "app_dir: ~/apps/intrbg").replace(`app_port: ${appPort}`, `app_port: ${await freePort()}`)}  domain: intrbg.localhost
  strategy: blue-green
  drain: 1
  options: { https: false, caddy_dir: ${sites}, caddyfile: ${caddyfile} }
`;
    writeFileSync(join(dir, "bg.yaml"), bg);
    ok(await togo(["deploy", "-c", "bg.yaml", "--version", "1"], { cwd: dir, env: env() }), "first blue-green deploy");
    expect(await viaCaddy()).toBe("1");
  }, 120_000);

  afterAll(() => caddy?.stop());

  const BG = (["verify", "switch", "record"] as const).flatMap((stage) => (["SIGINT", "SIGKILL"] as const).map((signal) => [stage, signal] as const));
  const before = { verify: "release", switch: "verify", record: "switch" } as const;

  test.each(BG)("%s, interrupted with %s: Caddy serves what status says, no instance but the live one left, the next deploy works", async (stage, signal) => {
    const version = `bg${++n}`;
    writeFileSync(join(dir, "server.js"), `${readFileSync(join(EXAMPLE, "server.js"), "utf8")}\n// ${version}\n`);
    const run = execa(process.execPath, [BIN, "deploy", "-c", "bg.yaml", "--version", version], { cwd: dir, env: testEnv(env()), extendEnv: false, reject: false });
    let err = "";
    run.stderr?.on("data", (d) => (err += d));
    const marker = new RegExp(`✓ ${before[stage]}\\s`);
    while (!marker.test(err) && run.exitCode === null) await new Promise((r) => setTimeout(r, 5));
    // In verify, only once the new instance runs beside the live one.
    if (stage === "verify") while (slots(false).filter((g) => existsSync(`/proc/${g}`)).length < 2 && run.exitCode === null) await new Promise((r) => setTimeout(r, 5));
    run.kill(signal);
    const r = await run;
    const context = `blue-green, stage ${stage}, ${signal}\n--- togo said ---\n${r.stderr}`;
    const fail = (what: string) => {
      throw new Error(`${what}\n${context}`);
    };
    if (!marker.test(r.stderr)) fail(`togo never printed ✓ ${before[stage]}`);
    const finished = r.exitCode === 0;
    if (signal === "SIGINT" && !finished && r.exitCode !== 130) fail(`exit ${r.exitCode}, not 130`);

    // After Ctrl-C only the live instance is left (the old one once its 1 s drain is over); after
    // kill -9 a verified instance may be left too, which the next deploy stops.
    if (!(await until(() => localStrays().length === 0))) fail(`togo's processes left on this side:\n${localStrays().map(describeProc).join("\n")}`);
    const onlyLive = signal === "SIGINT";
    if (!(await until(() => bgStrays(onlyLive).length === 0, 15_000))) fail(`processes left on the host:\n${bgStrays(onlyLive).map(describeProc).join("\n")}`);

    const live = await viaCaddy();
    const s = JSON.parse((await togo(["status", "-c", "bg.yaml", "--json"], { cwd: dir, env: env() })).stdout);
    if (s.version !== live || s.state !== "ready") fail(`status says ${s.state} ${s.version} (${s.message}); Caddy serves ${live}; run/: ${readdirSync(join(bgDir(), "run")).join(" ")}; site: ${readdirSync(sites).map((f) => readFileSync(join(sites, f), "utf8")).join("")}`);
    expect({ current: readlinkSync(join(bgDir(), "current")).slice(1), context }).toMatchObject({ current: live });
    const failed = existsSync(join(bgDir(), ".failed")) ? readFileSync(join(bgDir(), ".failed"), "utf8").split("\n") : [];
    expect({ failed, context }).not.toMatchObject({ failed: expect.arrayContaining([live]) });
    if (finished) expect({ live, context }).toMatchObject({ live: version });
    if (signal === "SIGINT") {
      expect({ newest: readFileSync(join(bgDir(), ".versions"), "utf8").split("\n")[0], context }).toMatchObject({ newest: live });
      if (!finished) expect({ said: new RegExp(`serving on \\S+: release ${live}\\b`).test(r.stderr), context }).toMatchObject({ said: true });
      if (live === version) expect({ unverified: r.stderr.includes("stopping the unverified release"), context }).toMatchObject({ unverified: false });
    }

    const next = `${version}n`;
    let d = await togo(["deploy", "-c", "bg.yaml", "--version", next], { cwd: dir, env: env() });
    const held = d.exitCode !== 0 && d.stderr.includes("holds the lock");
    if (signal === "SIGKILL" && !finished) expect({ held, context, next: d.stderr }).toMatchObject({ held: true });
    if (held) {
      expect({ signal, context }).toMatchObject({ signal: "SIGKILL" });
      expect(d.stderr).toContain("togo lock release");
      ok(await togo(["lock", "release", "-c", "bg.yaml"], { cwd: dir, env: env() }), "lock release");
      d = await togo(["deploy", "-c", "bg.yaml", "--version", next], { cwd: dir, env: env() });
    }
    ok(d, `the deploy after ${context}`);
    expect(await viaCaddy()).toBe(next);
    if (!(await until(() => bgStrays(true).length === 0, 15_000))) fail(`instances left after the next deploy:\n${bgStrays(true).map(describeProc).join("\n")}`);
  });
});
