// The vps driver end to end on a REAL systemd host (a booted Debian bookworm container, see
// test/helpers/systemd-hosts.ts), driven only through the built CLI: provision's terraform
// bootstrap enables lingering and sets up Caddy with `sudo -n` (before it, a systemd deploy is
// refused), two deploys run as a systemd user unit behind the host's Caddy with the secrets read
// back exactly from its EnvironmentFile, systemd restarts a killed app, the app comes back by itself
// after a reboot, then status, rollback and destroy. Black box on purpose: nothing from src/ or drivers/.
import { afterAll, beforeAll, expect, test } from "@jest/globals";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupTempDirs, helloProject, ROOT, togo, type CliResult } from "../helpers/index.js";
import { startSystemdHost, type ExecResult, type SystemdHost } from "../helpers/systemd-hosts.js";
import { getWithHost, hostChecks } from "../helpers/checks.js";

const UNIT = "togo-hello.service";
const APP_DIR = "/home/deploy/apps/hello";
const SITE = "/etc/caddy/togo.d/hello.caddy";

let host: SystemdHost;
let dir: string;

// Secrets reach the app through systemd's EnvironmentFile=: these must arrive byte for byte.
const SECRETS = {
  T_QUOTED: `it's "quoted" $HOME \${PATH} \`id\` back\\slash\nsecond line ünïcødé 🚀`,
  T_PLAIN: "no single quote but $dollar `tick` and\nnewline ✓ \\n",
  T_CONTROL: "  lead\ttab # hash\r\nesc \x1b[0m it's \\",
};

/** `systemctl --user` of deploy, run as root inside the host (no SSH session involved). */
const userctl = (args: string) => host.exec(`runuser -u deploy -- env XDG_RUNTIME_DIR=/run/user/1000 systemctl --user ${args}`);
const sh = async (cmd: string) => (await host.exec(cmd)).stdout.trim();

/** What to look at when a step fails on the host: the unit, its journal, the app log, Caddy. */
async function diagnostics(): Promise<string> {
  const r = await host.exec(
    [
      `echo "== systemctl --user status ${UNIT}"`,
      `runuser -u deploy -- env XDG_RUNTIME_DIR=/run/user/1000 systemctl --user status --no-pager ${UNIT} 2>&1 | tail -n 20`,
      `echo "== unit file"; cat /home/deploy/.config/systemd/user/${UNIT} 2>&1`,
      `echo "== journalctl --user"; journalctl --no-pager -n 30 _UID=1000 -o short-monotonic 2>&1`,
      `echo "== app logs"; tail -n 20 ${APP_DIR}/logs/*.log 2>&1`,
      `echo "== caddy"; journalctl --no-pager -n 10 -u caddy -o cat 2>&1; cat /etc/caddy/Caddyfile ${SITE} 2>&1`,
      `echo "== loginctl"; loginctl list-users --no-legend 2>&1; ls /var/lib/systemd/linger 2>&1`,
    ].join("; "),
    { timeoutMs: 20_000 },
  ).catch((e: Error) => ({ code: 1, stdout: "", stderr: e.message }));
  return `${r.stdout}${r.stderr}\n== console (last lines)\n${host.consoleLog().trimEnd().split("\n").slice(-15).join("\n")}`;
}

const { ok, eventually } = hostChecks(diagnostics, { label: "host", timeoutMs: 60_000, intervalMs: 200 });

const cli = (args: string[], timeout?: number) => togo(args, { cwd: dir, timeout, env: SECRETS });

/** GET / on the host's port 80 as hello.test: what a visitor reaches through Caddy. */
const viaCaddy = () => getWithHost(host.ip, 80, "/", "hello.test");

const serves = (version: string) =>
  eventually(`hello.test through Caddy to serve ${version}`, viaCaddy, (r) => r.status === 200 && r.body === `hello from ${version}\n`);

const mainPid = async () => Number((await userctl(`show -p MainPID --value ${UNIT}`)).stdout.trim());

beforeAll(async () => {
  host = await startSystemdHost();
  dir = helloProject(`app: hello
deploy:
${host.deployKeys}
  domain: hello.test
  binary: server.js
  run: node server.js
  app_port: 3000
  # This file checks the restart-style unit; blue-green on a systemd host is not exercised here yet.
  strategy: restart
  healthcheck: { path: /up, timeout: 30, interval: 0.2 }
  env:
    GREETING: hello
  secrets:
    T_QUOTED: env:T_QUOTED
    T_PLAIN: env:T_PLAIN
    T_CONTROL: env:T_CONTROL
  options:
    service: systemd
    https: false
`);
}, 15 * 60_000);

afterAll(async () => {
  await host?.stop();
  cleanupTempDirs();
}, 120_000);

test("before provision (lingering off) a systemd deploy is refused: the unit would die at logout", async () => {
  const r = await cli(["deploy", "--version", "0"]);
  if (r.exitCode !== 1) throw new Error(`expected exit 1, got ${r.exitCode}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  expect(r.stderr).toContain("loginctl enable-linger");
  expect(await sh(`test -e ${APP_DIR} && echo present || echo gone`)).toBe("gone");
});

test("provision: terraform's bootstrap enables lingering and sets up Caddy's site dir with sudo -n", async () => {
  // The image leaves both to the bootstrap.
  expect(await sh("loginctl show-user deploy -p Linger --value 2>/dev/null || echo no")).not.toBe("yes");
  expect(await sh("test -e /etc/caddy/togo.d && echo exists || echo missing")).toBe("missing");

  const r = await ok(await cli(["provision", "--yes"], 300_000), "togo provision --yes");
  expect(r.stderr).toContain("apply hello-vps");
  expect(r.stdout).toContain("http://hello.test");

  expect(await sh("loginctl show-user deploy -p Linger --value")).toBe("yes");
  expect(await sh("stat -c %U /etc/caddy/togo.d")).toBe("deploy");
  expect(await sh("grep -cxF 'import /etc/caddy/togo.d/*.caddy' /etc/caddy/Caddyfile")).toBe("1");
  expect(await sh("stat -c '%U %a' /home/deploy/apps/hello")).toBe("deploy 700");
  // Lingering starts deploy's user manager without any login.
  expect(await sh("systemctl is-active user@1000.service")).toBe("active");

  const st = await cli(["status", "--json"]);
  expect(st.exitCode).toBe(3); // not ready: nothing deployed yet
  const s = JSON.parse(st.stdout);
  expect(s.outputs).toMatchObject({ host: host.ip, user: "deploy", has_systemd: "true", has_caddy: "true" });
  expect(s.state).toBe("not-deployed");
}, 300_000);

test("two deploys run as a systemd user unit behind the host's Caddy", async () => {
  await ok(await cli(["deploy", "--version", "1"]), "togo deploy --version 1");
  await serves("1");
  const r = await ok(await cli(["deploy", "--version", "2"]), "togo deploy --version 2");
  expect(r.stderr).toMatch(/✓ caddy\s+\d+/);
  expect(r.stdout.trim()).toBe("http://hello.test");
  await serves("2");

  expect((await ok(await userctl(`is-active ${UNIT}`), "systemctl --user is-active")).stdout.trim()).toBe("active");
  // systemd runs the app: its process is node, in the unit's cgroup, not under togo's process manager.
  const pid = await mainPid();
  expect(pid).toBeGreaterThan(0);
  expect(await sh(`cat /proc/${pid}/comm`)).toBe("node");
  expect(await sh(`cat /proc/${pid}/cgroup`)).toContain(`/user@1000.service/app.slice/${UNIT}`);
  expect(await sh(`readlink ${APP_DIR}/current`)).toBe("v2");
  expect(await sh(`stat -c %U ${SITE}`)).toBe("deploy");

  const environ = Object.fromEntries(
    (await ok(await host.exec(`cat /proc/${pid}/environ`), "reading the app's environment")).stdout
      .split("\0")
      .filter(Boolean)
      .map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]),
  );
  expect(environ).toMatchObject({ ...SECRETS, GREETING: "hello", PORT: "3000", TOGO_VERSION: "2" });
}, 240_000);

test("kill -9 of the app: systemd restarts it (Restart=on-failure)", async () => {
  const before = await mainPid();
  await ok(await host.exec(`kill -9 ${before}`), "kill -9");
  const after = await eventually("a new MainPID", mainPid, (p) => p > 0 && p !== before);
  expect(after).not.toBe(before);
  expect(Number((await userctl(`show -p NRestarts --value ${UNIT}`)).stdout.trim())).toBeGreaterThanOrEqual(1);
  await serves("2");
}, 120_000);

test("a reboot of the host: the app serves again with no action from togo (lingering + enabled unit)", async () => {
  const before = await mainPid();
  await host.reboot();
  await serves("2");
  expect((await userctl(`is-active ${UNIT}`)).stdout.trim()).toBe("active");
  expect(host.consoleLog()).toContain("[supervisor] nspawn exited rc=133"); // a real in-container reboot
  expect(await mainPid()).not.toBe(before);
}, 180_000);

test("status --json: ready, version 2", async () => {
  const s = JSON.parse((await ok(await cli(["status", "--json"]), "togo status --json")).stdout);
  expect(s).toMatchObject({ state: "ready", version: "2", healthy: true });
});

test("a release that answers its health check and exits half a second later is not deployed: the unit keeps serving 2", async () => {
  writeFileSync(join(dir, "crashy.js"), readFileSync(join(ROOT, "test", "fixtures", "crashy.js")));
  writeFileSync(join(dir, "crashy.yaml"), readFileSync(join(dir, "togo.yaml"), "utf8").replace("binary: server.js", "binary: crashy.js").replace("run: node server.js", "run: node crashy.js"));
  const r = await cli(["deploy", "-c", "crashy.yaml", "--version", "3"]);
  if (r.exitCode !== 1) throw new Error(`expected exit 1, got ${r.exitCode}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  expect(r.stderr).toContain("settle window");
  expect(r.stderr).toContain("2 keeps serving");
  await serves("2");
  expect(await sh(`readlink ${APP_DIR}/current`)).toBe("v2");
  expect((await userctl(`is-active ${UNIT}`)).stdout.trim()).toBe("active");
});

test("rollback: version 1 serves", async () => {
  await ok(await cli(["rollback"]), "togo rollback");
  await serves("1");
  expect(await sh(`readlink ${APP_DIR}/current`)).toBe("v1");
  expect((await userctl(`is-active ${UNIT}`)).stdout.trim()).toBe("active");
});

test("destroy: the unit, the site and the app dir are gone", async () => {
  await ok(await cli(["destroy", "--yes"], 300_000), "togo destroy --yes");
  expect(await sh(`test -e /home/deploy/.config/systemd/user/${UNIT} && echo present || echo gone`)).toBe("gone");
  expect((await userctl(`is-active ${UNIT}`)).stdout.trim()).not.toBe("active");
  expect(await sh(`test -e ${APP_DIR} && echo present || echo gone`)).toBe("gone");
  expect(await sh(`test -e ${SITE} && echo present || echo gone`)).toBe("gone");
  expect(await sh("pgrep -u deploy -x node || echo none")).toBe("none");
}, 300_000);
