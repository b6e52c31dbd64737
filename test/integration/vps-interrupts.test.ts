// Interrupting a vps deploy at every stage, with SIGINT (Ctrl-C) and SIGKILL (kill -9), against a
// real sshd: afterwards what `togo status` says is what serves, .versions/.failed agree with it, no
// process of togo's is left on either side (the SSH master dies with togo even after kill -9, and
// remote commands die with their session), and the next deploy succeeds — after `togo lock
// release` when the holder was killed, which the lock message says.
import { chmodSync, cpSync, existsSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "@jest/globals";
import { execa } from "execa";
import { BIN, cleanupTempDirs, EXAMPLE, freePort, tempDir, testEnv, togo, type CliResult } from "../helpers/index.js";
import { startSshd, type Sshd } from "../helpers/sshd.js";

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
const pgid = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
  } catch {
    return -1;
  }
};
const describeProc = (pid: number) => {
  try {
    return `${pid}: ${readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ")}`;
  } catch {
    return `${pid}: (gone)`;
  }
};
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
  if (signal === "SIGINT" && r.exitCode !== 0 && r.exitCode !== 130) fail(`exit ${r.exitCode}, not 130`);

  // Nothing of togo's is left on this side, and on the host only the app (and, after kill -9, a candidate).
  if (!(await until(() => localStrays().length === 0))) fail(`togo's processes left on this side:\n${localStrays().map(describeProc).join("\n")}`);
  if (!(await until(() => strays(["app", "candidate"]).length === 0))) fail(`processes left on the host:\n${strays(["app", "candidate"]).map(describeProc).join("\n")}`);

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

  // The next deploy works; a lock left by a killed deploy is named as such and broken by hand.
  const next = `${version}b`;
  let d = await togo(["deploy", "--version", next], { cwd: dir, env: env() });
  if (d.exitCode !== 0 && d.stderr.includes("another deploy of intr holds the lock")) {
    expect({ stderr: d.stderr, signal }).toMatchObject({ signal: "SIGKILL" });
    expect(d.stderr).toContain("is no longer running: a deploy was killed");
    expect(d.stderr).toContain("togo lock release");
    ok(await togo(["lock", "release"], { cwd: dir, env: env() }), "lock release");
    d = await togo(["deploy", "--version", next], { cwd: dir, env: env() });
  }
  ok(d, `the deploy after ${context}`);
  expect(await serving()).toBe(next);
  // A candidate a killed deploy left is gone now.
  if (!(await until(() => strays(["app"]).length === 0))) fail(`processes left on the host after the next deploy:\n${strays(["app"]).map(describeProc).join("\n")}`);
});
