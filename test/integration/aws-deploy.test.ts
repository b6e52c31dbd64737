// The aws driver's Deploy and Status: the vps shipping aimed at the host and user the stack's
// outputs name, never at a host from the user. The one thing that cannot run here is the EC2
// instance, so the stack's state is the one an apply would leave (its outputs, written as
// terraform writes them) and the "instance" is a real sshd on 127.0.0.1 with a fresh user. Reading
// the outputs (terraform init from the provider mirror + output -json), the SSH shipping, the
// release on the host and the live status all run for real.
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { cleanupTempDirs, EXAMPLE, freePort, tempDir, togo } from "../helpers/index.js";
import { startSshd, type Sshd } from "../helpers/sshd.js";

const MIRROR = process.env.TOGO_TEST_PLUGIN_MIRROR ?? "/opt/tf-plugins";
const INSTANCE = "i-0123456789abcdef0";

let sshd: Sshd;
let dir: string;
let appPort: number;
let caddy: ChildProcess | undefined;

const yaml = (options = "") => `app: hello
deploy:
  provider: aws
  region: eu-west-1
  port: ${sshd.port}
  user: ${sshd.user}
  identity_file: ${sshd.identityFile}
  known_hosts: ${sshd.knownHosts}
  ssh_config: ${sshd.sshConfig}
  binary: server.js
  run: node server.js
  app_port: ${appPort}
  healthcheck: { path: /up, timeout: 8, interval: 0.1, settle: 0.5 }
  drain: 1
  env:
    GREETING: hello
  options:
    public_key_file: ${sshd.identityFile}.pub
    ssh_cidrs: [127.0.0.1/32]
    ami: ami-0123456789abcdef0
${options}terraform:
  engine: terraform
  plugin_mirror: ${MIRROR}
`;

/** Runs togo and parses its JSON output; a failure shows the exit code and stderr. */
async function json<T>(args: string[]): Promise<T> {
  const r = await togo(args, { cwd: dir });
  const data = JSON.parse(String(r.stdout)) as T;
  // togo status exits 3 (and still prints) when the app is not ready.
  const exit = args[0] === "status" && (data as { state?: string }).state !== "ready" ? 3 : 0;
  expect({ args, exit: r.exitCode, stderr: r.stderr }).toMatchObject({ exit });
  return data;
}

/** The local state an apply of the aws stack leaves, as far as togo reads it: its outputs. */
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
  sshd = await startSshd();
  appPort = await freePort();
  dir = tempDir("togo-aws-deploy-");
  cpSync(join(EXAMPLE, "server.js"), join(dir, "server.js"));
  writeFileSync(join(dir, "togo.yaml"), yaml());
});

afterAll(async () => {
  if (caddy?.pid && caddy.exitCode === null) {
    process.kill(caddy.pid, "SIGTERM");
    await new Promise((r) => caddy!.once("exit", r));
  }
  await sshd?.stop(); // ends the app the deploy started (the user's processes), by PID
  cleanupTempDirs();
});

test("before provision: deploy refuses with what to run; status says not deployed", async () => {
  const r = await togo(["deploy", "--version", "1"], { cwd: dir });
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toContain("hello has no server yet (no public_ip output in stack hello-aws); run: togo provision");
  const s = await json<{ state: string }>(["status", "--json"]);
  expect(s.state).toBe("not-deployed");
  expect(sshd.accepted()).toBe(0);
});

test("deploy and status go to the public_ip and ssh_user outputs", async () => {
  // What `togo provision` leaves: the synthesized stack and its state with the instance's outputs.
  const synth = await togo(["synth"], { cwd: dir });
  expect({ exit: synth.exitCode, stderr: synth.stderr }).toMatchObject({ exit: 0 });
  writeFileSync(
    join(dir, "terraform.hello-aws.tfstate"),
    appliedState({ public_ip: "127.0.0.1", instance_id: INSTANCE, ssh_user: sshd.user, url: "http://127.0.0.1", region: "eu-west-1" }),
  );

  const r = await togo(["deploy", "--version", "1", "--json"], { cwd: dir });
  expect({ exit: r.exitCode, stderr: r.stderr }).toMatchObject({ exit: 0 });
  expect(r.stderr).not.toContain("deploy.host");
  expect(JSON.parse(String(r.stdout)).url).toBe("http://127.0.0.1"); // the stack's url (Caddy on :80), not app_port
  expect(sshd.accepted()).toBeGreaterThan(0);
  const appDir = join(sshd.home, "apps", "hello");
  expect(readlinkSync(join(appDir, "current"))).toBe("v1");
  expect(readFileSync(join(appDir, ".versions"), "utf8")).toBe("1\n");
  expect(await (await fetch(`http://127.0.0.1:${appPort}/`)).text()).toBe("hello from 1\n");

  const s = await json<Record<string, any>>(["status", "--json"]);
  expect(s).toMatchObject({ app: "hello", driver: "aws", state: "ready", healthy: true, version: "1", url: "http://127.0.0.1" });
  expect(s.outputs).toMatchObject({ public_ip: "127.0.0.1", instance_id: INSTANCE, ssh_user: sshd.user });

  const releases = await json<{ version: string; current: boolean }[]>(["releases", "--json"]);
  expect(releases).toEqual([expect.objectContaining({ version: "1", current: true })]);
  expect(existsSync(join(dir, "terraform.hello-aws.tfstate"))).toBe(true);
});

/**
 * What cloud-init sets up on an instance, on loopback: a site dir the deploy user owns, imported by a
 * Caddyfile Caddy runs with (here with a loopback admin and no automatic HTTPS). The default site
 * would listen on :80 itself; a template puts it on a loopback port this test picked and keeps the
 * address the deploy chose in a comment.
 */
async function instanceCaddy(): Promise<{ sites: string; httpPort: number; options: string }> {
  const [httpPort, adminPort] = [await freePort(), await freePort()];
  const root = tempDir("togo-aws-caddy-");
  chmodSync(root, 0o755);
  const sites = join(root, "togo.d");
  mkdirSync(sites);
  chownSync(sites, sshd.uid, sshd.uid);
  const caddyfile = join(root, "Caddyfile");
  writeFileSync(caddyfile, `{\n\tauto_https off\n\tadmin 127.0.0.1:${adminPort}\n}\n\nimport ${sites}/*.caddy\n`);
  chmodSync(caddyfile, 0o644);
  const xdg = tempDir("togo-aws-caddy-xdg-");
  caddy = spawn("caddy", ["run", "--config", caddyfile, "--adapter", "caddyfile"], { env: { ...process.env, XDG_CONFIG_HOME: xdg, XDG_DATA_HOME: xdg, HOME: xdg }, stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  caddy.stderr?.on("data", (d) => (log += d));
  for (let i = 0; i < 400 && !(await fetch(`http://127.0.0.1:${adminPort}/config/`).then(() => true, () => false)); i++) {
    if (caddy.exitCode !== null) throw new Error(`caddy exited: ${log}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  writeFileSync(join(dir, "site.tmpl"), `# address: {{address}}\nhttp://127.0.0.1:${httpPort} {\n\treverse_proxy {{upstream}}\n}\n`);
  return { sites, httpPort, options: `    caddy_dir: ${sites}\n    caddyfile: ${caddyfile}\n    caddy_template: site.tmpl\n` };
}

let instance: Awaited<ReturnType<typeof instanceCaddy>>;
const outputs = (caddySite: string) =>
  appliedState({ public_ip: "127.0.0.1", hosts: ["127.0.0.1"], instance_id: INSTANCE, instance_ids: [INSTANCE], ssh_user: sshd.user, url: "http://127.0.0.1", caddy_site: caddySite, region: "eu-west-1" });

test("an instance made by an earlier togo (caddy_site empty: its own Caddyfile serves :80 on app_port) stays restart-style, though Caddy runs and the site dir is writable", async () => {
  instance = await instanceCaddy();
  writeFileSync(join(dir, "togo.yaml"), yaml(instance.options));
  writeFileSync(join(dir, "terraform.hello-aws.tfstate"), outputs(""));

  const r = await togo(["deploy", "--version", "1b"], { cwd: dir });
  expect({ exit: r.exitCode, stderr: r.stderr }).toMatchObject({ exit: 0 });
  expect(r.stderr).toContain("strategy: restart (auto): a restart in place on app_port");
  // No site next to the Caddyfile's own :80 block (Caddy would refuse the pair as ambiguous).
  expect(readdirSync(instance.sites)).toEqual([]);
  expect(await (await fetch(`http://127.0.0.1:${appPort}/`)).text()).toBe("hello from 1b\n");
  expect(existsSync(join(sshd.home, "apps", "hello", "run", "live.port"))).toBe(false);
});

test("strategy: blue-green on such an instance is refused before anything changes (nothing could point Caddy at the new release)", async () => {
  writeFileSync(join(dir, "togo.yaml"), yaml(instance.options).replace("  drain: 1\n", "  drain: 1\n  strategy: blue-green\n"));
  const appDir = join(sshd.home, "apps", "hello");
  const before = readdirSync(appDir).sort();
  const r = await togo(["deploy", "--version", "1c"], { cwd: dir });
  expect({ exit: r.exitCode, stderr: r.stderr }).toMatchObject({ exit: 1, stderr: expect.stringMatching(/deploy\.strategy is blue-green but on \S+@127\.0\.0\.1:\d+ no Caddy fronts the app/) });
  expect(readdirSync(appDir).sort()).toEqual(before);
  expect(readlinkSync(join(appDir, "current"))).toBe("v1b");
  expect(readdirSync(instance.sites)).toEqual([]);
  expect(await (await fetch(`http://127.0.0.1:${appPort}/`)).text()).toBe("hello from 1b\n");
});

test("with the stack's hosts list and caddy_site :80 (what a new stack outputs): blue-green through the :80 site, its upstream the new release's own port on every deploy", async () => {
  writeFileSync(join(dir, "togo.yaml"), yaml(instance.options));
  writeFileSync(join(dir, "terraform.hello-aws.tfstate"), outputs(":80"));
  const site = join(instance.sites, "hello.caddy");
  const livePort = join(sshd.home, "apps", "hello", "run", "live.port");
  const upstreams: number[] = [];
  for (const version of ["2", "3"]) {
    const r = await togo(["deploy", "--version", version], { cwd: dir });
    expect({ exit: r.exitCode, stderr: r.stderr }).toMatchObject({ exit: 0 });
    expect(r.stderr).toContain("strategy: blue-green (auto): Caddy fronts the app");
    const text = readFileSync(site, "utf8");
    const port = Number(/reverse_proxy 127\.0\.0\.1:(\d+)/.exec(text)?.[1]);
    expect(text).toBe(`# address: :80\nhttp://127.0.0.1:${instance.httpPort} {\n\treverse_proxy 127.0.0.1:${port}\n}\n`);
    // The release's own port, as run/live.port names it: never app_port (no port is fixed at boot).
    expect(port).not.toBe(appPort);
    expect(readFileSync(livePort, "utf8").trim()).toBe(String(port));
    expect(statSync(site).uid).toBe(sshd.uid);
    expect(await (await fetch(`http://127.0.0.1:${instance.httpPort}/`)).text()).toBe(`hello from ${version}\n`);
    upstreams.push(port);
  }
  expect(upstreams[1]).not.toBe(upstreams[0]);

  const s = await json<Record<string, any>>(["status", "--json"]);
  expect(s).toMatchObject({ state: "ready", version: "3", url: "http://127.0.0.1" });
  expect(s.outputs).toMatchObject({ hosts: ["127.0.0.1"], caddy_site: ":80" });
});
