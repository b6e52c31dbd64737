// Fuzzing togo.yaml through the real CLI: a seeded generator makes a few hundred invalid or
// pathological files (a wrong type at every key, unknown keys, huge strings, deep nesting, alias
// bombs, NUL bytes, reserved keys, bad interpolation, binary garbage, unquoted numbers YAML would
// change, ...). Each must be refused the same way: exit 2, one `togo: FILE: ...` message, no stack
// trace, nothing written, in under 2 s of CPU (the wall time per case is bench/config-fuzz.mjs's).
// TOGO_FUZZ_SEED=n explores another set.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, expect, test } from "@jest/globals";
import { execa } from "execa";
import { BIN, cleanupTempDirs, EXAMPLE, tempDir, testEnv, togo } from "../helpers/index.js";
import { base, cases, DEFAULT_SEED, emit } from "../helpers/fuzz-cases.js";

afterAll(cleanupTempDirs);

const SEED = Number(process.env.TOGO_FUZZ_SEED ?? DEFAULT_SEED);
const PER_RUN_MS = 2000;
const CONCURRENCY = 2;

async function pool<T, R>(items: T[], n: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i], i);
      }
    }),
  );
  return results;
}

function project(text: string | Buffer): { dir: string; file: string } {
  const dir = tempDir("togo-fuzz-");
  writeFileSync(join(dir, "server.js"), readFileSync(join(EXAMPLE, "server.js")));
  const file = join(dir, "togo.yaml");
  writeFileSync(file, text);
  return { dir, file };
}

const CASES = cases(SEED);

test("the generator makes at least 200 distinct cases, from a valid base", async () => {
  expect(CASES.length).toBeGreaterThanOrEqual(200);
  expect(new Set(CASES.map((c) => c.text.toString("base64"))).size).toBe(CASES.length);
  // The base itself passes: `status` runs and finds nothing deployed (3), so each case's own change is what breaks it.
  const { dir, file } = project(`${emit(base())}\n`);
  const r = await togo(["status", "-c", file], { cwd: dir });
  expect({ exit: r.exitCode, stderr: r.stderr }).toEqual({ exit: 3, stderr: "" });
});

test(`every case is exit 2 with one togo: message naming the file, no stack trace, nothing written, each under ${PER_RUN_MS} ms of CPU (seed ${SEED})`, async () => {
  const failures = await pool(CASES, CONCURRENCY, async (c, i) => {
    const { dir, file } = project(c.text);
    const before = readdirSync(dir).sort();
    // The limit is on the CLI's own CPU time (user + sys, from the shell's `times`): on a busy
    // machine wall time measures the machine, and a pathological input shows up as CPU work.
    const timesFile = join(tempDir("togo-fuzz-times-"), "times");
    const run = await execa("sh", ["-c", `"$0" "$@"; rc=$?; times > ${JSON.stringify(timesFile)}; exit $rc`, process.execPath, BIN, "status", "-c", file], {
      cwd: dir,
      env: testEnv(),
      extendEnv: false,
      reject: false,
      timeout: 30_000,
    });
    const r = { exitCode: run.exitCode ?? 1, stdout: String(run.stdout ?? ""), stderr: String(run.stderr ?? "") };
    const children = (readFileSync(timesFile, "utf8").trim().split("\n")[1] ?? "").match(/(\d+)m([\d.]+)s/g) ?? [];
    const ms = Math.round(children.reduce((sum, t) => sum + Number(/(\d+)m/.exec(t)![1]) * 60_000 + Number(/m([\d.]+)s/.exec(t)![1]) * 1000, 0));
    const problems: string[] = [];
    if (r.exitCode !== 2) problems.push(`exit ${r.exitCode}`);
    if (!r.stderr.startsWith(`togo: ${file}: `)) problems.push("stderr does not start with togo: FILE:");
    if (/^\s+at |Maximum call stack|TypeError|ReferenceError|RangeError/m.test(r.stderr)) problems.push("a stack trace or a JavaScript error");
    if (r.stdout !== "") problems.push("stdout is not empty");
    if (JSON.stringify(readdirSync(dir).sort()) !== JSON.stringify(before)) problems.push(`files written: ${readdirSync(dir).join(", ")}`);
    if (ms > PER_RUN_MS) problems.push(`took ${ms} ms of CPU`);
    return problems.length === 0 ? undefined : `#${i} ${c.name}: ${problems.join("; ")}\n    stderr: ${r.stderr.slice(0, 400)}`;
  });
  const failed = failures.filter(Boolean);
  expect(failed).toEqual([]);
}, 600_000);
