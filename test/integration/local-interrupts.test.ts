// Interrupting a local deploy (provider: local, real processes) with SIGINT (Ctrl-C) and SIGKILL
// (kill -9) during release_cmd, verify, switch and a linked rsync upload: afterwards what `togo
// status` says is what serves, .versions/.failed agree with it, no process togo started is left
// (the app aside; after kill -9 also a candidate, which the next deploy stops), and the next deploy
// succeeds — after `togo lock release` when the holder was killed, which the lock message says.
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "@jest/globals";
import { execa } from "execa";
import { BIN, cleanupTempDirs, EXAMPLE, freePort, killPidFile, tempDir, testEnv, togo, type CliResult } from "../helpers/index.js";
import { describeProc, pgid } from "../helpers/procs.js";

let dir: string;
let holdDir: string;
let fakeBin: string;
let appPort: number;
let syncPort: number;
let n = 1;
/** Every process togo starts inherits this; what carries it after the run ended was left behind. */
const MARK = `LOCAL_INTR_MARK=${process.pid}-${Date.now()}`;
const env = (extra: Record<string, string> = {}) => ({ LOCAL_INTR_MARK: MARK.split("=")[1], ...extra });
const appDir = (app: string) => join(dir, ".togo", app);

const yaml = (app: string, port: number, binary: string, run: string) => `app: ${app}
deploy:
  provider: local
  strategy: restart
  binary: ${binary}
  run: "sleep 0.3 && exec ${run}"
  app_port: ${port}
  release_cmd: "while [ -e ${holdDir}/release ]; do sleep 0.05; done"
  healthcheck: { path: /up, timeout: 10, interval: 0.1, settle: 1 }
terraform: { engine: terraform }
`;

function ok(r: CliResult, what: string): CliResult {
  if (r.exitCode !== 0) throw new Error(`${what}: togo exited ${r.exitCode}\n--- stderr ---\n${r.stderr}\n--- stdout ---\n${r.stdout}`);
  return r;
}
const serving = async (port: number): Promise<string | undefined> => {
  try {
    return /^hello from (\S+)$/.exec((await (await fetch(`http://127.0.0.1:${port}/`)).text()).trim())?.[1];
  } catch {
    return undefined;
  }
};
/** The process groups of what togo runs on purpose: the app, and a candidate a killed deploy left. */
const groups = (app: string, names: string[]) =>
  names.flatMap((name) => {
    try {
      return [Number(readFileSync(join(appDir(app), "run", `${name}.pid`), "utf8").trim())];
    } catch {
      return [];
    }
  });
/** Processes carrying this file's mark that belong to none of `allowed`'s groups (the other app's app aside). */
const strays = (app: string, allowed: string[]) => {
  const keep = new Set([...groups(app, allowed), ...groups(app === "lintr" ? "lsync" : "lintr", ["app"])]);
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .map(Number)
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/environ`, "utf8").split("\0").includes(MARK) && !keep.has(pgid(p));
      } catch {
        return false;
      }
    });
};
async function until(cond: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

beforeAll(async () => {
  dir = tempDir("togo-lintr-");
  holdDir = tempDir("togo-lintr-hold-");
  fakeBin = tempDir("togo-lintr-bin-");
  chmodSync(holdDir, 0o755);
  appPort = await freePort();
  syncPort = await freePort();
  copyFileSync(join(EXAMPLE, "server.js"), join(dir, "server.js"));
  mkdirSync(join(dir, "site"));
  copyFileSync(join(EXAMPLE, "server.js"), join(dir, "site", "server.js"));
  writeFileSync(join(dir, "togo.yaml"), yaml("lintr", appPort, "server.js", "node server.js"));
  writeFileSync(join(dir, "sync.yaml"), yaml("lsync", syncPort, "site", "node site/server.js"));
  // An rsync that hangs once it is asked to link (the upload of a changed directory), recording its pid.
  writeFileSync(
    join(fakeBin, "rsync"),
    `#!/bin/sh\ncase "$*" in *--link-dest*) echo $$ > ${fakeBin}/rsync.pid; exec sleep 600;; esac\nexec /usr/bin/rsync "$@"\n`,
  );
  chmodSync(join(fakeBin, "rsync"), 0o755);
  for (const cfg of ["togo.yaml", "sync.yaml"]) {
    ok(await togo(["provision", "-c", cfg, "--yes"], { cwd: dir, env: env() }), `provision ${cfg}`);
    ok(await togo(["deploy", "-c", cfg, "--version", "1"], { cwd: dir, env: env() }), `first deploy ${cfg}`);
  }
  expect(await serving(appPort)).toBe("1");
  expect(await serving(syncPort)).toBe("1");
}, 180_000);

afterAll(async () => {
  for (const app of ["lintr", "lsync"]) for (const name of ["app", "candidate"]) await killPidFile(join(appDir(app), "run", `${name}.pid`));
  for (const cfg of ["togo.yaml", "sync.yaml"]) await togo(["destroy", "-c", cfg, "--yes"], { cwd: dir });
  cleanupTempDirs();
});

// Where to stop: after the line of the stage before it (a hold keeps release_cmd running; the fake rsync hangs).
const STAGES = [
  ["release", "install"],
  ["verify", "release"],
  ["switch", "verify"],
  ["upload (rsync)", "lock"],
] as const;
const CASES = STAGES.flatMap(([stage, after]) => (["SIGINT", "SIGKILL"] as const).map((signal) => [stage, signal, after] as const));

test.each(CASES)("%s, interrupted with %s: status says what serves, no process of togo's left, the next deploy works", async (stage, signal, after) => {
  const version = String(++n);
  const sync = stage === "upload (rsync)";
  const [app, cfg, port, artifact] = sync ? ["lsync", "sync.yaml", syncPort, join(dir, "site", "server.js")] : ["lintr", "togo.yaml", appPort, join(dir, "server.js")];
  writeFileSync(artifact, `${readFileSync(join(EXAMPLE, "server.js"), "utf8")}\n// ${version}\n`);
  if (stage === "release") writeFileSync(join(holdDir, "release"), "");
  rmSync(join(fakeBin, "rsync.pid"), { force: true });
  const runEnv = env(sync ? { PATH: `${fakeBin}:${process.env.PATH}` } : {});
  const run = execa(process.execPath, [BIN, "deploy", "-c", cfg, "--version", version], { cwd: dir, env: testEnv(runEnv), extendEnv: false, reject: false });
  let err = "";
  run.stderr?.on("data", (d) => (err += d));
  const marker = new RegExp(`✓ ${after}\\s`);
  while (!marker.test(err) && run.exitCode === null) await new Promise((r) => setTimeout(r, 5));
  // In verify, only once the candidate runs (so stopping it is what is checked).
  const candidateRuns = () => groups(app, ["candidate"]).some((g) => g > 1 && existsSync(`/proc/${g}`));
  if (stage === "verify") while (!candidateRuns() && run.exitCode === null) await new Promise((r) => setTimeout(r, 5));
  // The upload case is only one once rsync really runs.
  if (sync) while (!existsSync(join(fakeBin, "rsync.pid")) && run.exitCode === null) await new Promise((r) => setTimeout(r, 5));
  const rsyncPid = sync ? Number(readFileSync(join(fakeBin, "rsync.pid"), "utf8").trim()) : 0;
  run.kill(signal);
  rmSync(join(holdDir, "release"), { force: true });
  const r = await run;
  const context = `stage ${stage}, ${signal}\n--- togo said ---\n${r.stderr}`;
  const fail = (what: string) => {
    throw new Error(`${what}\n${context}`);
  };
  const finished = r.exitCode === 0;
  if (signal === "SIGINT" && !finished && r.exitCode !== 130) fail(`exit ${r.exitCode}, not 130`);

  // Nothing togo started is left but the app (and, after kill -9, a candidate).
  const allowed = signal === "SIGKILL" ? ["app", "candidate"] : ["app"];
  if (!(await until(() => strays(app, allowed).length === 0))) fail(`processes left:\n${strays(app, allowed).map(describeProc).join("\n")}`);
  if (sync && !(await until(() => !existsSync(`/proc/${rsyncPid}`)))) fail(`the upload's rsync ${describeProc(rsyncPid)} outlived togo`);
  const leftCandidate = groups(app, ["candidate"]).filter((g) => g > 1 && existsSync(`/proc/${g}`));
  if (signal === "SIGINT" && leftCandidate.length > 0) fail(`a candidate is left running after Ctrl-C: ${leftCandidate.map(describeProc).join(", ")}`);

  // What status says is what serves; the records agree with it.
  const live = await serving(port);
  const s = JSON.parse((await togo(["status", "-c", cfg, "--json"], { cwd: dir, env: env() })).stdout);
  expect({ status: s.version, state: s.state, live, context }).toMatchObject({ status: live, state: "ready" });
  expect(readlinkSync(join(appDir(app), "current"))).toBe(`v${live}`);
  const failed = existsSync(join(appDir(app), ".failed")) ? readFileSync(join(appDir(app), ".failed"), "utf8").split("\n") : [];
  expect({ failed, context }).not.toMatchObject({ failed: expect.arrayContaining([live]) });
  if (finished) expect({ live, context }).toMatchObject({ live: version });
  if (signal === "SIGINT") {
    expect({ newest: readFileSync(join(appDir(app), ".versions"), "utf8").split("\n")[0], context }).toMatchObject({ newest: live });
    if (!finished) expect({ said: new RegExp(`serving on \\S+: release ${live}\\b`).test(r.stderr), context }).toMatchObject({ said: true });
    if (sync && !finished) expect(r.stderr).toContain("stopped on");
  }

  // The next deploy works; a lock left by a killed deploy is named as such and broken by hand.
  const next = `${version}b`;
  let d = await togo(["deploy", "-c", cfg, "--version", next], { cwd: dir, env: env() });
  const held = d.exitCode !== 0 && d.stderr.includes("holds the lock");
  if (signal === "SIGKILL" && !finished) expect({ held, context, next: d.stderr }).toMatchObject({ held: true });
  if (held) {
    expect({ signal, context }).toMatchObject({ signal: "SIGKILL" });
    expect(d.stderr).toContain("is no longer running: a deploy was killed");
    expect(d.stderr).toContain("togo lock release");
    ok(await togo(["lock", "release", "-c", cfg], { cwd: dir, env: env() }), "lock release");
    d = await togo(["deploy", "-c", cfg, "--version", next], { cwd: dir, env: env() });
  }
  ok(d, `the deploy after ${context}`);
  expect(await serving(port)).toBe(next);
  // A candidate a killed deploy left was stopped by the next deploy.
  if (!(await until(() => strays(app, ["app"]).length === 0))) fail(`processes left after the next deploy:\n${strays(app, ["app"]).map(describeProc).join("\n")}`);
  for (const g of leftCandidate) if (existsSync(`/proc/${g}`) && pgid(g) === g) fail(`the candidate ${describeProc(g)} a killed deploy left still runs after the next deploy`);
});
