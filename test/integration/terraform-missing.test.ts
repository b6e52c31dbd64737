// A terraform.binary that is not installed: togo's own error (the key, the binary looked for, how to
// install it; exit 1, no ANSI codes, nothing changed) under both engines, instead of cdktf's raw,
// coloured validation text; and a tofu that is there is used for everything, terraform or not.
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { afterAll, describe, expect, test } from "@jest/globals";
import { cleanupTempDirs, EXAMPLE, freePort, killPidFile, tempDir, togo } from "../helpers/index.js";

afterAll(cleanupTempDirs);

const has = (dir: string, name: string) => {
  try {
    accessSync(join(dir, name), constants.X_OK);
    return true;
  } catch {
    return false;
  }
};
const FULL_PATH = process.env.PATH ?? "";
/** This machine's PATH without the directories that hold terraform or tofu (node runs by its full path). */
const BARE_PATH = FULL_PATH.split(delimiter)
  .filter((d) => d && !has(d, "terraform") && !has(d, "tofu"))
  .join(delimiter);
const TERRAFORM = FULL_PATH.split(delimiter)
  .map((d) => join(d, "terraform"))
  .find((f) => has(f, ""));

async function project(engine: string, binary: string): Promise<string> {
  const dir = tempDir("togo-notf-");
  writeFileSync(join(dir, "server.js"), readFileSync(join(EXAMPLE, "server.js")));
  writeFileSync(
    join(dir, "togo.yaml"),
    `app: notf\ndeploy:\n  provider: local\n  binary: server.js\n  run: node server.js\n  app_port: ${await freePort()}\nterraform:\n  engine: ${engine}\n  binary: ${binary}\n`,
  );
  return dir;
}

const ANSI = /\x1b\[/;

test("the test machine has terraform, and the stripped PATH does not", () => {
  expect(TERRAFORM).toBeDefined();
  expect(BARE_PATH.split(delimiter).some((d) => has(d, "terraform"))).toBe(false);
});

describe.each([
  ["cdktf", "terraform", /no terraform was found on PATH .*install Terraform ≥ 1\.5 \(https:\/\/developer\.hashicorp\.com\/terraform\/install\)/],
  ["terraform", "terraform", /no terraform was found on PATH .*install Terraform ≥ 1\.5/],
  ["cdktf", "tofu", /no tofu was found on PATH .*install OpenTofu \(https:\/\/opentofu\.org\/docs\/intro\/install\/\)/],
  ["terraform", "tofu", /no tofu was found on PATH .*install OpenTofu/],
])("engine %s, terraform.binary %s not installed", (engine, binary, says) => {
  test.each([["provision", "--yes"], ["diff"], ["synth"]])("togo %s: togo's own error, exit 1, nothing written", async (...args) => {
    const dir = await project(engine, binary);
    const before = readdirSync(dir).sort();
    const r = await togo(args, { cwd: dir, env: { PATH: BARE_PATH } });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^togo: terraform\\.binary is "${binary}" \\(${dir}/togo\\.yaml\\), but `));
    expect(r.stderr).toMatch(says);
    expect(r.stderr).toContain("or set terraform.binary to the full path of the one you have");
    expect(r.stderr).not.toMatch(ANSI);
    expect(r.stderr).not.toMatch(/skipValidation|Validation failed|not found$/m);
    expect(readdirSync(dir).sort()).toEqual(before);
  });
});

test("destroy without terraform changes nothing: the app keeps its dir and its state; status says what is missing", async () => {
  const dir = await project("terraform", "terraform");
  const appDir = join(dir, ".togo", "notf");
  try {
    expect((await togo(["provision", "--yes"], { cwd: dir })).exitCode).toBe(0);
    expect((await togo(["deploy", "--version", "1"], { cwd: dir })).exitCode).toBe(0);
    const state = readFileSync(join(dir, "terraform.notf-local.tfstate"), "utf8");

    const r = await togo(["destroy", "--yes"], { cwd: dir, env: { PATH: BARE_PATH } });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^togo: terraform\.binary is "terraform" .* no terraform was found on PATH/);
    expect(r.stderr).not.toMatch(/✓ stop|✓ clean/);
    expect(existsSync(join(appDir, "v1"))).toBe(true);
    expect(readFileSync(join(dir, "terraform.notf-local.tfstate"), "utf8")).toBe(state);

    // status reads outputs with terraform when it has no answer kept for this state.
    for (const f of readdirSync(join(dir, ".togo", "outputs"))) writeFileSync(join(dir, ".togo", "outputs", f), "{}");
    const s = await togo(["status"], { cwd: dir, env: { PATH: BARE_PATH } });
    expect(s.exitCode).toBe(1);
    expect(s.stderr).toMatch(/^togo: terraform\.binary is "terraform" .* no terraform was found on PATH/);
    expect(s.stderr).not.toMatch(ANSI);
  } finally {
    await togo(["destroy", "--yes"], { cwd: dir });
    await killPidFile(join(appDir, "run", "app.pid"));
  }
});

test.each(["terraform", "cdktf"])("engine %s: a tofu on PATH is all it needs, with no terraform installed", async (engine) => {
  const dir = await project(engine, "tofu");
  const bin = join(dir, "bin");
  mkdirSync(bin);
  symlinkSync(TERRAFORM!, join(bin, "tofu")); // stands in for OpenTofu: same CLI
  const env = { PATH: `${bin}${delimiter}${BARE_PATH}` };
  const r = await togo(["provision", "--yes"], { cwd: dir, env });
  expect({ exit: r.exitCode, stderr: r.stderr }).toMatchObject({ exit: 0 });
  expect(existsSync(join(dir, ".togo", "notf"))).toBe(true);
  const d = await togo(["destroy", "--yes"], { cwd: dir, env });
  expect({ exit: d.exitCode, stderr: d.stderr }).toMatchObject({ exit: 0 });
});
