// An aws fleet (deploy.options.instances: 2) deployed for real: two REAL systemd hosts (booted
// Debian containers, see test/helpers/systemd-hosts.ts) stand in for the two EC2 instances. What
// cannot run here is EC2 itself, the load balancer and cloud-init, so:
// - each host gets what the synthesized stack's user data asks cloud-init to do (its write_files and
//   runcmd, read from cdk.tf.json: the Caddyfile with no site and no port, the site dir the deploy
//   user owns, lingering, Caddy restarted); the image already has the packages and the deploy user;
// - the stack's state is the one an apply would leave: its outputs, `hosts` listing both instances
//   and `caddy_site` as synthesized;
// - the balancer's part is played by the test: it asks each instance's :80 for the health check
//   path, as the target group does, and for the page.
// Driven only through the built CLI: the first deploy starts while the hosts are still "booting"
// and waits for cloud-init's mark; deploys fan out over one target per instance, blue-green through
// each instance's :80 site (its upstream the release's own port); status, releases and rollback per host.
import { afterAll, beforeAll, expect, test } from "@jest/globals";
import { randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { cleanupTempDirs, helloProject, togo, type CliResult } from "../helpers/index.js";
import { startSystemdHost, type ExecResult, type SystemdHost } from "../helpers/systemd-hosts.js";
import { getWithHost, hostChecks } from "../helpers/checks.js";

const MIRROR = process.env.TOGO_TEST_PLUGIN_MIRROR ?? "/opt/tf-plugins";
const SITE = "/etc/caddy/togo.d/hello.caddy";
const APP_PORT = 3000;

let hosts: SystemdHost[] = [];
let dir: string;

/** What to look at when a step fails: each host's Caddy, its site, the app's logs. */
async function diagnostics(): Promise<string> {
  const each = await Promise.all(
    hosts.map(async (h) => {
      const r = await h
        .exec(
          [
            `echo "== caddy"; journalctl --no-pager -n 15 -u caddy -o cat 2>&1; cat /etc/caddy/Caddyfile ${SITE} 2>&1`,
            `echo "== app"; tail -n 20 /home/deploy/apps/hello/logs/*.log 2>&1; cat /home/deploy/apps/hello/run/live.port 2>&1`,
            `echo "== user units"; runuser -u deploy -- env XDG_RUNTIME_DIR=/run/user/1000 systemctl --user list-units --no-pager 'togo-*' 2>&1`,
          ].join("; "),
          { timeoutMs: 20_000 },
        )
        .catch((e: Error) => ({ code: 1, stdout: "", stderr: e.message }));
      return `--- ${h.name} (${h.ip})\n${r.stdout}${r.stderr}`;
    }),
  );
  return each.join("\n");
}

const { ok, eventually } = hostChecks(diagnostics, { label: "hosts", timeoutMs: 60_000, intervalMs: 200 });

const cli = (args: string[]) => togo(args, { cwd: dir, timeout: 300_000 });

/** GET `path` on an instance's :80 with the domain's Host, as the load balancer forwards a visitor (or checks health). */
const get = (h: SystemdHost, path: string, host = "hello.example.com") => getWithHost(h.ip, 80, path, host);

/** `systemctl --user` of deploy, run as root inside the host (no SSH session involved). */
const userctl = async (h: SystemdHost, args: string) => (await h.exec(`runuser -u deploy -- env XDG_RUNTIME_DIR=/run/user/1000 systemctl --user ${args}`)).stdout.trim();

/** The upstream port of the :80 site on a host. */
async function upstream(h: SystemdHost): Promise<number> {
  const text = (await ok(await h.exec(`cat ${SITE}`), `reading the site on ${h.name}`)).stdout;
  expect(text).toMatch(/^:80 \{/m);
  return Number(/reverse_proxy 127\.0\.0\.1:(\d+)/.exec(text)?.[1]);
}

/** The local state an apply of the stack leaves, as far as togo reads it: its outputs. */
function appliedState(outputs: Record<string, string | string[]>): string {
  return JSON.stringify({
    version: 4,
    terraform_version: "1.11.4",
    serial: 1,
    lineage: randomUUID(),
    outputs: Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, { value: v, type: Array.isArray(v) ? ["tuple", v.map(() => "string")] : "string" }])),
    resources: [],
    check_results: null,
  });
}

beforeAll(async () => {
  hosts = await Promise.all([startSystemdHost(), startSystemdHost()]);
  const [a, b] = hosts;
  // One deploy key for the fleet, as the stack installs one public key on every instance.
  await ok(await b.exec(`cat >> /home/deploy/.ssh/authorized_keys`, { input: readFileSync(`${a.identityFile}.pub`, "utf8") }), "authorizing the deploy key on the second host");
  dir = helloProject(`app: hello
deploy:
  provider: aws
  region: eu-west-1
  user: deploy
  identity_file: ${a.identityFile}
  known_hosts: known_hosts
  ssh_config: ${a.sshConfig}
  binary: server.js
  run: node server.js
  app_port: ${APP_PORT}
  drain: 1
  healthcheck: { path: /up, timeout: 30, interval: 0.2, settle: 0.5 }
  options:
    public_key_file: deploy.pub
    ssh_cidrs: [10.231.0.0/16]
    ami: ami-0123456789abcdef0
    instances: 2
terraform:
  engine: terraform
  plugin_mirror: ${MIRROR}
`);
  writeFileSync(join(dir, "known_hosts"), hosts.map((h) => readFileSync(h.knownHosts, "utf8")).join(""));
  writeFileSync(join(dir, "deploy.pub"), readFileSync(`${a.identityFile}.pub`));
}, 15 * 60_000);

afterAll(async () => {
  await Promise.all(hosts.map((h) => h.stop()));
  cleanupTempDirs();
}, 120_000);

let init: { write_files: { path: string; content: string; permissions: string }[]; runcmd: string[][] };

test("the stack's user data: a Caddyfile that fixes no site and no port; the state an apply leaves", async () => {
  await ok(await cli(["synth"]), "togo synth");
  const stack = JSON.parse(readFileSync(join(dir, "cdktf.out/stacks/hello-aws/cdk.tf.json"), "utf8"));
  const userData = [stack.resource.aws_instance.server_0.user_data, stack.resource.aws_instance.server_1.user_data] as string[];
  expect(userData[1]).toBe(userData[0]);
  init = parse(userData[0]) as typeof init;
  const caddyfile = init.write_files.find((f) => f.path === "/etc/caddy/Caddyfile")!;
  expect(caddyfile.content).not.toContain(String(APP_PORT));
  expect(caddyfile.content).not.toContain("reverse_proxy");

  // What an apply of this stack leaves: both instances in `hosts`, the :80 site the fleet's instances serve.
  expect(stack.output.caddy_site.value).toBe(":80");
  writeFileSync(
    join(dir, "terraform.hello-aws.tfstate"),
    appliedState({
      public_ip: hosts[0].ip,
      hosts: hosts.map((h) => h.ip),
      instance_id: "i-00000000000000000",
      instance_ids: ["i-00000000000000000", "i-11111111111111111"],
      ssh_user: "deploy",
      url: "http://togo-lb-123.eu-west-1.elb.amazonaws.com",
      lb_dns_name: "togo-lb-123.eu-west-1.elb.amazonaws.com",
      caddy_site: stack.output.caddy_site.value,
      region: "eu-west-1",
    }),
  );
}, 300_000);

/** Checks every instance serves `version` blue-green through its :80 site as a systemd user unit; returns each one's upstream port. */
async function servesEverywhere(version: string): Promise<number[]> {
  const ports: number[] = [];
  for (const h of hosts) {
    expect(await get(h, "/")).toEqual({ status: 200, body: `hello from ${version}\n` });
    // The target group's health check on healthcheck.path, through Caddy, by the instance's IP.
    expect(await get(h, "/up", h.ip)).toEqual({ status: 200, body: "ok\n" });
    const port = await upstream(h);
    expect(port).not.toBe(APP_PORT);
    expect((await h.exec("cat /home/deploy/apps/hello/run/live.port")).stdout.trim()).toBe(String(port));
    expect((await h.exec("readlink /home/deploy/apps/hello/current")).stdout.trim()).toBe(`v${version}`);
    // Lingering from the user data: each release is its own systemd user unit on its port.
    expect(await userctl(h, `is-active togo-hello-${port}.service`)).toBe("active");
    ports.push(port);
  }
  return ports;
}

const seen: number[][] = [];

test("a deploy started while the instances' first boot is still at work waits for it, then goes blue-green on every instance", async () => {
  // Mid-boot, as right after `togo provision`: cloud-init is there but has not finished, so no
  // lingering, no site dir, the package's own Caddyfile. Judged now, the hosts would get the process
  // manager and a restart-style release with no site, and keep them.
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  for (const h of hosts) {
    await ok(await h.exec(`printf '#!/bin/sh\\nexit 0\\n' > /usr/local/bin/cloud-init && chmod 755 /usr/local/bin/cloud-init && rm -rf /var/lib/cloud`), `a cloud-init at work on ${h.name}`);
    expect((await h.exec("test -e /etc/caddy/togo.d && echo present || echo missing")).stdout.trim()).toBe("missing");
    expect((await h.exec("loginctl show-user deploy -p Linger 2>/dev/null || echo Linger=no")).stdout.trim()).toBe("Linger=no");
  }
  const deploy = cli(["deploy", "--version", "1", "--json"]);
  let ended: CliResult | undefined;
  void deploy.then((r) => (ended = r));
  // The deploy is waiting on both instances (its wait is a shell of deploy's there, its script on its
  // command line or, in togo's command channel, in the file it runs), not through already...
  const waiting = `for p in $(pgrep -u deploy -x sh); do a=$(tr '\\0' ' ' < /proc/$p/cmdline); case "$a" in *boot-finished*) exit 0;; esac; f=\${a#sh }; f=\${f% }; [ -f "$f" ] && grep -q boot-finished "$f" && exit 0; done; exit 1`;
  for (const h of hosts) {
    await eventually(`the deploy to wait on ${h.name}`, async () => ended ?? (await h.exec(waiting)).code, (v) => v === 0 || typeof v === "object", 120_000);
    if (ended) throw new Error(`the deploy did not wait for the first boot (exit ${ended.exitCode})\n--- stderr\n${ended.stderr}`);
  }
  // ...when cloud-init finishes: the user data's files and commands, then its boot-finished mark.
  await Promise.all(
    hosts.map(async (h) => {
      for (const f of init.write_files) await ok(await h.exec(`cat > ${quote(f.path)} && chmod ${f.permissions} ${quote(f.path)}`, { input: f.content }), `writing ${f.path} on ${h.name}`);
      for (const argv of init.runcmd) await ok(await h.exec(argv.map(quote).join(" "), { timeoutMs: 60_000 }), `${argv.join(" ")} on ${h.name}`);
      expect((await h.exec("systemctl is-active caddy")).stdout.trim()).toBe("active");
      expect((await h.exec("stat -c %U /etc/caddy/togo.d")).stdout.trim()).toBe("deploy");
      // No site yet: :80 answers nothing (the target group sees the instance unhealthy until a deploy).
      expect((await get(h, "/up")).status).toBe(0);
      await ok(await h.exec("mkdir -p /var/lib/cloud/instance && touch /var/lib/cloud/instance/boot-finished"), `finishing the first boot of ${h.name}`);
    }),
  );
  const r = await ok(await deploy, "togo deploy --version 1");
  for (const h of hosts) expect(r.stderr).toMatch(new RegExp(`deploy@${h.ip.replace(/\./g, "\\.")}\\S*: waited \\d+s for its first boot \\(cloud-init\\) to finish`));
  expect(r.stderr).toContain("strategy: blue-green (auto): Caddy fronts the app");
  expect(JSON.parse(r.stdout).url).toBe("http://togo-lb-123.eu-west-1.elb.amazonaws.com");
  seen.push(await servesEverywhere("1"));
}, 600_000);

test("the next deploy reaches every instance: blue-green through each instance's :80 site, a new upstream port, the old release drained", async () => {
  const r = await ok(await cli(["deploy", "--version", "2", "--json"]), "togo deploy --version 2");
  expect(r.stderr).not.toContain("first boot");
  expect(r.stderr).toContain("strategy: blue-green (auto): Caddy fronts the app");
  seen.push(await servesEverywhere("2"));
  for (const [i, h] of hosts.entries()) {
    expect(seen[1][i]).not.toBe(seen[0][i]);
    // The old release gets its drain (1 s), then its unit stops.
    await eventually(`release 1's unit on ${h.name} to stop after its drain`, () => userctl(h, `is-active togo-hello-${seen[0][i]}.service`), (state) => state !== "active");
  }

  const s = JSON.parse((await cli(["status", "--json"])).stdout) as Record<string, any>;
  expect(s).toMatchObject({ state: "ready", version: "2", url: "http://togo-lb-123.eu-west-1.elb.amazonaws.com" });
  expect(s.hosts).toEqual(hosts.map((h) => expect.objectContaining({ host: h.ip, state: "ready", version: "2" })));

  const releases = JSON.parse((await ok(await cli(["releases", "--json"]), "togo releases")).stdout) as { host: string; version: string; current: boolean }[];
  for (const h of hosts) {
    expect(releases.filter((r) => r.host === h.ip).map((r) => [r.version, r.current])).toEqual([
      ["2", true],
      ["1", false],
    ]);
  }
}, 600_000);

test("rollback goes back on every instance, through Caddy again", async () => {
  const r = await ok(await cli(["rollback"]), "togo rollback");
  expect(r.stderr).not.toContain("warning");
  for (const h of hosts) {
    expect(await get(h, "/")).toEqual({ status: 200, body: "hello from 1\n" });
    expect((await h.exec("readlink /home/deploy/apps/hello/current")).stdout.trim()).toBe("v1");
  }
}, 300_000);
