// Issue 9's guards ("deploys that never lie") on a REAL systemd host (a booted Debian bookworm
// container, test/helpers/systemd-hosts.ts), the app running as a systemd user unit, driven only
// through the built CLI: a port another process holds (#2, the unit's cgroup check), interrupts
// during release_cmd, during verify and right after the switch (#4-6), a tampered app_dir (#7) and
// the host-key messages (#11). The same guards over a plain sshd are in vps.test.ts,
// vps-interrupts.test.ts, honest-health.test.ts, release-scripts.test.ts and vps-transport.test.ts.
// No `domain:` here: without Caddy in front a deploy is a restart of the unit in place.
// Black box on purpose: nothing from src/ or drivers/.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "@jest/globals";
import { execa } from "execa";
import { BIN, cleanupTempDirs, helloProject, tempDir, testEnv, togo, type CliResult } from "../helpers/index.js";
import { startSystemdHost, type ExecResult, type SystemdHost } from "../helpers/systemd-hosts.js";
import { hostChecks } from "../helpers/checks.js";

const APP = "guard";
const UNIT = `togo-${APP}.service`;
const APP_DIR = `/home/deploy/apps/${APP}`;
const PORT = 3100;
/** A second app whose port another process holds. */
const TAKEN_PORT = 3200;
/** release_cmd loops while this file exists on the host (the host has its own filesystem). */
const HOLD = "/tmp/togo-hold/release";

let host: SystemdHost;
let dir: string;
let n = 1;

const yaml = (o: { app?: string; port?: number; env?: string; knownHosts?: string; options?: string } = {}) => `app: ${o.app ?? APP}
deploy:
  provider: vps
  host: ${host.ip}
  user: deploy
  identity_file: ${host.identityFile}
  known_hosts: ${o.knownHosts ?? host.knownHosts}
  ssh_config: ${host.sshConfig}
  binary: server.js
  run: "sleep 0.3 && exec node server.js"
  app_port: ${o.port ?? PORT}
  app_dir: ~/apps/${o.app ?? APP}
  release_cmd: "while [ -e ${HOLD} ]; do sleep 0.05; done"
  healthcheck: { path: /up, timeout: 20, interval: 0.1, settle: 1 }
  versions_to_keep: 3
${o.env ?? ""}  options: { service: systemd${o.options ?? ""} }
`;

const userctl = (args: string) => host.exec(`runuser -u deploy -- env XDG_RUNTIME_DIR=/run/user/1000 systemctl --user ${args}`);
const sh = async (cmd: string) => (await host.exec(cmd)).stdout.trim();
const cli = (args: string[], timeout?: number) => togo(args, { cwd: dir, timeout });

/** What to look at when a step fails on the host: the unit, its journal, the app's files and processes. */
async function diagnostics(): Promise<string> {
  const r = await host
    .exec(
      [
        `echo "== systemctl --user status"`,
        `runuser -u deploy -- env XDG_RUNTIME_DIR=/run/user/1000 systemctl --user status --no-pager 'togo-*' 2>&1 | tail -n 30`,
        `echo "== journalctl (uid 1000)"; journalctl --no-pager -n 30 _UID=1000 -o short-monotonic 2>&1`,
        `echo "== ${APP_DIR}"; ls -la ${APP_DIR} 2>&1; echo "-- .versions"; cat ${APP_DIR}/.versions 2>&1; echo "-- .failed"; cat ${APP_DIR}/.failed 2>&1`,
        `echo "== app logs"; tail -n 10 ${APP_DIR}/logs/*.log 2>&1`,
        `echo "== deploy's processes"; ps -u deploy -o pid,pgid,stat,cmd 2>&1`,
        `echo "== listening"; cat /proc/net/tcp 2>&1 | awk '$4 == "0A"'`,
      ].join("; "),
      { timeoutMs: 20_000 },
    )
    .catch((e: Error) => ({ code: 1, stdout: "", stderr: e.message }));
  return `${r.stdout}${r.stderr}\n== console (last lines)\n${host.consoleLog().trimEnd().split("\n").slice(-10).join("\n")}`;
}

const { fail, ok, check, eventually } = hostChecks(diagnostics, { label: "host" });

/** What answers on the host's loopback port (the app listens on 127.0.0.1 only). */
const served = async (port = PORT) => /^hello from (\S+)$/.exec(await sh(`curl -s --max-time 2 http://127.0.0.1:${port}/`))?.[1];
const current = async () => (await sh(`readlink ${APP_DIR}/current`)).replace(/^v/, "");
const parse = (text: string): { state?: string; version?: string; message?: string } => {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
};
const unitActive = async (unit = UNIT) => (await userctl(`is-active ${unit}`)).stdout.trim();

interface Proc {
  pid: number;
  pgid: number;
  cgroup: string;
  cmd: string;
}
/** The deploy user's processes on the host, with their process group and cgroup. */
async function deployProcs(): Promise<Proc[]> {
  const r = await host.exec(
    [
      `for d in /proc/[0-9]*; do`,
      `  [ "$(stat -c %u "$d" 2>/dev/null)" = 1000 ] || continue`,
      `  read -r l < "$d/stat" 2>/dev/null || continue`,
      `  set -- \${l##*")"}`,
      `  [ "$1" = Z ] && continue`,
      `  printf '%s\\t%s\\t%s\\t%s\\n' "\${d#/proc/}" "$3" "$(cat "$d/cgroup" 2>/dev/null | tr '\\n' ' ')" "$(tr '\\0\\n\\t' '   ' < "$d/cmdline" 2>/dev/null)"`,
      `done`,
    ].join("\n"),
  );
  return r.stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const [pid, pgid, cgroup, cmd] = l.split("\t");
      return { pid: Number(pid), pgid: Number(pgid), cgroup: cgroup.trim(), cmd: cmd.trim() };
    });
}
const candidatePgid = async () => Number(await sh(`cat ${APP_DIR}/run/candidate.pid 2>/dev/null || echo 0`));
/**
 * The deploy user's processes outside the app's unit (and its user manager): after a deploy, kill or
 * interrupt there must be none, but for a candidate a killed deploy left (its process group, by
 * its pid file) when `candidate` is allowed.
 */
async function strays(allowCandidate = false): Promise<Proc[]> {
  const cand = allowCandidate ? await candidatePgid() : 0;
  return (await deployProcs()).filter(
    (p) => !p.cgroup.endsWith("/user@1000.service/init.scope") && !p.cgroup.endsWith(`/user@1000.service/app.slice/${UNIT}`) && !(cand > 0 && p.pgid === cand),
  );
}
/** togo's own processes on this machine for this host: the SSH master and clients (control path under togo-ssh-). */
const localStrays = () =>
  readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .flatMap((p) => {
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, "utf8").replaceAll("\0", " ");
        return cmd.includes("togo-ssh-") && cmd.includes(host.ip) ? [`${p}: ${cmd}`] : [];
      } catch {
        return [];
      }
    });

/** After anything: status says what serves, `current` agrees, the unit runs, nothing of togo's is left on either side. */
async function consistent(context: string, allowCandidate = false): Promise<string> {
  await eventually(`no local togo-ssh- process (${context})`, async () => localStrays(), (l) => l.length === 0);
  await eventually(`no process of deploy outside ${UNIT} (${context})`, () => strays(allowCandidate), (l) => l.length === 0);
  const live = await served();
  const st = await cli(["status", "--json"]);
  let s: { state?: string; version?: string } = {};
  try {
    s = JSON.parse(st.stdout);
  } catch {
    await fail(`status --json printed no JSON (${context})`, st);
  }
  await check(st.exitCode === 0 && s.state === "ready" && live !== undefined && s.version === live, `status says ${s.state} ${s.version}, ${live ?? "nothing"} serves (${context})`, st);
  await check((await current()) === live, `current is v${await current()}, ${live} serves (${context})`);
  await check((await unitActive()) === "active", `${UNIT} is ${await unitActive()} (${context})`);
  return live!;
}

/** The next deploy works: after `togo lock release` when a killed deploy left the lock, which the message names. */
async function nextDeploy(context: string, killed: boolean): Promise<string> {
  const version = String(++n);
  let d = await cli(["deploy", "--version", version]);
  if (d.exitCode !== 0 && d.stderr.includes("holds the lock")) {
    await check(killed, `the lock was left behind though togo was not killed (${context})`, d);
    await check(d.stderr.includes("is no longer running: a deploy was killed") && d.stderr.includes("togo lock release"), `the lock message says how to break it (${context})`, d);
    await ok(await cli(["lock", "release"]), "togo lock release");
    d = await cli(["deploy", "--version", version]);
  }
  await ok(d, `the deploy after ${context}`);
  await check((await served()) === version, `${version} serves after the next deploy (${context})`, d);
  return version;
}

/** Starts `togo deploy`, waits for `ready()` to hold, sends `signal`; returns the run's result and its output. */
async function interrupt(signal: "SIGINT" | "SIGKILL", ready: (stderr: string) => Promise<boolean>, beforeExit?: () => Promise<void>) {
  const version = String(++n);
  const run = execa(process.execPath, [BIN, "deploy", "--version", version], { cwd: dir, env: testEnv(), extendEnv: false, reject: false });
  let err = "";
  run.stderr?.on("data", (d) => (err += d));
  const deadline = Date.now() + 60_000;
  try {
    while (!(await ready(err))) {
      if (run.exitCode !== null || Date.now() > deadline) {
        run.kill("SIGKILL");
        const r = await run;
        return fail(`togo ${r.exitCode === null ? "did not reach the point to interrupt" : `exited ${r.exitCode} before the point to interrupt`}`, { exitCode: r.exitCode ?? 1, stdout: String(r.stdout), stderr: String(r.stderr) });
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    run.kill(signal);
    await beforeExit?.();
  } catch (e) {
    // A failed check must not leave this deploy running (and holding the lock) for the next test.
    run.kill("SIGINT");
    await run;
    throw e;
  }
  const r = await run;
  return { version, result: { exitCode: r.exitCode ?? (r.signal === "SIGKILL" ? 137 : 1), stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? "") } as CliResult };
}

beforeAll(async () => {
  host = await startSystemdHost();
  dir = helloProject(yaml());
  // Provision first: the bootstrap turns lingering on (a systemd deploy is refused without it).
  await ok(await cli(["provision", "--yes"], 300_000), "togo provision --yes");
  await ok(await host.exec(`mkdir -p ${HOLD.replace(/\/[^/]*$/, "")} && chmod 755 ${HOLD.replace(/\/[^/]*$/, "")}`), "making the hold dir");
  await ok(await cli(["deploy", "--version", "1"]), "togo deploy --version 1");
  await check((await served()) === "1", "1 serves after the first deploy");
  await check((await unitActive()) === "active", `${UNIT} is active after the first deploy`);
}, 15 * 60_000);

afterAll(async () => {
  await host?.stop();
  cleanupTempDirs();
}, 120_000);

// --- #2: a port another process holds ------------------------------------------------------------

test("port taken (#2): a server of another user, then one of deploy outside the unit, holds app_port: not deployed, nothing serves, status not ready", async () => {
  writeFileSync(join(dir, "taken.yaml"), yaml({ app: "taken", port: TAKEN_PORT }));
  await ok(
    await host.exec(`cat > /tmp/squatter.js && chmod 644 /tmp/squatter.js`, {
      input: `require("node:http").createServer((q, s) => { s.writeHead(200); s.end("squatter\\n"); }).listen(+process.argv[2], "127.0.0.1");\n`,
    }),
    "writing the squatter",
  );
  const squatters: [unit: string, as: string][] = [
    [`squatter-root-${process.pid}`, ""], // root: deploy cannot even see which process it is
    [`squatter-deploy-${process.pid}`, "--uid=deploy"], // deploy's own, in another cgroup than the unit
  ];
  for (const [i, [unit, as]] of squatters.entries()) {
    await ok(await host.exec(`systemd-run --quiet --unit=${unit} ${as} /usr/local/bin/node /tmp/squatter.js ${TAKEN_PORT}`), `starting ${unit}`);
    try {
      await eventually(`${unit} to answer on ${TAKEN_PORT}`, () => sh(`curl -s --max-time 2 http://127.0.0.1:${TAKEN_PORT}/`), (b) => b === "squatter");
      const r = await cli(["deploy", "-c", "taken.yaml", "--version", `t${i}`]);
      await check(r.exitCode === 1, `deploy with ${unit} on the port: expected exit 1`, r);
      const holder = as ? `pid ${await sh(`systemctl show -p MainPID --value ${unit}`)}, node` : "of another user";
      await check(
        r.stderr.includes(`release t${i} passed verification but failed on port ${TAKEN_PORT} (port ${TAKEN_PORT} is held by another process (${holder}), not by this release)`),
        `the message names the holder (${holder})`,
        r,
      );
      await check(r.stderr.includes("nothing is serving"), "the message says nothing is serving", r);
      const st = await cli(["status", "-c", "taken.yaml", "--json"]);
      await check(st.exitCode === 3 && parse(st.stdout).state !== "ready", "status of the taken app: exit 3, not ready", st);
      await check((await unitActive("togo-taken.service")) !== "active", "the taken app's unit is stopped");
      await check((await sh(`readlink /home/deploy/apps/taken/current || echo none`)) === "none", "nothing is current for the taken app");
      await check((await sh(`curl -s --max-time 2 http://127.0.0.1:${TAKEN_PORT}/`)) === "squatter", "the squatter still answers");
    } finally {
      await host.exec(`systemctl stop ${unit}; systemctl reset-failed ${unit} 2>/dev/null; true`);
    }
  }
  await check((await served()) === "1", "the other app kept serving");
}, 120_000);

// --- #4-6: interrupts ----------------------------------------------------------------------------

test("SIGINT while release_cmd runs (#4): the remote command is stopped before the lock goes, no process of it is left", async () => {
  await ok(await host.exec(`touch ${HOLD}`), "creating the hold file");
  const loops = async () => (await deployProcs()).filter((p) => p.cmd.includes(HOLD));
  let order: Promise<ExecResult> | undefined;
  try {
    const { result: r } = await interrupt(
      "SIGINT",
      // release_cmd really runs on the host (not just the stage begun) and holds the lock.
      async (err) => /✓ install\s/.test(err) && (await loops()).length > 0 && (await sh(`test -d ${APP_DIR}/.lock && echo held`)) === "held",
      async () => {
        // The moment the lock goes, release_cmd must be gone already (the hold file still exists:
        // it cannot have ended by itself).
        order = host.exec(`while [ -d ${APP_DIR}/.lock ]; do sleep 0.01; done; if pgrep -u deploy -f ${HOLD} >/dev/null; then echo running; else echo gone; fi`, { timeoutMs: 60_000 });
      },
    );
    await check(r.exitCode === 130, "SIGINT: exit 130", r);
    await check(r.stderr.includes("SIGINT: cleaning up") && r.stderr.includes("running release_cmd"), "togo says it stopped release_cmd", r);
    const when = await order!;
    await check(when.stdout.trim() === "gone", `release_cmd was ${when.stdout.trim()} when the lock was released`, r);
    await check((await sh(`test -e ${HOLD} && echo held`)) === "held", "the hold file is still there");
    await check((await loops()).length === 0, `release_cmd left processes: ${JSON.stringify(await loops())}`, r);
  } finally {
    await host.exec(`rm -f ${HOLD}`);
  }
  const live = await consistent("SIGINT during release");
  await check(live === String(n - 1), `the previous release (${n - 1}) still serves, not ${live}`);
  await nextDeploy("SIGINT during release", false);
  await consistent("the deploy after SIGINT during release");
}, 120_000);

test("SIGKILL during verify (#5): the candidate is left running, the lock names the dead holder, the next deploy stops the candidate and succeeds", async () => {
  const before = await served();
  const { result: r, version } = await interrupt("SIGKILL", async (err) => /✓ release\s/.test(err) && (await candidatePgid()) > 0);
  await check(r.exitCode === 137, "SIGKILL: killed", r);
  const cand = await candidatePgid();
  await check(cand > 0 && (await sh(`kill -0 ${cand} && echo alive`)) === "alive", "a candidate is left running after kill -9", r);
  // It really runs on beyond togo's death: it comes up on its spare port.
  await eventually("the left candidate to listen", () => sh(`cat ${APP_DIR}/logs/${version}.log 2>/dev/null`), (l) => l.includes(`hello ${version} listening`));
  const live = await consistent("SIGKILL during verify", true);
  await check(live === before, `${before} still serves, not ${live}`);
  await nextDeploy("SIGKILL during verify", true);
  await check((await sh(`kill -0 ${cand} 2>/dev/null && echo alive || echo gone`)) === "gone", "the next deploy stopped the left candidate");
  await consistent("the deploy after SIGKILL during verify");
}, 120_000);

test("SIGINT right after the switch (#6): the live release is recorded, status says it, the next deploy works", async () => {
  const { result: r, version } = await interrupt("SIGINT", async (err) => /✓ switch\s/.test(err));
  await check(r.exitCode === 130 || r.exitCode === 0, `exit ${r.exitCode}, not 130`, r);
  const live = await consistent("SIGINT after switch");
  await check(live === version, `the switched-to release ${version} serves, not ${live}`, r);
  await check((await sh(`head -n 1 ${APP_DIR}/.versions`)) === version, `.versions starts with ${version}`, r);
  await check(!(await sh(`cat ${APP_DIR}/.failed 2>/dev/null`)).split("\n").includes(version), `${version} is not recorded as failed`, r);
  // It is not called unverified while it serves, and rollback knows it is the one it rolls back from.
  await check(!r.stderr.includes("stopping the unverified release"), "togo does not say it stops the unverified release that serves", r);
  const back = await cli(["rollback"]);
  await check(back.exitCode === 0 && `${back.stdout}${back.stderr}`.includes(`from ${version} to `) && !`${back.stdout}${back.stderr}`.includes("from nothing"), `rollback says "from ${version}"`, back);
  await consistent("rollback after SIGINT after switch");
  await nextDeploy("SIGINT after switch", false);
  await consistent("the deploy after SIGINT after switch");
}, 120_000);

// --- #7: a tampered target ----------------------------------------------------------------------

test("tampering (#7): a .versions line climbing out of app_dir never reaches rm -rf", async () => {
  // /tmp/x belongs to deploy: a prune that followed the line could really remove it.
  await ok(await host.exec(`mkdir -p /tmp/x && echo keep > /tmp/x/keep && chown -R deploy: /tmp/x`), "planting /tmp/x");
  // v999 (a version no test deploys) exists, so the path resolves: .../guard/v999/../../../../../tmp/x is /tmp/x.
  const line = `999/${"../".repeat(5)}tmp/x`;
  await ok(
    await host.exec(`cd ${APP_DIR} && runuser -u deploy -- mkdir -p v999 && runuser -u deploy -- sh -c 'printf "%s\\n" "$(cat .versions)" "${line}" "../../../../../tmp/x" > .v && mv .v .versions' && ls -d ${APP_DIR}/v999/${"../".repeat(5)}tmp/x`),
    "planting the .versions lines",
  );
  const lines = (await sh(`cat ${APP_DIR}/.versions`)).split("\n");
  await check(lines.includes(line) && lines.length >= 5 /* 3 releases to keep + the planted lines */, `.versions holds the planted line and enough releases to prune: ${lines.join(" ")}`);
  // Twice: the second prune sees the planted line where the first left it (it is dropped, never followed).
  for (let i = 0; i < 2; i++) await nextDeploy("a tampered .versions", false);
  await check((await sh(`cat /tmp/x/keep`)) === "keep", "/tmp/x/keep is still there");
  const after = (await sh(`cat ${APP_DIR}/.versions`)).split("\n");
  await check(after.length === 3 && after.every((v) => /^[0-9]+$/.test(v)), `.versions holds 3 versions and nothing else: ${after.join(" ")}`);
  await ok(await host.exec(`rm -rf ${APP_DIR}/v999 /tmp/x`), "removing the plants");
  await consistent("a tampered .versions");
}, 120_000);

test("tampering (#7): symlinks planted at temp names and at .env are never written through; .env ends a 0600 regular file", async () => {
  const victim = "/tmp/victim";
  const names = [".env.next.tmp", ".versions.tmp", ".failed.tmp", ".current.tmp", ".env.prev", ".env.next", ".env"];
  await ok(
    await host.exec(
      `echo secret-old > ${victim} && chown deploy: ${victim} && chmod 644 ${victim} && cd ${APP_DIR} && rm -f ${names.join(" ")} && for n in ${names.join(" ")}; do runuser -u deploy -- ln -s ${victim} "$n"; done`,
    ),
    "planting the symlinks",
  );
  const version = await nextDeploy("planted symlinks", false);
  await check((await sh(`cat ${victim}; stat -c '%a %h' ${victim}`)) === "secret-old\n644 1", `${victim} is unchanged: ${await sh(`cat ${victim}; stat -c '%a %h' ${victim}`)}`);
  await check((await sh(`cd ${APP_DIR} && [ -f .env ] && [ ! -L .env ] && stat -c '%a %U' .env`)) === "600 deploy", `.env is a 0600 regular file of deploy: ${await sh(`ls -la ${APP_DIR}`)}`);
  // The unit really runs with that env.
  const pid = Number((await userctl(`show -p MainPID --value ${UNIT}`)).stdout.trim());
  await check((await sh(`tr '\\0' '\\n' < /proc/${pid}/environ | grep '^TOGO_VERSION='`)) === `TOGO_VERSION=${version}`, "the unit runs the new release");
  await ok(await host.exec(`rm -f ${victim}; cd ${APP_DIR} && for n in ${names.join(" ")}; do [ -L "$n" ] && rm -f "$n"; done; true`), "removing the plants");
  await consistent("planted symlinks");
}, 120_000);

test("tampering (#7): a current whose release folder is gone is reported failed (exit 3); the next deploy repairs it", async () => {
  const live = await current();
  await ok(await host.exec(`rm -rf ${APP_DIR}/v${live}`), "removing the current release's folder");
  const st = await cli(["status", "--json"]);
  const s = parse(st.stdout);
  await check(st.exitCode === 3 && s.state === "failed" && s.version === live && /folder is gone/.test(s.message ?? ""), "status: failed, the folder is gone, exit 3", st);
  const plain = await cli(["status"]);
  await check(plain.exitCode === 3 && /^state\s+failed$/m.test(plain.stdout), "status (text) says failed", plain);
  await nextDeploy("a dangling current", false);
  // The removed release is gone from the list too (rollback must not pick it) and is not counted as kept.
  const listed = JSON.parse((await ok(await cli(["releases", "--json"]), "togo releases --json")).stdout) as { version: string }[];
  await check(listed.length === 3 && !listed.some((x) => x.version === live), `3 releases listed, without the removed ${live}: ${JSON.stringify(listed)}`);
  await consistent("a dangling current");
}, 120_000);

test("tampering (#7): with .versions deleted the releases are still listed, and pruned to versions_to_keep", async () => {
  type Release = { version: string; current: boolean };
  const list = async () => {
    const r = await ok(await cli(["releases", "--json"]), "togo releases --json");
    return JSON.parse(r.stdout) as Release[];
  };
  const before = await list();
  await check(before.length === 3, `3 releases before: ${JSON.stringify(before)}`);
  await ok(await host.exec(`rm ${APP_DIR}/.versions`), "deleting .versions");
  const listed = await list();
  await check(
    JSON.stringify(listed.map((x) => x.version).sort()) === JSON.stringify(before.map((x) => x.version).sort()) && listed.some((x) => x.current && x.version === before[0].version),
    `the same releases are listed without .versions: ${JSON.stringify(listed)} (before: ${JSON.stringify(before)})`,
  );
  const version = await nextDeploy("a deleted .versions", false);
  const after = await list();
  await check(after.length === 3 && after[0].version === version && after[0].current, `3 releases after the deploy, ${version} current: ${JSON.stringify(after)}`);
  const gone = before.map((x) => x.version).filter((v) => !after.some((a) => a.version === v));
  await check(gone.length === 1 && gone[0] !== before[0].version, `one release pruned, not the one that served: ${gone.join(" ")}`);
  await check((await sh(`test -e ${APP_DIR}/v${gone[0]} && echo present || echo gone`)) === "gone", `v${gone[0]} was removed`);
  await check((await sh(`cat ${APP_DIR}/.versions`)).split("\n").length === 3, ".versions is written again with 3 lines");
  await consistent("a deleted .versions");
}, 120_000);

test("tampering (#7): an env key HOME does not move togo's pid and log files out of app_dir", async () => {
  await ok(await host.exec(`rm -rf /tmp/elsewhere && mkdir /tmp/elsewhere && chown deploy: /tmp/elsewhere`), "making /tmp/elsewhere");
  writeFileSync(join(dir, "home.yaml"), yaml({ env: "  env: { HOME: /tmp/elsewhere }\n" }));
  const version = String(++n);
  await ok(await cli(["deploy", "-c", "home.yaml", "--version", version]), "deploy with HOME in env");
  await check((await served()) === version, `${version} serves`);
  // The env key did reach the app (so the check below can fail) …
  const pid = Number((await userctl(`show -p MainPID --value ${UNIT}`)).stdout.trim());
  await check((await sh(`tr '\\0' '\\n' < /proc/${pid}/environ | grep '^HOME='`)) === "HOME=/tmp/elsewhere", "the app runs with HOME=/tmp/elsewhere");
  // … and togo's files stayed in app_dir: the candidate's and the unit's log, the pid files.
  await check((await sh(`ls -A /tmp/elsewhere`)) === "", `nothing was written to /tmp/elsewhere: ${await sh("find /tmp/elsewhere")}`);
  await check((await sh(`grep -c 'listening' ${APP_DIR}/logs/${version}.log`)) === "2", `logs/${version}.log holds the candidate's and the unit's start`);
  await check((await sh(`ls -A ${APP_DIR}/run`)) === "", `run/ holds no stale pid file: ${await sh(`ls -A ${APP_DIR}/run`)}`);
  await ok(await host.exec(`rm -rf /tmp/elsewhere`), "removing /tmp/elsewhere");
  await consistent("HOME in env");
}, 120_000);

// --- #11: the host key ---------------------------------------------------------------------------

test("host key (#11): not in known_hosts under host_key_checking: yes is said as such; a wrong key 'does not match' with the ssh-keygen -R hint", async () => {
  const keys = tempDir("togo-guards-keys-");
  const empty = join(keys, "empty_hosts");
  writeFileSync(empty, "");
  writeFileSync(join(dir, "strict.yaml"), yaml({ knownHosts: empty, options: ", host_key_checking: yes" }));
  await ok(await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(keys, "other")], { reject: false }).then((r) => ({ exitCode: r.exitCode ?? 1, stdout: String(r.stdout), stderr: String(r.stderr) })), "ssh-keygen");
  const wrong = join(keys, "wrong_hosts");
  writeFileSync(wrong, `${host.ip} ${readFileSync(join(keys, "other.pub"), "utf8").split(" ").slice(0, 2).join(" ")}\n`);
  const live = await served();

  for (const cmd of [["status"], ["deploy", "--version", "never"]]) {
    const r = await cli([...cmd, "-c", "strict.yaml"]);
    await check(r.exitCode !== 0, `togo ${cmd[0]} with an empty known_hosts must fail`, r);
    // status reports it as its message (stdout), deploy as its error (stderr).
    const said = r.stdout + r.stderr;
    await check(said.includes("the host key is not in known_hosts and host_key_checking is yes"), `togo ${cmd[0]}: says the key is not in known_hosts`, r);
    await check(!said.includes("does not match"), `togo ${cmd[0]}: does not call an unknown key a mismatch`, r);
    await check(readFileSync(empty, "utf8") === "", "nothing was recorded in known_hosts under yes", r);
  }
  for (const checking of ["", ", host_key_checking: yes"]) {
    writeFileSync(join(dir, "wrong.yaml"), yaml({ knownHosts: wrong, options: checking }));
    for (const cmd of [["status"], ["deploy", "--version", "never"]]) {
      const r = await cli([...cmd, "-c", "wrong.yaml"]);
      await check(r.exitCode !== 0, `togo ${cmd[0]} with a wrong key${checking} must fail`, r);
      const said = r.stdout + r.stderr;
      await check(said.includes("the host key does not match known_hosts") && said.includes("remove the old key (ssh-keygen -R HOST"), `togo ${cmd[0]}${checking}: a mismatch with the ssh-keygen -R hint`, r);
      await check(!said.includes("is not in known_hosts"), `togo ${cmd[0]}${checking}: a mismatch is not called an unknown key`, r);
    }
  }
  await check((await sh(`test -e ${APP_DIR}/vnever && echo present || echo absent`)) === "absent", "no refused deploy reached the host");
  await check((await served()) === live, `${live} still serves`);
}, 120_000);
