// dev.watch / dev.ignore as togo dev reads them, and the process reloader's pure pieces.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { existingAncestor, globToRegExp, startWatcher, watchPlan } from "../../src/dev/watcher.js";
import { cleanupTempDirs, tempDir, writeFiles } from "../helpers/index.js";
import { describeChanges, errorLine } from "../../src/dev/process.js";
import { backoffMs, FAILED_AFTER } from "../../src/dev/crashes.js";
import { newReloader, reloaderTypes, registerReloader, unregisterReloader, UnknownReloaderError } from "../../src/dev/reloader.js";
import { registerBuiltinReloaders } from "../../src/dev/index.js";

describe("globs", () => {
  test.each([
    ["src/*.ts", "src/a.ts", true],
    ["src/*.ts", "src/x/a.ts", false],
    ["src/**/*.ts", "src/a.ts", true],
    ["src/**/*.ts", "src/x/y/a.ts", true],
    ["**/*.{js,ts}", "a/b.js", true],
    ["**/*.{js,ts}", "a/b.css", false],
    ["file?.txt", "file1.txt", true],
    ["[ab].js", "b.js", true],
    ["[!ab].js", "a.js", false],
    ["a.b", "axb", false],
  ])("%s matches %s: %s", (glob, path, expected) => {
    expect(globToRegExp(glob).test(path)).toBe(expected);
  });
});

describe("watchPlan", () => {
  const dir = "/p";
  test("no watch list: the whole project minus the ignores, names ignored at any depth", () => {
    const plan = watchPlan(dir, [], ["node_modules", ".git", "*.log"]);
    expect(plan.roots).toEqual(["/p"]);
    expect(plan.includes("src/a.ts")).toBe(true);
    expect(plan.ignored("node_modules/x/index.js")).toBe(true);
    expect(plan.ignored("packages/a/node_modules/x.js")).toBe(true);
    expect(plan.ignored("logs/today.log")).toBe(true);
    expect(plan.ignored("src/node_modules_not.js")).toBe(false);
    expect(plan.ignored("")).toBe(false);
  });
  test("a pattern with a slash is anchored at the project", () => {
    const plan = watchPlan(dir, [], ["build/out", ".togo/dev"]);
    expect(plan.ignored("build/out/a.js")).toBe(true);
    expect(plan.ignored("src/build/out/a.js")).toBe(false);
    expect(plan.ignored(".togo/dev/app.json")).toBe(true);
    expect(plan.ignored(".togo/build/x")).toBe(false);
    const lead = watchPlan(dir, [], ["/out"]);
    expect(lead.ignored("out/app.js")).toBe(true);
    expect(lead.ignored("src/out/app.js")).toBe(false);
  });
  test("paths and globs: a folder watches what is under it, a glob watches from its fixed prefix", () => {
    const plan = watchPlan(dir, ["./src/", "package.json", "lib/**/*.js"], []);
    expect(plan.roots).toEqual(["/p/src", "/p/package.json", "/p/lib"]);
    expect(plan.includes("src/x/y.ts")).toBe(true);
    expect(plan.includes("srcx/y.ts")).toBe(false);
    expect(plan.includes("package.json")).toBe(true);
    expect(plan.includes("lib/a/b.js")).toBe(true);
    expect(plan.includes("lib/a/b.ts")).toBe(false);
    expect(plan.includes("README.md")).toBe(false);
  });
});

describe("the process reloader's pieces", () => {
  test("backoff doubles from 1 s and stops at 30 s; failed comes after a few crashes", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 20].map(backoffMs)).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    expect(FAILED_AFTER).toBeGreaterThan(1);
  });
  test("what changed, in one line", () => {
    expect(describeChanges(["server.js"])).toBe("server.js changed");
    expect(describeChanges(["a", "b", "c", "d", "e"])).toBe("a, b, c and 2 more changed");
  });
  test("the error line of a failed start", () => {
    expect(errorLine("file:///x.js:3\n\nsyntax(\n\nSyntaxError: Unexpected end of input\n    at compile (node:internal)\nNode.js v20")).toBe("SyntaxError: Unexpected end of input");
    expect(errorLine("listening\nbye")).toBe("bye");
    expect(errorLine("")).toBe("");
  });
});

describe("the reloader registry", () => {
  test("built-ins are known before they load; an unknown type is exit 2 listing them", async () => {
    registerBuiltinReloaders();
    registerReloader("unit-echo", () => ({ type: "unit-echo", validate: () => [], run: async () => undefined, status: async () => ({ state: "ready", message: "" }) }));
    try {
      expect(reloaderTypes()).toEqual(expect.arrayContaining(["process", "unit-echo"]));
      expect(reloaderTypes()).toEqual([...reloaderTypes()].sort());
      expect((await newReloader("unit-echo")).type).toBe("unit-echo");
      expect((await newReloader("process")).type).toBe("process");
      const err = await newReloader("nope", "--type").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnknownReloaderError);
      expect((err as UnknownReloaderError).exitCode).toBe(2);
      expect((err as Error).message).toMatch(/unknown reloader type "nope" \(from --type\); known types: .*process.*unit-echo/);
    } finally {
      unregisterReloader("unit-echo");
    }
  });
});

describe("existingAncestor (a watch root missing at start is watched from here)", () => {
  const present = new Set(["/", "/p", "/p/src"]);
  const exists = (p: string) => present.has(p);
  test.each([
    ["/p/src", "/p/src"],
    ["/p/gen", "/p"],
    ["/p/gen/deep/er", "/p"],
    ["/elsewhere/x", "/"],
  ])("%s → %s", (path, expected) => {
    expect(existingAncestor(path, exists)).toBe(expected);
  });
});

describe("startWatcher with a root that does not exist yet (real files, chokidar)", () => {
  afterAll(() => cleanupTempDirs());
  test("looks only at the folders on the way to it, and reports the files once it appears", async () => {
    const dir = tempDir("togo-watch-later-");
    writeFiles(dir, { "src/a.js": "", "node_modules/x/index.js": "", "gen/other/b.txt": "" });
    const seen: string[] = [];
    const w = await startWatcher(dir, watchPlan(dir, ["gen/deep"], []), (rel) => seen.push(rel));
    try {
      // The project folder and gen/ are looked at (gen/deep may appear in them); src, node_modules
      // and gen/other are not scanned.
      expect(w.folders().filter((f) => f.startsWith(dir))).toEqual([dir, join(dir, "gen")]);
      mkdirSync(join(dir, "gen", "deep", "er"), { recursive: true });
      writeFileSync(join(dir, "gen", "deep", "er", "c.txt"), "made");
      writeFileSync(join(dir, "src", "a.js"), "changed");
      const deadline = Date.now() + 30_000;
      while (!seen.includes("gen/deep/er/c.txt") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      expect(seen).toContain("gen/deep/er/c.txt");
      expect(seen.filter((s) => !s.startsWith("gen/deep/"))).toEqual([]);
    } finally {
      await w.close();
    }
  }, 60_000);
});
