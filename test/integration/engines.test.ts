// The local stack applied for real under both engines, and proof that togo and cdktf share the
// stack folder and the state: after either engine applies, the other sees no changes.
import { execa } from "execa";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { BIN, cleanupTempDirs, EXAMPLE, freePort, helloProject, testEnv, togo } from "../helpers/index.js";

afterAll(cleanupTempDirs);

const cdktfBin = join(createRequire(import.meta.url).resolve("cdktf-cli/package.json"), "..", "bundle", "bin", "cdktf");
const cdktf = (args: string[], cwd: string) =>
  execa(process.execPath, [cdktfBin, ...args], { cwd, env: testEnv({ CDKTF_DISABLE_PLUGIN_CACHE_ENV: "1", CI: "1" }), extendEnv: false, reject: false, all: true });
const terraform = (args: string[], cwd: string) => execa("terraform", args, { cwd, env: testEnv(), extendEnv: false, reject: false, all: true });

async function project(engine: "cdktf" | "terraform"): Promise<string> {
  const port = await freePort();
  const dir = helloProject(
    `app: eng-${engine}\ndeploy:\n  provider: local\n  binary: server.js\n  run: node server.js\n  app_port: ${port}\nterraform:\n  engine: ${engine}\n`,
  );
  // How a user repo wires cdktf to togo (`npx togo synth` there; this checkout's bin here).
  writeFileSync(join(dir, "cdktf.json"), JSON.stringify({ language: "typescript", app: `node ${BIN} synth`, output: "cdktf.out" }));
  return dir;
}

test.each(["terraform", "cdktf"] as const)("engine %s: provision applies; the state is the one the other tool reads", async (engine) => {
  const dir = await project(engine);
  const stack = `eng-${engine}-local`;
  const r = await togo(["provision", "--yes"], { cwd: dir });
  expect({ exit: r.exitCode, stderr: r.stderr }).toMatchObject({ exit: 0 });
  expect(r.stderr).toContain(`apply ${stack}`);
  expect(existsSync(join(dir, ".togo", `eng-${engine}`))).toBe(true);

  // cdktf's own local-backend path, in the project root.
  const state = JSON.parse(readFileSync(join(dir, `terraform.${stack}.tfstate`), "utf8"));
  expect(state.resources.map((x: { type: string }) => x.type)).toEqual(["terraform_data"]);
  expect(state.outputs.app_dir.value).toBe(join(dir, ".togo", `eng-${engine}`));

  const stackDir = join(dir, "cdktf.out", "stacks", stack);
  if (engine === "terraform") {
    // A hand-run `cdktf diff` agrees with what togo applied.
    const diff = await cdktf(["diff", stack, "--skip-provider-lock"], dir);
    expect(diff.exitCode).toBe(0);
    expect(diff.all).toContain("No changes");
  } else {
    // Terraform run directly on cdktf's stack folder agrees with what `cdktf deploy` applied.
    const plan = await terraform([`-chdir=${stackDir}`, "plan", "-detailed-exitcode", "-input=false", "-no-color"], dir);
    expect(plan.all).toContain("No changes");
    expect(plan.exitCode).toBe(0);
  }

  const outputs = JSON.parse((await terraform([`-chdir=${stackDir}`, "output", "-json"], dir)).stdout);
  expect(outputs.url.value).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

  const destroyed = await togo(["destroy", "--yes"], { cwd: dir });
  expect(destroyed.exitCode).toBe(0);
  expect(JSON.parse(readFileSync(join(dir, `terraform.${stack}.tfstate`), "utf8")).resources).toEqual([]);
});

describe("examples/hello as a user's repo: its cdktf.json runs `npx togo synth`", () => {
  const out = join(EXAMPLE, "cdktf.out");
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  test("npx cdktf synth writes the stack", async () => {
    rmSync(out, { recursive: true, force: true });
    const r = await execa("npx", ["cdktf", "synth"], { cwd: EXAMPLE, env: testEnv({ CI: "1" }), extendEnv: false, reject: false, all: true });
    expect({ exit: r.exitCode, out: r.all }).toMatchObject({ exit: 0 });
    expect(r.all).toContain("hello-local");
    const json = JSON.parse(readFileSync(join(out, "stacks", "hello-local", "cdk.tf.json"), "utf8"));
    expect(json.terraform.backend.local.path).toBe(join(EXAMPLE, "terraform.hello-local.tfstate"));
    expect(json.resource.terraform_data.app_directory.input.app_dir).toBe(join(EXAMPLE, ".togo", "hello"));
  });

  test("npx cdktf diff plans it", async () => {
    const r = await execa("npx", ["cdktf", "diff", "--skip-provider-lock"], { cwd: EXAMPLE, env: testEnv({ CI: "1" }), extendEnv: false, reject: false, all: true });
    expect({ exit: r.exitCode, out: r.all }).toMatchObject({ exit: 0 });
    // A fresh clone has no state (1 to add); after the demo ran, the stack is applied (no changes).
    const plain = String(r.all).replace(/\x1b\[[0-9;]*m/g, ""); // cdktf colours terraform's output regardless of NO_COLOR
    expect(plain).toMatch(/Plan: 1 to add, 0 to change, 0 to destroy|No changes/);
  });
});

test("status keeps terraform's answer only while the state is unchanged: an apply outside togo is seen", async () => {
  const dir = await project("terraform");
  const stack = "eng-terraform-local";
  expect((await togo(["provision", "--yes"], { cwd: dir })).exitCode).toBe(0);
  const before = JSON.parse((await togo(["status", "--json"], { cwd: dir })).stdout);
  expect(existsSync(join(dir, ".togo", "outputs", `${stack}.json`))).toBe(true);

  // Change the stack and apply it by hand, the way a teammate's `terraform apply` would.
  const newPort = await freePort();
  const yaml = readFileSync(join(dir, "togo.yaml"), "utf8").replace(/app_port: \d+/, `app_port: ${newPort}`);
  writeFileSync(join(dir, "togo.yaml"), yaml);
  expect((await togo(["synth"], { cwd: dir })).exitCode).toBe(0);
  const applied = await terraform([`-chdir=${join(dir, "cdktf.out", "stacks", stack)}`, "apply", "-auto-approve", "-input=false", "-no-color"], dir);
  expect(applied.exitCode).toBe(0);

  const after = JSON.parse((await togo(["status", "--json"], { cwd: dir })).stdout);
  expect(before.outputs.url).not.toBe(after.outputs.url);
  expect(after.outputs.url).toBe(`http://127.0.0.1:${newPort}`);

  // With cdktf.out/ gone, terraform reads the state file itself: status still knows the outputs.
  rmSync(join(dir, "cdktf.out"), { recursive: true, force: true });
  rmSync(join(dir, ".togo", "outputs"), { recursive: true, force: true });
  const bare = JSON.parse((await togo(["status", "--json"], { cwd: dir })).stdout);
  expect(bare.outputs.url).toBe(`http://127.0.0.1:${newPort}`);
  expect(bare.state).toBe("not-deployed"); // provisioned, but no release yet
  expect((await togo(["destroy", "--yes"], { cwd: dir })).exitCode).toBe(0);
});
