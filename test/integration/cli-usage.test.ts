// Bad usage on the command line is exit 2 and runs nothing: a provisioned, deployed local-driver
// app is byte-for-byte untouched by a mistyped option, a surplus argument, a misspelt subcommand or a
// numeric flag that is not a whole number; everything after `--` still reaches `togo exec` as typed.
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { cleanupTempDirs, EXAMPLE, freePort, killPidFile, tempDir, togo } from "../helpers/index.js";

let dir: string;
let appDir: string;
let url: string;

/** Every path under root with its size and mtime: what a command that ran would change. */
function tree(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      out.push(`${relative(root, p)} ${st.isDirectory() ? "dir" : st.size} ${st.mtimeMs}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(root);
  return out;
}

beforeAll(async () => {
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  dir = tempDir("togo-usage-");
  appDir = join(dir, ".togo", "usage");
  writeFileSync(join(dir, "server.js"), readFileSync(join(EXAMPLE, "server.js")));
  writeFileSync(
    join(dir, "togo.yaml"),
    `app: usage\ndeploy:\n  provider: local\n  binary: server.js\n  run: node server.js\n  app_port: ${port}\n  healthcheck: { path: /up, timeout: 10, interval: 0.1 }\n`,
  );
  const p = await togo(["provision", "--yes"], { cwd: dir });
  expect({ exit: p.exitCode, stderr: p.stderr }).toMatchObject({ exit: 0 });
  const d = await togo(["deploy", "--version", "1"], { cwd: dir });
  expect({ exit: d.exitCode, stderr: d.stderr }).toMatchObject({ exit: 0 });
  // A lock as a crashed deploy leaves it: `lock relase` must not be taken for `lock release`.
  mkdirSync(join(appDir, ".lock"));
  writeFileSync(join(appDir, ".lock", "info"), "crashed deploy\n");
}, 180_000);

afterAll(async () => {
  await togo(["destroy", "--yes"], { cwd: dir });
  await killPidFile(join(appDir, "run", "app.pid"));
  cleanupTempDirs();
});

// [argv, what stderr must say]
const BAD: [string[], RegExp][] = [
  [["destroy", "--yes", "--forse"], /unknown option --forse/],
  [["provision", "--yes", "--froce"], /unknown option --froce; did you mean --force\?/],
  [["deploy", "--verison", "7"], /unknown option --verison; did you mean --version\?/],
  [["deploy", "--version"], /--version needs a value/],
  [["lock", "relase"], /unknown subcommand "relase" of togo lock; did you mean "release"\?/],
  [["lock"], /togo lock release/],
  [["rollback", "1", "2"], /unexpected argument "2"/],
  [["status", "extra"], /unexpected argument "extra"/],
  [["deplyo"], /unknown command "deplyo"; did you mean "deploy"\?/],
  [["logs", "-n", "abc"], /--lines \(-n\): got "abc"; expected .*a whole number, 0 or more/],
  [["logs", "-n", "-3"], /--lines \(-n\): got "-3"/],
  [["deploy", "--lock-wait", "abc"], /--lock-wait: got "abc"; expected seconds to wait: a whole number, 0 or more/],
  [["deploy", "--lock-wait", "-1"], /--lock-wait: got "-1"/],
  [["deploy", "--lock-wait", "NaN"], /--lock-wait: got "NaN"/],
  [["rollback", "--lock-wait", "Infinity"], /--lock-wait: got "Infinity"/],
  [["rollback", "--lock-wait", "1.5"], /--lock-wait: got "1.5"/],
  [["deploy", "--lock-wait", "1e3"], /--lock-wait: got "1e3"/],
  [["exec", "--forse", "--", "true"], /unknown option --forse/],
  [["logs", "-n", "5", "--lines", "6"], /--lines \(-n\) was given 2 times; give it once/],
  [["deploy", "--version", "1", "--version", "2"], /--version was given 2 times; give it once/],
  [["status", "-c", "togo.yaml", "--config", "other.yaml"], /--config \(-c\) was given 2 times/],
];

describe("bad usage is exit 2 and nothing runs", () => {
  test.each(BAD)("togo %j", async (args, says) => {
    const before = tree(dir);
    const r = await togo(args, { cwd: dir });
    expect({ exit: r.exitCode, stdout: r.stdout }).toEqual({ exit: 2, stdout: "" });
    expect(r.stderr).toMatch(says);
    // One line, togo's own: no stage ran (no ✓/✗ lines), no help dump, no stack trace.
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/^togo: /);
    expect(tree(dir)).toEqual(before);
  });

  test("the app still serves, its release and state untouched, and the stale lock is still there", async () => {
    expect((await fetch(`${url}/up`)).status).toBe(200);
    expect(readlinkSync(join(appDir, "current"))).toBe("v1");
    expect(readFileSync(join(appDir, ".lock", "info"), "utf8")).toBe("crashed deploy\n");
    const state = JSON.parse(readFileSync(join(dir, "terraform.usage-local.tfstate"), "utf8")) as { resources: unknown[] };
    expect(state.resources.length).toBeGreaterThan(0);
  });
});

describe("good usage still works", () => {
  test("everything after -- reaches togo exec as typed (no number parsing, no option parsing)", async () => {
    const r = await togo(["exec", "--", "sh", "-c", 'printf "%s|" "$@"', "x", "0x1F", "1.10", "007", "--forse", "-n", "1e3"], { cwd: dir });
    expect({ exit: r.exitCode, stderr: r.stderr }).toEqual({ exit: 0, stderr: "" });
    expect(r.stdout).toBe("0x1F|1.10|007|--forse|-n|1e3|");
  });

  test("without --, every word of the command still reaches togo exec, as typed", async () => {
    const r = await togo(["exec", "echo", "0x1F", "1.10", "007", "three"], { cwd: dir });
    expect({ exit: r.exitCode, stderr: r.stderr }).toEqual({ exit: 0, stderr: "" });
    expect(r.stdout).toBe("0x1F 1.10 007 three");
  });

  test("numeric flags take whole numbers, 0 included", async () => {
    const r = await togo(["logs", "-n", "0"], { cwd: dir });
    expect({ exit: r.exitCode, stderr: r.stderr }).toEqual({ exit: 0, stderr: "" });
  });

  test("togo lock release breaks the stale lock", async () => {
    const r = await togo(["lock", "release"], { cwd: dir });
    expect({ exit: r.exitCode, stderr: r.stderr }).toMatchObject({ exit: 0 });
    expect(existsSync(join(appDir, ".lock"))).toBe(false);
  });
});
