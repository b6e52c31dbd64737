// Artifact stores by URL scheme: a directory and s3:// are built in, a plugin adds its own scheme with
// registerStore (the plugin API design.md names beside registerDriver and registerReloader). An
// unknown scheme is a usage error naming where it was written, before anything runs.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "@jest/globals";
import { openStore, registerStore, unknownStore, unregisterStore, type ArtifactStore } from "../../src/artifacts/store.js";
import { storeScheme } from "../../src/core/spec.js";
import { cleanupTempDirs, tempDir, togo, writeFiles } from "../helpers/index.js";

afterAll(cleanupTempDirs);

describe("openStore", () => {
  test("a registered scheme gets the location and options; a directory stays a directory", async () => {
    const seen: Array<{ location: string; endpoint?: string }> = [];
    registerStore("memtest", (location, opts) => {
      seen.push({ location, endpoint: opts.endpoint });
      return { location } as ArtifactStore;
    });
    try {
      const store = await openStore("memtest://shelf/a", { endpoint: "http://127.0.0.1:9" });
      expect(store.location).toBe("memtest://shelf/a");
      expect(seen).toEqual([{ location: "memtest://shelf/a", endpoint: "http://127.0.0.1:9" }]);
      // Upper case is the same scheme (RFC 3986).
      await openStore("MEMTEST://shelf/b");
      expect(seen).toHaveLength(2);
      const dir = tempDir("togo-store-");
      const fs = await openStore("artifacts", { cwd: dir });
      expect(fs.location).toBe(join(dir, "artifacts"));
    } finally {
      unregisterStore("memtest");
    }
  });

  test("an unknown scheme is exit 2, naming where it was written and the known schemes", async () => {
    const err = openStore("gcs://bucket/x", {}, "--store");
    await expect(err).rejects.toMatchObject({ exitCode: 2 });
    await expect(openStore("gcs://bucket/x", {}, "--store")).rejects.toThrow(/^--store: no artifact store handles gcs:\/\/ \(known: a directory, s3:\/\/\); .*registerStore\("gcs"/);
    expect(unknownStore("gcs://bucket/x")).toMatch(/^expected a directory, s3:\/\/, or a scheme that a plugin under plugins: registers \(registerStore\("gcs", factory\)\)/);
  });

  test("s3 is known before its SDK loads; a directory, a relative path and s3:// need no plugin", () => {
    expect(unknownStore("s3://bucket/prefix")).toBeUndefined();
    expect(unknownStore(".togo/artifacts")).toBeUndefined();
    expect(unknownStore("/srv/artifacts")).toBeUndefined();
    expect(storeScheme("s3://b")).toBe("s3");
    expect(storeScheme("./s3:/x")).toBeUndefined();
    expect(storeScheme("C:/x")).toBeUndefined();
  });

  test("a scheme must be a plain name", () => {
    expect(() => registerStore("Bad Scheme", () => ({}) as ArtifactStore)).toThrow(/must match/);
  });
});

describe("a plugin's store, through the CLI", () => {
  /** A project whose plugin registers mem://, a store that lists one artifact. */
  function project(plugins: string[]): string {
    const dir = tempDir("togo-store-plugin-");
    const pkg = join(dir, "node_modules", "togo-store-mem");
    mkdirSync(pkg, { recursive: true });
    writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: "togo-store-mem", type: "module", main: "index.js" }));
    const meta = {
      coordinates: { remote: "example.com", owner: "me", repo: "app", os: "linux", arch: "amd64", version: "v1" },
      key: {},
      commit: "0123456789abcdef0123456789abcdef01234567",
      sha256: "ab".repeat(32),
      size: 42,
      built_at: "2026-11-23T00:00:00Z",
      recipe: "r",
      file_name: "app",
    };
    writeFileSync(
      join(pkg, "index.js"),
      `export default function register({ registerStore }) {
  registerStore("mem", (location) => ({ location, list: async () => [${JSON.stringify(meta)}], listBuilds: async () => [] }));
}\n`,
    );
    writeFiles(dir, {
      "togo.yaml": `app: plug\n${plugins.length ? `plugins: [${plugins.join(", ")}]\n` : ""}deploy:\n  provider: local\n  binary: server.js\n  run: node server.js\nartifacts:\n  store: mem://shelf\n`,
      "server.js": "",
    });
    return dir;
  }

  test("artifacts.store: mem:// lists what the plugin's store holds", async () => {
    const dir = project(["togo-store-mem"]);
    const r = await togo(["artifacts", "ls", "--json"], { cwd: dir });
    expect({ exit: r.exitCode, err: r.stderr }).toEqual({ exit: 0, err: "" });
    expect(JSON.parse(r.stdout)).toEqual([expect.objectContaining({ file_name: "app", size: 42 })]);
    const text = await togo(["artifacts", "ls"], { cwd: dir });
    expect(text.stdout).toContain("example.com/me/app  v1  linux/amd64  0123456789ab  app  42");
  });

  test("without the plugin, mem:// is a config error of artifacts.store, for every command that reads the file", async () => {
    const dir = project([]);
    for (const args of [["artifacts", "ls"], ["status"], ["deploy"], ["build"]]) {
      const r = await togo(args, { cwd: dir });
      expect({ args, exit: r.exitCode }).toEqual({ args, exit: 2 });
      expect(r.stderr).toContain('artifacts.store: got "mem://shelf"; expected a directory, s3://, or a scheme that a plugin under plugins: registers (registerStore("mem", factory))');
      expect(r.stderr).toContain("nothing was run");
    }
  });

  test("--store with an unknown scheme and no togo.yaml: exit 2 naming --store", async () => {
    const dir = tempDir("togo-store-flag-");
    const r = await togo(["artifacts", "ls", "--store", "ftp://x"], { cwd: dir });
    expect({ exit: r.exitCode, err: r.stderr.trim() }).toEqual({ exit: 2, err: expect.stringMatching(/^togo: --store: no artifact store handles ftp:\/\/ \(known: a directory, s3:\/\/\)/) });
  });
});
