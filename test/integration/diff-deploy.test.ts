// `togo diff`'s deploy plan on a real deployed app (local driver: real terraform, a real release
// serving on this machine): after the env, a secret and the artifact changed, the PR comment names
// the keys added, removed and changed, says the artifact would ship (its sha256 against the live
// release's) and the version git describe gives; no env value, old or new, secret or not, appears in
// anything togo prints. After the deploy, nothing would ship and the env is the same.
import { execa } from "execa";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "@jest/globals";
import { artifactSha256 } from "../../src/ship/artifact.js";
import type { DeployPlan } from "../../src/core/spec.js";
import { cleanupTempDirs, freePort, helloProject, togo, type CliResult } from "../helpers/index.js";

const VALUES = {
  tokenOld: "tok-OLD-5f1e9a",
  tokenNew: "tok-NEW-c83b27",
  greetingOld: "hello-old-41d2",
  greetingNew: "howdy-new-0e7a",
  kept: "kept-value-77c1",
  removed: "removed-value-9ab3",
  added: "added-value-2d64",
};

const yaml = (port: number, env: string) => `app: hello
deploy:
  provider: local
  binary: server.js
  run: node server.js
  app_port: ${port}
  app_dir: .togo/app
  healthcheck: { path: /up, timeout: 30 }
  env:
${env}
  secrets:
    API_TOKEN: env:HELLO_TOKEN
terraform:
  engine: terraform
`;

let dir = "";
afterAll(async () => {
  if (dir) await togo(["destroy", "--yes"], { cwd: dir, env: { HELLO_TOKEN: VALUES.tokenNew } });
  cleanupTempDirs();
});

function ok(r: CliResult, what: string): CliResult {
  if (r.exitCode !== 0) throw new Error(`${what} exited ${r.exitCode}:\n${r.stderr}\n${r.stdout}`);
  return r;
}

/** No env value, old or new, in anything printed. */
function expectNoValues(...outputs: string[]): void {
  for (const out of outputs) for (const [name, v] of Object.entries(VALUES)) expect([name, out.includes(v)]).toEqual([name, false]);
}

const git = (args: string[]) => execa("git", ["-c", "user.email=t@example.com", "-c", "user.name=t", ...args], { cwd: dir });

describe("togo diff on a deployed app whose env, secret and artifact changed", () => {
  let port = 0;

  test("deploy release 1.0.0", async () => {
    port = await freePort();
    dir = helloProject(yaml(port, `    GREETING: ${VALUES.greetingOld}\n    KEPT: ${VALUES.kept}\n    OLDKEY: ${VALUES.removed}`));
    ok(await togo(["provision", "--yes"], { cwd: dir }), "provision");
    ok(await togo(["deploy", "--version", "1.0.0"], { cwd: dir, env: { HELLO_TOKEN: VALUES.tokenOld } }), "deploy 1.0.0");
  });

  test("the plan names the keys (not values), the artifact that would ship, and the version", async () => {
    writeFileSync(join(dir, "togo.yaml"), yaml(port, `    GREETING: ${VALUES.greetingNew}\n    KEPT: ${VALUES.kept}\n    NEWKEY: ${VALUES.added}`));
    appendFileSync(join(dir, "server.js"), "// changed after the deploy\n");
    await git(["init", "-q"]);
    await git(["add", "server.js", "togo.yaml"]);
    await git(["commit", "-q", "-m", "change"]);
    const head = String((await git(["rev-parse", "--short", "HEAD"])).stdout).trim();
    const live = readFileSync(join(dir, ".togo/app/v1.0.0/.togo-sha256"), "utf8").trim();
    const next = await artifactSha256(join(dir, "server.js"));
    expect(next).not.toBe(live);

    const env = { HELLO_TOKEN: VALUES.tokenNew };
    const md = ok(await togo(["diff", "--markdown"], { cwd: dir, env }), "diff --markdown");
    const out = md.stdout;
    expect(out.startsWith("<!-- togo-diff: hello -->\n")).toBe(true);
    expect(out).toContain("#### Deploy plan (local)");
    expect(out).toContain(`- artifact: \`server.js\` sha256 \`${next.slice(0, 12)}\``);
    expect(out).toContain(`- version a deploy would get: \`${head}\` (git describe)`);
    expect(out).toContain(`| \`local\` | \`1.0.0\` (\`${live.slice(0, 12)}\`) | yes (artifact ${live.slice(0, 12)} → ${next.slice(0, 12)}) |`);
    expect(out).toContain("**env**: 1 added, 1 removed, 2 changed, 1 unchanged (key names only;");
    expect(out).toContain("```diff\n~ API_TOKEN (secret)\n~ GREETING\n+ NEWKEY\n- OLDKEY\n```");

    const text = ok(await togo(["diff"], { cwd: dir, env }), "diff");
    expect(text.stdout).toContain(`    ships:    yes (artifact ${live.slice(0, 12)} → ${next.slice(0, 12)})`);
    expect(text.stdout).toContain("      + NEWKEY\n      - OLDKEY");
    const json = ok(await togo(["diff", "--json"], { cwd: dir, env }), "diff --json");
    const [stack] = JSON.parse(json.stdout) as { deploy: DeployPlan }[];
    expect(stack.deploy.targets[0]).toMatchObject({ host: "local", reachable: true, liveVersion: "1.0.0", liveSha256: live, ships: true });
    expect(stack.deploy.targets[0].env!.changes).toEqual([
      { key: "API_TOKEN", change: "changed", secret: true },
      { key: "GREETING", change: "changed" },
      { key: "NEWKEY", change: "added" },
      { key: "OLDKEY", change: "removed" },
    ]);
    // A value togo knows (the new ones) or the host holds (the old ones): in none of the outputs.
    expectNoValues(md.stdout, md.stderr, text.stdout, text.stderr, json.stdout, json.stderr);

    // Without the secret here (a pull request from a fork): compared by name, with why; still no values.
    const fork = ok(await togo(["diff", "--markdown"], { cwd: dir }), "diff without the secret");
    expect(fork.stdout).toContain("? API_TOKEN (secret): not resolvable here: secret API_TOKEN (env): environment variable HELLO_TOKEN is not set");
    expectNoValues(fork.stdout, fork.stderr);
  });

  test("after the deploy: nothing would ship and the env is the same", async () => {
    const env = { HELLO_TOKEN: VALUES.tokenNew };
    ok(await togo(["deploy"], { cwd: dir, env }), "deploy");
    const md = ok(await togo(["diff", "--markdown"], { cwd: dir, env }), "diff --markdown");
    expect(md.stdout).toMatch(/\| `local` \| `[0-9a-f]+` \(`[0-9a-f]{12}`\) \| no \(the live release has this artifact\) \|/);
    expect(md.stdout).toContain("**env**: no changes (4 keys).");
    expectNoValues(md.stdout, md.stderr);
  });
});
