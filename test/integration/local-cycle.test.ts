// The whole life of an app on the local driver, for real: terraform apply (cdktf engine), releases on
// disk, the process manager, health checks, prune, rollback, the lock, destroy.
import { existsSync, readFileSync, readlinkSync, readdirSync, statSync, writeFileSync, copyFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupTempDirs, freePort, killPidFile, ROOT, tempDir, togo } from "../helpers/index.js";

const TRICKY: Record<string, string> = {
  T_QUOTES: `it's "quoted"`,
  T_DOLLAR: "cost $5 and ${HOME} and $(id)",
  T_BACKTICK: "run `uname` now",
  T_SPACES: "  two  spaces  ",
  T_NEWLINES: "line one\nline two\n",
  T_UNICODE: "héllo wörld ✓ 日本",
  T_BACKSLASH: "C:\\path\\n",
};
const SECRET = "s3cr3t 'with' $dollar \"and\" `ticks`\nsecond line";

let dir: string;
let appDir: string;
let port: number;
let url: string;

const yaml = (extra = "") => `app: cycle
deploy:
  provider: local
  binary: server.js
  run: node server.js
  app_port: ${port}
  versions_to_keep: 2
  healthcheck: { path: /up, timeout: 8, interval: 0.1, settle: 0.5 }
  env:
${Object.entries(TRICKY)
  .map(([k, v]) => `    ${k}: ${JSON.stringify(v).replaceAll("${", () => "$${")}`) // $${ is togo.yaml's literal ${
  .join("\n")}
    GREETING: hi
  secrets:
    T_SECRET: env:CYCLE_SECRET
${extra}`;

const env = { CYCLE_SECRET: SECRET };
const get = async (path: string) => {
  const r = await fetch(`${url}${path}`);
  return { status: r.status, text: await r.text() };
};
const versions = () => readFileSync(join(appDir, ".versions"), "utf8");
const current = () => readlinkSync(join(appDir, "current"));

beforeAll(async () => {
  port = await freePort();
  url = `http://127.0.0.1:${port}`;
  dir = tempDir("togo-cycle-");
  appDir = join(dir, ".togo", "cycle");
  copyFileSync(join(ROOT, "test", "fixtures", "envapp.js"), join(dir, "server.js"));
  writeFileSync(join(dir, "togo.yaml"), yaml());
});

afterAll(async () => {
  await killPidFile(join(appDir, "run", "app.pid"));
  await killPidFile(join(appDir, "run", "candidate.pid"));
  cleanupTempDirs();
});

test("provision applies the local stack and reports the URL", async () => {
  const r = await togo(["provision", "--yes"], { cwd: dir, env });
  expect(r.stderr).toContain("apply cycle-local");
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toContain(url);
  expect(existsSync(join(dir, "terraform.cycle-local.tfstate"))).toBe(true);
  expect(statSync(appDir).isDirectory()).toBe(true);
});

test("an unchanged provision applies nothing", async () => {
  const r = await togo(["provision", "--yes"], { cwd: dir, env });
  expect(r.exitCode).toBe(0);
  expect(r.stderr).toContain("infrastructure unchanged");
  expect(r.stderr).not.toContain("apply cycle-local");
  const forced = await togo(["provision", "--yes", "--force"], { cwd: dir, env });
  expect(forced.exitCode).toBe(0);
  expect(forced.stderr).toContain("apply cycle-local");
});

test("status before any deploy: printed, and exit 3 (not ready), as text and as JSON", async () => {
  const text = await togo(["status"], { cwd: dir, env });
  expect({ exit: text.exitCode, stderr: text.stderr }).toEqual({ exit: 3, stderr: "" });
  expect(text.stdout).toMatch(/^state\s+not-deployed$/m);
  const json = await togo(["status", "--json"], { cwd: dir, env });
  expect(json.exitCode).toBe(3);
  expect(JSON.parse(json.stdout)).toMatchObject({ app: "cycle", state: "not-deployed", healthy: false, url });
});

test("deploy v1: release folder, current, .versions, .env with exact bytes, app serving", async () => {
  const r = await togo(["deploy", "--version", "1"], { cwd: dir, env });
  expect({ exit: r.exitCode, stderr: r.stderr }).toMatchObject({ exit: 0 });
  expect(r.stdout.trim()).toBe(url);
  for (const stage of ["secrets", "build", "lock", "upload", "install", "verify", "switch", "record", "prune"]) {
    expect(r.stderr).toMatch(new RegExp(`✓ ${stage}\\s+\\d+(ms|\\.\\d+s)`));
  }
  expect(r.stderr).not.toContain("s3cr3t");
  expect(current()).toBe("v1");
  expect(versions()).toBe("1\n");
  expect(readdirSync(join(appDir, "v1"))).toContain("server.js");

  const envFile = join(appDir, ".env");
  expect(statSync(envFile).mode & 0o777).toBe(0o600);
  const expected =
    `T_QUOTES="it's \\"quoted\\""\n` +
    `T_DOLLAR='cost $5 and \${HOME} and $(id)'\n` +
    "T_BACKTICK='run `uname` now'\n" +
    `T_SPACES='  two  spaces  '\n` +
    `T_NEWLINES='line one\nline two\n'\n` +
    `T_UNICODE='héllo wörld ✓ 日本'\n` +
    `T_BACKSLASH='C:\\path\\n'\n` +
    `GREETING='hi'\n` +
    "T_SECRET=\"s3cr3t 'with' \\$dollar \\\"and\\\" \\`ticks\\`\nsecond line\"\n";
  expect(readFileSync(envFile, "utf8")).toBe(expected);

  // What the app actually sees is byte for byte what togo.yaml and the secret said.
  const seen = JSON.parse((await get("/env")).text) as Record<string, string>;
  expect(seen).toEqual({ ...TRICKY, T_SECRET: SECRET });
  expect((await get("/")).text).toBe("hi from 1\n");
});

test("deploy v2 and v3: newest first, prune keeps 2, never the current", async () => {
  expect((await togo(["deploy", "--version", "2"], { cwd: dir, env })).exitCode).toBe(0);
  expect(current()).toBe("v2");
  expect(versions()).toBe("2\n1\n");
  expect((await get("/")).text).toBe("hi from 2\n");

  const r3 = await togo(["deploy", "--version", "3"], { cwd: dir, env });
  expect(r3.exitCode).toBe(0);
  expect(versions()).toBe("3\n2\n");
  expect(existsSync(join(appDir, "v1"))).toBe(false);
  expect(existsSync(join(appDir, "v2"))).toBe(true);
  expect(current()).toBe("v3");
});

test("status --json: the contract's shape, ready with the version", async () => {
  const r = await togo(["status", "--json"], { cwd: dir, env });
  expect(r.exitCode).toBe(0);
  const s = JSON.parse(r.stdout);
  expect(Object.keys(s).sort()).toEqual(["app", "driver", "healthy", "message", "outputs", "state", "url", "version"]);
  expect(s).toMatchObject({ app: "cycle", driver: "local", state: "ready", version: "3", healthy: true, url });
  expect(s.outputs).toMatchObject({ app_dir: appDir, url });
});

test("rollback switches to the previous release and deletes nothing", async () => {
  const r = await togo(["rollback"], { cwd: dir, env });
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toContain("from 3 to 2");
  expect(current()).toBe("v2");
  expect(versions()).toBe("2\n3\n");
  expect(existsSync(join(appDir, "v3"))).toBe(true);
  expect((await get("/")).text).toBe("hi from 2\n");

  const releases = JSON.parse((await togo(["releases", "--json"], { cwd: dir, env })).stdout);
  expect(releases.map((x: { version: string; current: boolean }) => [x.version, x.current])).toEqual([
    ["2", true],
    ["3", false],
  ]);
  const unknown = await togo(["rollback", "9"], { cwd: dir, env });
  expect(unknown.exitCode).toBe(2);
  expect(unknown.stderr).toContain("release 9 is not on local");
});

test("a failing health check leaves the previous release serving and shows the app's log", async () => {
  writeFileSync(join(dir, "broken.yaml"), yaml().replace("timeout: 8", "timeout: 3").replace("    GREETING: hi\n", "    GREETING: hi\n    FAIL_HEALTH: '1'\n"));
  const r = await togo(["deploy", "-c", "broken.yaml", "--version", "4"], { cwd: dir, env });
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toContain("release 4 failed its health check");
  expect(r.stderr).toContain("500");
  expect(r.stderr).toContain("2 keeps serving");
  expect(r.stderr).toContain("envapp 4 on"); // the app's own last log lines
  expect(current()).toBe("v2");
  expect((await get("/")).text).toBe("hi from 2\n");
  expect(existsSync(join(appDir, "v4"))).toBe(true); // kept for inspection
  expect(readFileSync(join(appDir, ".failed"), "utf8")).toBe("4\n");
  expect(existsSync(join(appDir, ".env.next"))).toBe(false);
  expect(JSON.parse((await get("/env")).text).T_SECRET).toBe(SECRET); // the live env is untouched
});

test("a second concurrent deploy is refused by the lock; --lock-wait waits for it", async () => {
  writeFileSync(join(dir, "slow.yaml"), yaml("  release_cmd: sleep 3\n"));
  const first = togo(["deploy", "-c", "slow.yaml", "--version", "5"], { cwd: dir, env });
  const lockInfo = join(appDir, ".lock", "info");
  for (let i = 0; i < 200 && !existsSync(lockInfo); i++) await new Promise((r) => setTimeout(r, 50));
  expect(existsSync(lockInfo)).toBe(true);

  const second = await togo(["deploy", "--version", "6"], { cwd: dir, env });
  expect(second.exitCode).toBe(1);
  expect(second.stderr).toContain("holds the lock");
  expect(second.stderr).toContain("version=5");
  expect(second.stderr).toContain("togo lock release");

  const waiting = togo(["deploy", "--version", "7", "--lock-wait", "60"], { cwd: dir, env });
  expect((await first).exitCode).toBe(0);
  const w = await waiting;
  expect(w.exitCode).toBe(0);
  expect(current()).toBe("v7");
  expect(versions()).toBe("7\n5\n");
  expect(existsSync(join(appDir, ".lock"))).toBe(false);
});

test("destroy refuses without --yes off a terminal, then removes everything", async () => {
  const refused = await togo(["destroy"], { cwd: dir, env });
  expect(refused.exitCode).toBe(2);
  expect(refused.stderr).toContain("--yes");
  expect((await get("/")).status).toBe(200);

  const r = await togo(["destroy", "--yes"], { cwd: dir, env });
  expect(r.exitCode).toBe(0);
  expect(existsSync(appDir)).toBe(false);
  await expect(fetch(url)).rejects.toThrow();
  const state = JSON.parse(readFileSync(join(dir, "terraform.cycle-local.tfstate"), "utf8"));
  expect(state.resources).toEqual([]);
  const after = await togo(["status", "--json"], { cwd: dir, env });
  expect(after.exitCode).toBe(3);
  expect(JSON.parse(after.stdout).state).toBe("not-deployed");
});
