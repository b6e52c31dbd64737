// `togo diff`'s deploy plan against a REAL systemd host (a booted Debian container, see
// test/helpers/systemd-hosts.ts) over SSH: after a deploy, the port, env, a secret and the artifact
// change; the PR comment shows the systemd user unit and the Caddy site a deploy would write as a
// diff against the files on the host, the env keys by name (no value, old or new, anywhere in what
// togo prints), that the artifact would ship, and the version. A fleet with a host that cannot be
// reached says so in its row and the plan still exits 0. diff changes nothing on the host.
import { execa } from "execa";
import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "@jest/globals";
import { cleanupTempDirs, helloProject, togo, type CliResult } from "../helpers/index.js";
import { startSystemdHost, type SystemdHost } from "../helpers/systemd-hosts.js";

let host: SystemdHost;
let dir: string;

const VALUES = { secretOld: "sec-OLD-a81f0c", secretNew: "sec-NEW-5d93e2", greetingOld: "greet-old-6b10", greetingNew: "greet-new-f4c7", gone: "gone-value-1e58" };

const yaml = (port: number, env: string, hosts = "") => `app: hello
deploy:
  provider: vps
  ${hosts || `host: ${host.ip}`}
  user: deploy
  identity_file: ${host.identityFile}
  known_hosts: ${host.knownHosts}
  ssh_config: ${host.sshConfig}
  domain: hello.test
  binary: server.js
  run: node server.js
  app_port: ${port}
  strategy: restart
  healthcheck: { path: /up, timeout: 30, interval: 0.2 }
  env:
${env}
  secrets:
    TOKEN: env:HELLO_TOKEN
  options:
    service: systemd
    https: false
`;

async function ok(r: CliResult, what: string): Promise<CliResult> {
  if (r.exitCode !== 0) throw new Error(`${what} exited ${r.exitCode}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  return r;
}
const cli = (args: string[], token: string, timeout?: number) => togo(args, { cwd: dir, timeout, env: { HELLO_TOKEN: token } });
const git = (args: string[]) => execa("git", ["-c", "user.email=t@example.com", "-c", "user.name=t", ...args], { cwd: dir });
/** The files a deploy writes on the host, to show diff changed none of them. */
const hostFiles = async () =>
  (await host.exec("cd /home/deploy && sha256sum .config/systemd/user/togo-hello.service apps/hello/.env /etc/caddy/togo.d/hello.caddy; readlink apps/hello/current")).stdout;

beforeAll(async () => {
  host = await startSystemdHost();
  dir = helloProject("app: placeholder\n");
  writeFileSync(join(dir, "togo.yaml"), yaml(3000, `    GREETING: ${VALUES.greetingOld}\n    GONE: ${VALUES.gone}`));
}, 15 * 60_000);

afterAll(async () => {
  await host?.stop();
  cleanupTempDirs();
}, 120_000);

test("provision and deploy release 1.0.0 as a systemd user unit behind Caddy", async () => {
  await ok(await cli(["provision", "--yes"], VALUES.secretOld, 300_000), "provision");
  await ok(await cli(["deploy", "--version", "1.0.0"], VALUES.secretOld), "deploy 1.0.0");
}, 600_000);

test("the plan: the unit and site a deploy would write against the host's, env keys by name, the artifact, the version", async () => {
  writeFileSync(join(dir, "togo.yaml"), yaml(3001, `    GREETING: ${VALUES.greetingNew}`));
  appendFileSync(join(dir, "server.js"), "// changed after the deploy\n");
  await git(["init", "-q"]);
  await git(["add", "server.js", "togo.yaml"]);
  await git(["commit", "-q", "-m", "change"]);
  const head = String((await git(["rev-parse", "--short", "HEAD"])).stdout).trim();
  const before = await hostFiles();

  const r = await ok(await cli(["diff", "--markdown"], VALUES.secretNew), "diff --markdown");
  const md = r.stdout;
  expect(md).toContain("#### Deploy plan (vps)");
  expect(md).toContain(`- version a deploy would get: \`${head}\` (git describe)`);
  expect(md).toMatch(new RegExp(`\\| \`${host.ip.replace(/\./g, "\\.")}\` \\| \`1\\.0\\.0\` \\(\`[0-9a-f]{12}\`\\) \\| yes \\(artifact [0-9a-f]{12} → [0-9a-f]{12}\\) \\| restart \\|`));
  expect(md).toContain("**env**: 0 added, 1 removed, 2 changed, 0 unchanged");
  expect(md).toContain("```diff\n- GONE\n~ GREETING\n~ TOKEN (secret)\n```");
  // The unit on the host, against the one a deploy would write: the new port and version.
  expect(md).toContain("<summary>systemd unit <code>~/.config/systemd/user/togo-hello.service</code>: changes</summary>");
  expect(md).toContain("--- ~/.config/systemd/user/togo-hello.service (on the host)\n+++ ~/.config/systemd/user/togo-hello.service (a deploy would write)\n");
  expect(md).toContain(`-Description=hello (togo release 1.0.0)\n+Description=hello (togo release ${head})`);
  expect(md).toContain(`-Environment="PORT=3000" "TOGO_APP=hello" "TOGO_VERSION=1.0.0"\n+Environment="PORT=3001" "TOGO_APP=hello" "TOGO_VERSION=${head}"`);
  // The Caddy site: its upstream moves to the new port.
  expect(md).toContain("<summary>Caddy site <code>/etc/caddy/togo.d/hello.caddy</code>: changes</summary>");
  expect(md).toContain("-\treverse_proxy 127.0.0.1:3000 {\n+\treverse_proxy 127.0.0.1:3001 {");
  for (const v of Object.values(VALUES)) expect([v, md.includes(v) || r.stderr.includes(v)]).toEqual([v, false]);
  // Reads only: the unit, the env, the site and `current` are as the deploy left them.
  expect(await hostFiles()).toBe(before);
}, 300_000);

test("a fleet with a host that cannot be reached: its row says why, the rest of the plan stands, exit 0", async () => {
  // Nothing listens on 127.0.0.1:22 for this test (and were something there, its host key is not known).
  writeFileSync(join(dir, "togo.yaml"), yaml(3001, `    GREETING: ${VALUES.greetingNew}`, `hosts: [${host.ip}, 127.0.0.1]`));
  const r = await ok(await cli(["diff", "--markdown"], VALUES.secretNew), "diff --markdown (fleet)");
  expect(r.stdout).toMatch(/\| `127\.0\.0\.1` \| host unreachable: [^|]+\| \| \|/);
  expect(r.stdout).toContain("- unreachable hosts are not compared; the rest of the plan stands");
  expect(r.stdout).toMatch(new RegExp(`\\| \`${host.ip.replace(/\./g, "\\.")}\` \\| \`1\\.0\\.0\``));
  // One host answered: its env and unit are said once, for it.
  expect(r.stdout).toContain(`**env** (${host.ip}): 0 added, 1 removed, 2 changed`);
}, 300_000);
