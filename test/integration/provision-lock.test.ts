// Two provisions of one stack at once in one checkout: the second is refused while the first holds
// the stack's lock (it never applies or writes a skip record), so afterwards provision and diff agree.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, expect, test } from "@jest/globals";
import { execa } from "execa";
import { BIN, cleanupTempDirs, EXAMPLE, tempDir, testEnv, togo } from "../helpers/index.js";

afterAll(cleanupTempDirs);

const yaml = (port: number) => `app: locked
deploy:
  provider: local
  binary: server.js
  run: node server.js
  app_port: ${port}
terraform: { engine: terraform }
`;

test("a second provision while the first runs is refused naming the holder; then provision and diff agree", async () => {
  const dir = tempDir("togo-plock-");
  writeFileSync(join(dir, "server.js"), readFileSync(join(EXAMPLE, "server.js")));
  writeFileSync(join(dir, "a.yaml"), yaml(3801));
  writeFileSync(join(dir, "b.yaml"), yaml(3802));
  const lock = join(dir, ".togo", "locks", "locked-local");
  const first = execa(process.execPath, [BIN, "provision", "-c", "a.yaml", "--yes"], { cwd: dir, env: testEnv(), extendEnv: false, reject: false });
  // Start the second only once the first holds the lock.
  let err = "";
  first.stderr?.on("data", (d) => (err += d));
  while (!existsSync(join(lock, "holder.json")) && first.exitCode === null) await new Promise((r) => setTimeout(r, 10));
  expect(existsSync(lock)).toBe(true);
  const second = await togo(["provision", "-c", "b.yaml", "--yes"], { cwd: dir });
  const a = await first;
  expect({ exit: a.exitCode, stderr: a.stderr }).toMatchObject({ exit: 0 });
  expect({ exit: second.exitCode, stderr: second.stderr }).toMatchObject({ exit: 1 });
  expect(second.stderr).toMatch(new RegExp(`stack locked-local is busy: togo provision \\(pid ${first.pid} on .+, since .+\\) is working on it in this checkout`));
  expect(existsSync(lock)).toBe(false);

  // b.yaml's change was never applied: provision applies it, and diff then has nothing left to do.
  const again = await togo(["provision", "-c", "b.yaml", "--yes"], { cwd: dir });
  expect({ exit: again.exitCode, stderr: again.stderr }).toMatchObject({ exit: 0 });
  expect(again.stderr).toContain("apply locked-local");
  const d = await togo(["diff", "-c", "b.yaml", "--json"], { cwd: dir });
  expect({ exit: d.exitCode, stderr: d.stderr }).toMatchObject({ exit: 0 });
  expect(JSON.parse(d.stdout)[0].changes).toEqual([]);
  const unchanged = await togo(["provision", "-c", "b.yaml", "--yes"], { cwd: dir });
  expect(unchanged.stderr).toContain("infrastructure unchanged");
  await togo(["destroy", "-c", "b.yaml", "--yes"], { cwd: dir });
});

test("a lock left by a provision that died is taken over", async () => {
  const dir = tempDir("togo-plock-");
  writeFileSync(join(dir, "server.js"), readFileSync(join(EXAMPLE, "server.js")));
  writeFileSync(join(dir, "togo.yaml"), yaml(3803));
  const dead = await execa(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]);
  const lock = join(dir, ".togo", "locks", "locked-local");
  await execa("mkdir", ["-p", lock]);
  writeFileSync(join(lock, "holder.json"), JSON.stringify({ pid: Number(dead.stdout), host: (await import("node:os")).hostname(), op: "provision", since: "2026-01-01T00:00:00Z" }));
  const r = await togo(["provision", "--yes"], { cwd: dir });
  expect({ exit: r.exitCode, stderr: r.stderr }).toMatchObject({ exit: 0 });
  await togo(["destroy", "--yes"], { cwd: dir });
});
