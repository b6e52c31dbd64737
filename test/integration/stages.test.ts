// Two stages of one app side by side on the local driver, for real (terraform applies, the process
// manager, health checks): separate stacks and state, separate app dirs, locks and releases; a plan of
// every stage for a PR comment; destroying one stage leaves the other serving.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupTempDirs, freePort, helloProject, killPidFile, togo, type CliResult } from "../helpers/index.js";

let dir: string;
let basePort: number;
let stagingPort: number;

function ok(r: CliResult, what: string): CliResult {
  if (r.exitCode !== 0) throw new Error(`${what}: togo exited ${r.exitCode}\n--- stderr ---\n${r.stderr}\n--- stdout ---\n${r.stdout}`);
  return r;
}
const served = async (port: number): Promise<string> => {
  try {
    return (await (await fetch(`http://127.0.0.1:${port}/`)).text()).trim();
  } catch {
    return "nothing";
  }
};
const status = async (stage?: string) => JSON.parse((await togo(["status", "--json", ...(stage ? ["--stage", stage] : [])], { cwd: dir })).stdout) as { state: string; version?: string };

beforeAll(async () => {
  basePort = await freePort();
  stagingPort = await freePort();
  dir = helloProject(`app: duo
deploy:
  provider: local
  binary: server.js
  run: node server.js
  app_port: ${basePort}
  strategy: restart
  env: { GREETING: hello }
  healthcheck: { path: /up, timeout: 10, interval: 0.1, settle: 0 }
stages:
  staging:
    deploy: { app_port: ${stagingPort}, env: { GREETING: hi } }
`);
});

afterAll(async () => {
  for (const app of ["duo", "duo-staging"]) await killPidFile(join(dir, ".togo", app, "run", "app.pid"));
  cleanupTempDirs();
});

test("togo stages lists the file without a stage and each stage, validated", async () => {
  const r = ok(await togo(["stages", "--json"], { cwd: dir }), "togo stages --json");
  expect(JSON.parse(r.stdout)).toEqual([
    { stage: null, driver: "local", app_dir: join(dir, ".togo", "duo") },
    { stage: "staging", driver: "local", app_dir: join(dir, ".togo", "duo-staging") },
  ]);
  const bad = await togo(["status", "--stage", "prod"], { cwd: dir });
  expect({ code: bad.exitCode, stderr: bad.stderr }).toMatchObject({ code: 2, stderr: expect.stringContaining('no stage "prod" (from --stage); known stages: staging') });
});

test("togo stages with an invalid stage: exit 2, that stage's row says why, the others are listed", async () => {
  const bad = helloProject(`app: trio
deploy:
  provider: local
  binary: server.js
  run: node server.js
  app_port: 3000
stages:
  staging:
    deploy: { app_port: 3001 }
  broken:
    deploy: { app_port: 99999 }
`);
  const r = await togo(["stages"], { cwd: bad });
  const said = `exit ${r.exitCode}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
  expect({ code: r.exitCode, said }).toMatchObject({ code: 2 });
  const rows = r.stdout.trim().split("\n");
  expect(rows).toHaveLength(3);
  expect(rows.find((l) => l.startsWith("(none)"))).toContain(join(bad, ".togo", "trio"));
  expect(rows.find((l) => l.startsWith("staging"))).toContain(join(bad, ".togo", "trio-staging"));
  expect(rows.find((l) => l.startsWith("broken"))).toMatch(/^broken\s+invalid: .*deploy\.app_port.*99999/);
  const json = await togo(["stages", "--json"], { cwd: bad });
  expect(json.exitCode).toBe(2);
  const parsed = JSON.parse(json.stdout) as { stage: string | null; error?: string; driver?: string }[];
  expect(parsed.map((x) => [x.stage, x.driver ?? null, Boolean(x.error)])).toEqual([
    [null, "local", false],
    ["staging", "local", false],
    ["broken", null, true],
  ]);
  expect(parsed[2].error).toContain("deploy.app_port");
});

test("two stages deploy side by side: own stacks, state, app dirs and releases", async () => {
  ok(await togo(["provision", "--yes"], { cwd: dir }), "provision (no stage)");
  ok(await togo(["provision", "--yes"], { cwd: dir, env: { TOGO_STAGE: "staging" } }), "provision (TOGO_STAGE=staging)");
  expect(existsSync(join(dir, "terraform.duo-local.tfstate"))).toBe(true);
  expect(existsSync(join(dir, "terraform.duo-staging-local.tfstate"))).toBe(true);
  ok(await togo(["deploy", "--version", "1"], { cwd: dir }), "deploy 1 (no stage)");
  ok(await togo(["deploy", "--version", "7", "-s", "staging"], { cwd: dir }), "deploy 7 (staging)");
  expect(await served(basePort)).toBe("hello from 1");
  expect(await served(stagingPort)).toBe("hi from 7");
  expect(await status()).toMatchObject({ state: "ready", version: "1" });
  expect(await status("staging")).toMatchObject({ state: "ready", version: "7" });
  const releases = async (stage?: string) =>
    (JSON.parse(ok(await togo(["releases", "--json", ...(stage ? ["--stage", stage] : [])], { cwd: dir }), "releases").stdout) as { version: string }[]).map((x) => x.version);
  expect(await releases()).toEqual(["1"]);
  expect(await releases("staging")).toEqual(["7"]);
});

test("a stage's lock is its own: a held lock refuses that stage only", async () => {
  const lock = join(dir, ".togo", "duo", ".lock");
  mkdirSync(lock);
  writeFileSync(join(lock, "info"), "holder=someone-else time=now version=2 app=duo\n");
  const refused = await togo(["deploy", "--version", "2"], { cwd: dir });
  expect({ code: refused.exitCode, stderr: refused.stderr }).toMatchObject({ code: 1, stderr: expect.stringContaining("holds the lock") });
  ok(await togo(["deploy", "--version", "8", "--stage", "staging"], { cwd: dir }), "deploy 8 (staging) while the other stage is locked");
  expect(await served(stagingPort)).toBe("hi from 8");
  expect(await served(basePort)).toBe("hello from 1");
  ok(await togo(["lock", "release"], { cwd: dir }), "lock release (no stage)");
});

test("togo synth synthesizes the stage in TOGO_STAGE (what cdktf.json's app runs for cdktf diff)", async () => {
  const r = ok(await togo(["synth"], { cwd: dir, env: { TOGO_STAGE: "staging" } }), "TOGO_STAGE=staging togo synth");
  expect(r.stderr).toContain("synthesized duo-staging-local");
  expect(existsSync(join(dir, "cdktf.out", "stacks", "duo-staging-local", "cdk.tf.json"))).toBe(true);
});

test("togo diff --all-stages --markdown plans every stage's stack for real", async () => {
  const r = ok(await togo(["diff", "--all-stages", "--markdown"], { cwd: dir }), "diff --all-stages --markdown");
  expect(r.stdout).toContain("duo-local");
  expect(r.stdout).toContain("duo-staging-local");
  expect(r.stdout).toContain("<!-- togo-diff: duo -->");
  // Each stage's deploy plan, against its own live release (8 on staging, 1 without a stage).
  expect(r.stdout).toMatch(/#### Deploy plan: without a stage \(local\)[\s\S]*\| `local` \| `1` \([\s\S]*#### Deploy plan: stage `staging` \(local\)[\s\S]*\| `local` \| `8` \(/);
  const one = ok(await togo(["diff", "--stage", "staging", "--markdown"], { cwd: dir }), "diff --stage staging --markdown");
  expect(one.stdout).toContain("<!-- togo-diff: duo-staging -->");
  expect(one.stdout).toContain("`duo-staging-local`");
  expect(one.stdout).not.toContain("`duo-local`");
  expect(one.stdout).toContain("#### Deploy plan: stage `staging` (local)");
  const both = await togo(["diff", "--all-stages", "--stage", "staging"], { cwd: dir });
  expect({ code: both.exitCode, stderr: both.stderr }).toMatchObject({ code: 2, stderr: expect.stringContaining("mutually exclusive") });
});

test("destroying one stage leaves the other serving", async () => {
  ok(await togo(["destroy", "--yes", "--stage", "staging"], { cwd: dir }), "destroy (staging)");
  expect(await served(stagingPort)).toBe("nothing");
  expect(await served(basePort)).toBe("hello from 1");
  expect(await status()).toMatchObject({ state: "ready", version: "1" });
  expect(existsSync(join(dir, "terraform.duo-local.tfstate"))).toBe(true);
  ok(await togo(["destroy", "--yes"], { cwd: dir }), "destroy (no stage)");
  expect(await served(basePort)).toBe("nothing");
});
