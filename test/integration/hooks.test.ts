// User hooks end to end on the local driver (a real release folder, real processes): every hook
// fires with the documented environment, a failing pre_deploy leaves the target byte-identical,
// on_failure gets TOGO_ERROR when a release fails its health check, and a failing post hook says
// the deploy stands.
import { lstatSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "@jest/globals";
import { cleanupTempDirs, EXAMPLE, freePort, killPidFile, tempDir, togo, type CliResult } from "../helpers/index.js";

let dir: string;
let out: string;
let appDir: string;
let port: number;

const dump = (name: string) => `env | grep -E '^(TOGO_|HOOK_SECRET)' | sort > ${join(out, `${name}.env`)}`;
const yaml = (hooks: Record<string, string>, binary = "server.js") => `app: hooked
deploy:
  provider: local
  binary: ${binary}
  run: node ${binary}
  app_port: ${port}
  healthcheck: { path: /up, timeout: 3, interval: 0.1 }
  secrets: { S: "env:HOOK_SECRET" }
terraform: { engine: terraform }
hooks:
${Object.entries(hooks)
  .map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`)
  .join("\n")}
`;
const env = { HOOK_SECRET: "do-not-leak-7f3a" };
const read = (name: string): Record<string, string> =>
  Object.fromEntries(
    readFileSync(join(out, `${name}.env`), "utf8")
      .trim()
      .split("\n")
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
function ok(r: CliResult): CliResult {
  if (r.exitCode !== 0) throw new Error(`togo exited ${r.exitCode}\n--- stderr ---\n${r.stderr}\n--- stdout ---\n${r.stdout}`);
  return r;
}
/** Every entry under the app dir: path, kind, mode, link target or content. */
function snapshot(root: string): string[] {
  const rows: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(p);
      if (st.isSymbolicLink()) rows.push(`l ${r} -> ${readlinkSync(p)}`);
      else if (st.isDirectory()) {
        rows.push(`d ${r} ${st.mode.toString(8)}`);
        walk(p, r);
      } else if (st.isSocket()) rows.push(`s ${r}`); // the app's own Caddy's admin socket (blue-green)
      else rows.push(`f ${r} ${st.mode.toString(8)} ${readFileSync(p, "base64")}`);
    }
  };
  walk(root, "");
  return rows;
}

beforeAll(async () => {
  port = await freePort();
  dir = tempDir("togo-hooks-");
  out = tempDir("togo-hooks-out-");
  appDir = join(dir, ".togo", "hooked");
  writeFileSync(join(dir, "server.js"), readFileSync(join(EXAMPLE, "server.js")));
  writeFileSync(join(dir, "togo.yaml"), yaml({ pre_build: dump("pre_build"), pre_deploy: dump("pre_deploy"), post_deploy: dump("post_deploy"), post_rollback: dump("post_rollback") }));
  ok(await togo(["provision", "--yes"], { cwd: dir }));
});

afterAll(async () => {
  await killPidFile(join(appDir, "run", "app.pid"));
  await killPidFile(join(appDir, "run", "candidate.pid"));
  await togo(["destroy", "--yes"], { cwd: dir });
  cleanupTempDirs();
});

test("pre_build, pre_deploy, post_deploy and post_rollback fire with the documented env", async () => {
  ok(await togo(["deploy", "--version", "1"], { cwd: dir, env }));
  const r = ok(await togo(["deploy", "--version", "2"], { cwd: dir, env }));
  for (const name of ["pre_build", "pre_deploy", "post_deploy"]) {
    const e = read(name);
    expect(e).toMatchObject({ TOGO_APP: "hooked", TOGO_VERSION: "2", TOGO_PREVIOUS_VERSION: "1", TOGO_DRIVER: "local", TOGO_STAGE: "", TOGO_HOSTS: "local", TOGO_COMMAND: "deploy" });
    expect(e.TOGO_PERFORMER).toMatch(/^.+@.+$/);
    expect(readFileSync(join(out, `${name}.env`), "utf8")).not.toContain(env.HOOK_SECRET);
  }
  expect(Number(read("post_deploy").TOGO_RUNTIME)).toBeGreaterThan(0);
  expect(read("pre_deploy").TOGO_RUNTIME).toBeUndefined();
  expect(r.stderr).toMatch(/✓ connect[^\n]*\n✓ build[^\n]*\n✓ lock/);

  ok(await togo(["rollback"], { cwd: dir, env }));
  expect(read("post_rollback")).toMatchObject({ TOGO_COMMAND: "rollback", TOGO_VERSION: "1", TOGO_PREVIOUS_VERSION: "2" });
  ok(await togo(["rollback", "2"], { cwd: dir, env }));
});

test("a failing pre_deploy stops the deploy with exit 1 and the target stays byte-identical", async () => {
  writeFileSync(join(dir, "server.js"), `${readFileSync(join(EXAMPLE, "server.js"), "utf8")}\n// v3\n`);
  writeFileSync(join(dir, "fail.yaml"), yaml({ pre_deploy: "echo 'the freeze is on' >&2; exit 4", on_failure: dump("on_failure_pre") }));
  const before = snapshot(appDir);
  const r = await togo(["deploy", "-c", "fail.yaml", "--version", "3"], { cwd: dir, env });
  expect({ exit: r.exitCode, stderr: r.stderr }).toMatchObject({ exit: 1 });
  expect(r.stderr).toContain("[pre_deploy] the freeze is on");
  expect(r.stderr).toContain("the pre_deploy hook exited 4");
  expect(r.stderr).toContain("nothing was changed on any target");
  expect(snapshot(appDir)).toEqual(before);
  expect(read("on_failure_pre").TOGO_ERROR).toMatch(/pre_deploy hook exited 4/);
});

test("on_failure runs with TOGO_ERROR when a release fails its health check; a failing post hook says the deploy stands", async () => {
  writeFileSync(
    join(dir, "broken.js"),
    `require("node:http").createServer((q, s) => { s.writeHead(q.url === "/up" ? 500 : 200); s.end("broken\\n"); }).listen(+process.env.PORT, "127.0.0.1");\n`,
  );
  writeFileSync(join(dir, "broken.yaml"), yaml({ on_failure: dump("on_failure") }, "broken.js"));
  const r = await togo(["deploy", "-c", "broken.yaml", "--version", "4"], { cwd: dir, env });
  expect(r.exitCode).toBe(1);
  const e = read("on_failure");
  expect(e.TOGO_ERROR).toMatch(/^release 4 failed its health check \(GET \/up: 500/);
  expect(e).toMatchObject({ TOGO_COMMAND: "deploy", TOGO_VERSION: "4", TOGO_PREVIOUS_VERSION: "2" });

  writeFileSync(join(dir, "post.yaml"), yaml({ post_deploy: "exit 9" }));
  const p = await togo(["deploy", "-c", "post.yaml", "--version", "5"], { cwd: dir, env });
  expect(p.exitCode).toBe(1);
  expect(p.stderr).toContain("the post_deploy hook exited 9: exit 9; the deploy itself stands (5 is live)");
  expect(readlinkSync(join(appDir, "current"))).toBe("v5");
  expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe("hello from 5\n");
});

test("an unknown hook name is a config error naming the key (exit 2)", async () => {
  writeFileSync(join(dir, "typo.yaml"), yaml({ post_deply: "true" }));
  const r = await togo(["deploy", "-c", "typo.yaml"], { cwd: dir });
  expect(r.exitCode).toBe(2);
  expect(r.stderr).toContain('hooks.post_deply: unknown key; did you mean "post_deploy"?');
});
