// The sync reloader's pure parts: the development copy's paths and scripts (run under a real sh in
// a temp dir standing in for the host), which paths the watcher ignores, and the state file read back.
import { afterAll, expect, test } from "@jest/globals";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { ReloaderStatusError } from "../../src/dev/reloader.js";
import { watchPlan } from "../../src/dev/watcher.js";
import { readDevState, writeDevState } from "../../src/dev/state-file.js";
import { devAppDir, devArtifactPath, devCopy } from "../../src/ship/dev-copy.js";
import { cleanupTempDirs, tempDir } from "../helpers/index.js";

afterAll(() => cleanupTempDirs());

const sh = async (script: string, input = "") => {
  const r = await execa("sh", ["-c", script], { input, reject: false });
  if (r.exitCode !== 0) throw new Error(`sh failed (${r.exitCode}): ${r.stderr}\n${script}`);
  return r.stdout;
};

test("the copy lives beside the app dir, never inside it; the artifact keeps its name in vdev/", () => {
  expect(devAppDir("~/apps/hello/")).toBe("~/apps/hello-dev");
  expect(devAppDir("/srv/hello")).toBe("/srv/hello-dev");
  expect(devArtifactPath("/srv/hello", "dist/")).toBe("/srv/hello-dev/vdev/dist");
  expect(devArtifactPath("~/apps/hello", "build/server.js")).toBe("~/apps/hello-dev/vdev/server.js");
});

test("layout, .env (0600, from stdin) and remove under a real sh: the live app dir is left as it was", async () => {
  const root = tempDir();
  const live = join(root, "apps", "hello");
  mkdirSync(join(live, "v1"), { recursive: true });
  writeFileSync(join(live, ".env"), "SECRET=live\n");
  const copy = devCopy(live);
  await sh(copy.layout().script);
  expect(statSync(copy.dir).mode & 0o777).toBe(0o700);
  for (const d of ["logs", "run", "vdev"]) expect(existsSync(join(copy.dir, d))).toBe(true);
  const env = copy.env("GREETING='dev'\n");
  expect(env.script).not.toContain("dev'"); // the values travel on stdin
  await sh(env.script, env.input);
  expect(readFileSync(join(copy.dir, ".env"), "utf8")).toBe("GREETING='dev'\n");
  expect(statSync(join(copy.dir, ".env")).mode & 0o777).toBe(0o600);
  expect((await sh(copy.status().script)).trim()).toBe("stopped");
  await sh(copy.remove().script);
  expect(existsSync(copy.dir)).toBe(false);
  expect(readFileSync(join(live, ".env"), "utf8")).toBe("SECRET=live\n");
  expect(existsSync(join(live, "v1"))).toBe(true);
});

test("restart starts the copy on its port with its .env, and stops the one before", async () => {
  const live = join(tempDir(), "hello");
  const copy = devCopy(live);
  await sh(copy.layout().script);
  writeFileSync(join(copy.dir, "vdev", "app.sh"), 'echo "up on $PORT as $GREETING"; exec sleep 60\n');
  await sh(copy.env("GREETING=dev\n").script, "GREETING=dev\n");
  try {
    await sh(copy.restart("sh app.sh", 41234).script);
    const first = readFileSync(join(copy.dir, "run", "dev.pid"), "utf8").trim();
    expect((await sh(copy.status().script)).trim()).toBe(`running ${first}`);
    await sh(copy.restart("sh app.sh", 41234).script);
    const second = readFileSync(join(copy.dir, "run", "dev.pid"), "utf8").trim();
    expect(second).not.toBe(first);
    expect(existsSync(`/proc/${first}`) && !readFileSync(`/proc/${first}/stat`, "utf8").includes(") Z")).toBe(false);
    const log = readFileSync(join(copy.dir, "logs", "dev.log"), "utf8");
    expect(log).toContain("up on 41234 as dev");
  } finally {
    await sh(copy.remove().script);
  }
  expect(existsSync(copy.dir)).toBe(false);
});

test("the watcher ignores dev.ignore entries as path segments, and paths with a slash as prefixes", () => {
  const { ignored } = watchPlan("/p", [], ["node_modules", ".git", "build/out", "./dist/", "*.log"]);
  // Globs mean what they mean for the process reloader: one matcher for every type.
  expect(ignored("app.log")).toBe(true);
  expect(ignored("logs/today.log")).toBe(true);
  expect(ignored("app.log.ts")).toBe(false);
  expect(ignored("node_modules/x/index.js")).toBe(true);
  expect(ignored("packages/a/node_modules/y.js")).toBe(true);
  expect(ignored(".git/HEAD")).toBe(true);
  expect(ignored("build/out/a.js")).toBe(true);
  expect(ignored("dist/server.js")).toBe(true);
  expect(ignored("build/other.js")).toBe(false);
  expect(ignored("src/node_modules_not.ts")).toBe(false);
  expect(ignored("server.js")).toBe(false);
  expect(ignored(".")).toBe(false);
});

test("the state file: missing or written by a process that is gone reads as not running; garbage is a status error", () => {
  const file = join(tempDir(), "dev", "hello.json");
  expect(readDevState(file).state).toBe("not-deployed");
  writeDevState(file, { state: "ready", message: "serving", type: "sync", pid: process.pid, reloads: 2 });
  expect(readDevState(file)).toMatchObject({ state: "ready", reloads: 2 });
  writeDevState(file, { state: "ready", message: "serving", type: "sync", pid: 2 ** 22 + 12345 });
  expect(readDevState(file)).toMatchObject({ state: "not-deployed", message: expect.stringMatching(/^togo dev \(pid \d+\) is not running/) });
  writeFileSync(file, "{ not json");
  expect(() => readDevState(file)).toThrow(ReloaderStatusError);
});
