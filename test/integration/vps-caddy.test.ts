// Caddy in front of a vps deploy, for real: a Caddy on loopback whose main Caddyfile imports the
// site directory (what the bootstrap sets up as root on a server), the deploy user writes the site
// and reloads Caddy over SSH, and the app answers through Caddy. A site Caddy rejects fails the
// deploy before the switch, restores the previous site file and keeps the old release serving.
import { cpSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "@jest/globals";
import { cleanupTempDirs, EXAMPLE, freePort, tempDir, togo } from "../helpers/index.js";
import { startSshd, type Sshd } from "../helpers/sshd.js";
import { startSiteCaddy, type SiteCaddy } from "../helpers/caddy.js";

let sshd: Sshd;
let caddy: SiteCaddy | undefined;
let dir: string;
let sites: string;
let httpPort: number;
let appPort: number;

const viaCaddy = (host: string) =>
  new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: httpPort, path: "/", headers: { host } }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });

const yaml = (extra = "") => `app: hello
deploy:
  provider: vps
  host: 127.0.0.1
  port: ${sshd.port}
  user: ${sshd.user}
  identity_file: ${sshd.identityFile}
  known_hosts: ${sshd.knownHosts}
  domain: hello.localhost
  strategy: restart
  binary: server.js
  run: node server.js
  app_port: ${appPort}
  healthcheck: { path: /up, timeout: 8, interval: 0.1, settle: 0.5 }
  options:
    https: false
    caddy_dir: ${sites}
    caddyfile: ${join(sites, "..", "Caddyfile")}
${extra}`;

beforeAll(async () => {
  sshd = await startSshd();
  appPort = await freePort();
  caddy = await startSiteCaddy(sshd.uid);
  ({ httpPort, sites } = caddy);
  dir = tempDir("togo-vps-caddy-");
  cpSync(join(EXAMPLE, "server.js"), join(dir, "server.js"));
  writeFileSync(join(dir, "togo.yaml"), yaml());
});

afterAll(async () => {
  await caddy?.stop();
  await sshd?.stop();
  cleanupTempDirs();
});

test("deploy writes the Caddy site, reloads Caddy as the deploy user, and the app answers through Caddy", async () => {
  const r = await togo(["deploy", "--version", "1"], { cwd: dir });
  expect({ exit: r.exitCode, stderr: r.stderr }).toMatchObject({ exit: 0 });
  expect(r.stderr).toMatch(/✓ caddy\s+\d+/);
  expect(r.stdout.trim()).toBe("http://hello.localhost");
  const site = join(sites, "hello.caddy");
  expect(readFileSync(site, "utf8")).toContain(`reverse_proxy 127.0.0.1:${appPort}`);
  expect(statSync(site).uid).toBe(sshd.uid);
  expect(await viaCaddy("hello.localhost")).toEqual({ status: 200, body: "hello from 1\n" });

  // Unchanged site: no rewrite, no reload.
  const mtime = statSync(site).mtimeMs;
  const again = await togo(["deploy", "--version", "2"], { cwd: dir });
  expect(again.exitCode).toBe(0);
  expect(statSync(site).mtimeMs).toBe(mtime);
  expect(await viaCaddy("hello.localhost")).toEqual({ status: 200, body: "hello from 2\n" });
});

test("a site Caddy rejects fails the deploy before the switch and restores the previous site", async () => {
  writeFileSync(join(dir, "Caddyfile.tmpl"), "{{address}} {\n\treverse_proxy {{upstream}}\n\tno_such_directive on\n}\n");
  writeFileSync(join(dir, "bad.yaml"), yaml("    caddy_template: Caddyfile.tmpl\n"));
  const before = readFileSync(join(sites, "hello.caddy"), "utf8");
  const r = await togo(["deploy", "-c", "bad.yaml", "--version", "3"], { cwd: dir });
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toContain("Caddy rejected the site for hello.localhost");
  expect(r.stderr).toContain("no_such_directive");
  expect(readFileSync(join(sites, "hello.caddy"), "utf8")).toBe(before);
  expect(readlinkSync(join(sshd.home, "apps", "hello", "current"))).toBe("v2");
  expect(await viaCaddy("hello.localhost")).toEqual({ status: 200, body: "hello from 2\n" });
});

test("a user template with an unknown placeholder is a config error (exit 2) before anything runs", async () => {
  writeFileSync(join(dir, "typo.tmpl"), "{{adress}} {\n\treverse_proxy {{upstream}}\n}\n");
  writeFileSync(join(dir, "typo.yaml"), yaml("    caddy_template: typo.tmpl\n"));
  const before = sshd.accepted();
  const r = await togo(["deploy", "-c", "typo.yaml"], { cwd: dir });
  expect(r.exitCode).toBe(2);
  expect(r.stderr).toContain("deploy.options.caddy_template");
  expect(r.stderr).toContain("{{adress}}");
  expect(sshd.accepted()).toBe(before);
});

test("blue-green: the verified release keeps running on its own port, Caddy is pointed at it, the old one stops after the drain", async () => {
  writeFileSync(join(dir, "bg.yaml"), yaml().replace("strategy: restart", "strategy: blue-green\n  drain: 1"));
  const live = () => Number(readFileSync(join(sshd.home, "apps", "hello", "run", "live.port"), "utf8").trim());
  for (const v of ["bg1", "bg2"]) {
    const r = await togo(["deploy", "-c", "bg.yaml", "--version", v], { cwd: dir });
    if (r.exitCode !== 0) throw new Error(`deploy ${v} exited ${r.exitCode}\n${r.stderr}`);
    expect(r.stderr).toContain("strategy: blue-green");
    expect(readFileSync(join(sites, "hello.caddy"), "utf8")).toContain(`reverse_proxy 127.0.0.1:${live()}`);
    expect(await viaCaddy("hello.localhost")).toEqual({ status: 200, body: `hello from ${v}\n` });
  }
  const s = JSON.parse((await togo(["status", "-c", "bg.yaml", "--json"], { cwd: dir })).stdout);
  expect({ state: s.state, version: s.version }).toEqual({ state: "ready", version: "bg2" });
  // Only the live instance is left once the old one's 1 s drain is over (polled, never slept on).
  const runDir = join(sshd.home, "apps", "hello", "run");
  const deadline = Date.now() + 15_000;
  let pids: string[] = [];
  while (Date.now() < deadline) {
    pids = readdirSync(runDir).filter((f) => f.endsWith(".pid"));
    if (pids.length === 1) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(pids).toEqual([`slot-${live()}.pid`]);
  // And back to restart-style: the instances stop, the app serves on app_port again.
  const back = await togo(["deploy", "--version", "r3"], { cwd: dir });
  if (back.exitCode !== 0) throw new Error(`deploy r3 exited ${back.exitCode}\n${back.stderr}`);
  expect(await viaCaddy("hello.localhost")).toEqual({ status: 200, body: "hello from r3\n" });
  expect(readdirSync(runDir).filter((f) => f.endsWith(".pid") || f === "live.port")).toEqual(["app.pid"]);
});
