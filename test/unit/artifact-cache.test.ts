// The artifact digest and its cache: a cached digest is the digest of old (the same lines, read
// from the files every time), a file that changed in any way is read again (new mtime, new
// content with its mtime put back, renamed over by another file, chmod, removed, added), a file
// changed too recently to be vouched for is never cached ("racy git"), and progress is shown for
// long trees only. Trees live in temp dirs; the `now` option ages them instead of waiting.
import { createHash } from "node:crypto";
import { createReadStream, chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync, existsSync } from "node:fs";
import { readdir, readlink, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "@jest/globals";
import { createReporter } from "../../src/core/log.js";
import { Workspace } from "../../src/core/workspace.js";
import { artifactSha256, hashArtifact, type HashProgress } from "../../src/ship/artifact.js";
import { cleanupTempDirs, tempDir } from "../helpers/index.js";

afterAll(cleanupTempDirs);

/** The digest as it was defined before the cache: every file read, line by line. */
async function reference(path: string): Promise<string> {
  const file = async (p: string) => {
    const h = createHash("sha256");
    for await (const chunk of createReadStream(p)) h.update(chunk as Buffer);
    return h.digest("hex");
  };
  if (!(await stat(path)).isDirectory()) return file(path);
  const h = createHash("sha256");
  const walk = async (dir: string, rel: string): Promise<void> => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const full = join(dir, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isSymbolicLink()) h.update(`l ${r} ${await readlink(full)}\n`);
      else if (e.isDirectory()) {
        h.update(`d ${r}\n`);
        await walk(full, r);
      } else h.update(`f ${r} ${((await stat(full)).mode & 0o111) !== 0 ? "x" : "-"} ${await file(full)}\n`);
    }
  };
  await walk(path, "");
  return h.digest("hex");
}

/** A tree with what a build makes: nested dirs, an empty one, links, an executable, odd names, a file over the read chunk. */
function tree(): { root: string; cache: string } {
  const base = tempDir("togo-digest-");
  const root = join(base, "dist");
  const files: Record<string, string | Buffer> = {
    "server.js": "require('./lib/app')\n",
    "lib/app.js": "module.exports = 1\n",
    "lib/util/x.js": "x\n",
    "lib/util/y.js": "y\n",
    "assets/big.bin": Buffer.alloc(2.5 * 2 ** 20 + 17, 3),
    "assets/empty.txt": "",
    "ünï cødé/name with spaces.txt": "u\n",
    "bin/run": "#!/bin/sh\necho run\n",
    "B-upper.txt": "sorted before lower case\n",
  };
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(join(root, rel, ".."), { recursive: true });
    writeFileSync(join(root, rel), content);
  }
  chmodSync(join(root, "bin/run"), 0o755);
  mkdirSync(join(root, "empty-dir"));
  symlinkSync("lib/app.js", join(root, "main.js"));
  symlinkSync("../nowhere", join(root, "dangling"));
  return { root, cache: join(base, "cache", "digests.json") };
}

/** Hashing as if `seconds` had passed since the tree was written (its files old enough to vouch for). */
const later = (seconds = 10) => () => Date.now() + seconds * 1000;

describe("the digest", () => {
  test("is the digest of old, with and without the cache, cold and warm", async () => {
    const { root, cache } = tree();
    const want = await reference(root);
    expect(await artifactSha256(root)).toBe(want);
    const cold = await hashArtifact(root, { cache, now: later() });
    expect(cold).toMatchObject({ sha256: want, files: 9, hashedFiles: 9 });
    expect(cold.bytes).toBe(cold.hashedBytes);
    const warm = await hashArtifact(root, { cache });
    expect(warm).toMatchObject({ sha256: want, files: 9, bytes: cold.bytes, hashedFiles: 0, hashedBytes: 0 });
    // A single file too.
    const one = join(root, "assets/big.bin");
    const fileCache = `${cache}.one`;
    expect((await hashArtifact(one, { cache: fileCache, now: later() })).sha256).toBe(await reference(one));
    expect(await hashArtifact(one, { cache: fileCache })).toMatchObject({ sha256: await reference(one), hashedFiles: 0 });
  });

  test("a file that changed in any way is read again; the digest follows", async () => {
    const { root, cache } = tree();
    await hashArtifact(root, { cache, now: later() });
    const check = async (what: string, expectHashed: string[]) => {
      const d = await hashArtifact(root, { cache, now: later() });
      expect({ what, sha256: d.sha256, hashed: d.hashedFiles }).toEqual({ what, sha256: await reference(root), hashed: expectHashed.length });
      return d.sha256;
    };
    const app = join(root, "lib/app.js");
    const before = statSync(app);

    // Touched: same bytes, new mtime.
    utimesSync(app, new Date(), new Date(before.mtimeMs + 5000));
    const same = await check("touched", ["lib/app.js"]);
    expect(same).toBe(await reference(root));

    // New content of the same size with its mtime put back: ctime gives it away.
    const t = statSync(app);
    writeFileSync(app, "module.exports = 2\n");
    utimesSync(app, t.atime, t.mtime);
    expect(statSync(app).size).toBe(t.size);
    const changed = await check("rewritten, mtime restored", ["lib/app.js"]);
    expect(changed).not.toBe(same);

    // Renamed over by a file of the same size and mtime: a new inode.
    const u = statSync(app);
    writeFileSync(join(root, "lib/.app.tmp"), "module.exports = 3\n");
    utimesSync(join(root, "lib/.app.tmp"), u.atime, u.mtime);
    renameSync(join(root, "lib/.app.tmp"), app);
    expect(statSync(app).ino).not.toBe(u.ino);
    await check("renamed over", ["lib/app.js"]);

    chmodSync(join(root, "lib/util/x.js"), 0o755);
    await check("made executable", ["lib/util/x.js"]);

    rmSync(join(root, "lib/util/y.js"));
    await check("removed", []);
    writeFileSync(join(root, "lib/util/z.js"), "z\n");
    await check("added", ["lib/util/z.js"]);
    expect(JSON.parse(readFileSync(cache, "utf8")).files.filter((_: string, i: number) => i % 3 === 0).sort()).toEqual(
      ["B-upper.txt", "assets/big.bin", "assets/empty.txt", "bin/run", "lib/app.js", "lib/util/x.js", "lib/util/z.js", "server.js", "ünï cødé/name with spaces.txt"].sort(),
    );
    // Nothing changed: nothing read, the cache not rewritten.
    const mtime = statSync(cache).mtimeMs;
    await check("unchanged", []);
    expect(statSync(cache).mtimeMs).toBe(mtime);
  });

  test("racy files: a file changed just before it was read is never vouched for, so it is read again next time", async () => {
    const { root, cache } = tree();
    // Hashing that begins in the very instant the tree was last written (as a build then a deploy can).
    const lastChange = (...rels: string[]) => () => Math.max(...rels.map((r) => statSync(join(root, r)).ctimeMs));
    const justWritten = lastChange("server.js", "assets/big.bin", "bin/run");
    const first = await hashArtifact(root, { cache, now: justWritten });
    expect(first.hashedFiles).toBe(9);
    expect(existsSync(cache)).toBe(false); // nothing could be vouched for: nothing written
    const second = await hashArtifact(root, { cache, now: justWritten });
    expect(second).toMatchObject({ sha256: first.sha256, hashedFiles: 9 });

    // All old enough, then one rewritten in the instant hashing begins: only the others are kept.
    await hashArtifact(root, { cache, now: later() });
    writeFileSync(join(root, "server.js"), "require('./lib/app') // edited\n");
    const edited = await hashArtifact(root, { cache, now: lastChange("server.js") });
    expect(edited.hashedFiles).toBe(1);
    expect(edited.sha256).toBe(await reference(root));
    const kept: string[] = JSON.parse(readFileSync(cache, "utf8")).files.filter((_: string, i: number) => i % 3 === 0);
    expect(kept).not.toContain("server.js");
    expect(kept).toHaveLength(8);
    expect((await hashArtifact(root, { cache, now: lastChange("server.js") })).hashedFiles).toBe(1);
    // Once it is old enough it is cached like the rest.
    await hashArtifact(root, { cache, now: later() });
    expect((await hashArtifact(root, { cache })).hashedFiles).toBe(0);
  });

  test("a corrupt cache is ignored and replaced", async () => {
    const { root, cache } = tree();
    mkdirSync(join(cache, ".."), { recursive: true });
    writeFileSync(cache, "{ not json");
    expect(await hashArtifact(root, { cache, now: later() })).toMatchObject({ sha256: await reference(root), hashedFiles: 9 });
    expect((await hashArtifact(root, { cache })).hashedFiles).toBe(0);
  });

  test("each part of a file's remembered stat counts: size, mtime, ctime, inode, device, mode", async () => {
    // A real change moves ctime along with the rest, so each part is changed in the cache instead.
    const { root, cache } = tree();
    await hashArtifact(root, { cache, now: later() });
    const want = await reference(root);
    const st = statSync(join(root, "lib/app.js"));
    const parts = { size: st.size, mtime: st.mtimeMs, ctime: st.ctimeMs, inode: st.ino, device: st.dev, mode: st.mode };
    const entryAt = (c: { files: string[] }) => c.files.indexOf("lib/app.js") + 1;
    const original = JSON.parse(readFileSync(cache, "utf8"));
    expect(original.files[entryAt(original)].split(":")).toEqual(Object.values(parts).map(String));
    for (const [i, part] of Object.keys(parts).entries()) {
      const c = structuredClone(original);
      const key = c.files[entryAt(c)].split(":");
      key[i] = String(Number(key[i]) + 1);
      c.files[entryAt(c)] = key.join(":");
      writeFileSync(cache, JSON.stringify(c));
      const d = await hashArtifact(root, { cache, now: later() });
      expect({ part, sha256: d.sha256, hashed: d.hashedFiles }).toEqual({ part, sha256: want, hashed: 1 });
      // Read again, it is remembered again.
      expect(JSON.parse(readFileSync(cache, "utf8")).files[entryAt(original)]).toBe(original.files[entryAt(original)]);
    }
  });

  test("a cache for another tree, of another format, cut short, or that cannot be written is ignored, never fatal", async () => {
    const { root, cache } = tree();
    const want = await reference(root);
    await hashArtifact(root, { cache, now: later() });
    const good = readFileSync(cache, "utf8");
    const c = JSON.parse(good);
    for (const [what, text] of [
      ["another tree", JSON.stringify({ ...c, root: `${root}-other` })],
      ["another format", JSON.stringify({ ...c, format: c.format + 1 })],
      ["not strings", JSON.stringify({ ...c, files: c.files.map((x: string, i: number) => (i % 3 === 1 ? 1 : x)) })],
      ["cut short", good.slice(0, good.length / 2)],
      ["empty", ""],
    ]) {
      writeFileSync(cache, text);
      const d = await hashArtifact(root, { cache, now: later() });
      expect({ what, sha256: d.sha256, hashed: d.hashedFiles }).toEqual({ what, sha256: want, hashed: 9 });
    }
    // Where no file can be written (its folder is a file; it is a folder): hashed, not remembered.
    const blocked = join(root, "..", "blocked");
    writeFileSync(blocked, "a file where the cache folder would be\n");
    const asDir = join(root, "..", "a-dir.json");
    mkdirSync(asDir);
    for (const place of [join(blocked, "digests.json"), asDir]) {
      expect(await hashArtifact(root, { cache: place, now: later() })).toMatchObject({ sha256: want, hashedFiles: 9 });
      expect(await hashArtifact(root, { cache: place, now: later() })).toMatchObject({ sha256: want, hashedFiles: 9 });
    }
    expect(readdirSync(join(root, ".."))).not.toContainEqual(expect.stringMatching(/\.tmp$/));
  });

  test("a cache inside the tree is never used: the tree's digest stays the tree's", async () => {
    const { root } = tree();
    const inside = join(root, ".togo", "cache", "digests.json");
    const want = await reference(root);
    for (let i = 0; i < 2; i++) expect(await hashArtifact(root, { cache: inside, now: later() })).toMatchObject({ sha256: want, hashedFiles: 9 });
    expect(existsSync(join(root, ".togo"))).toBe(false);
    expect(await reference(root)).toBe(want);
  });

  test("a tree holding a FIFO is refused, naming it", async () => {
    const { root } = tree();
    const { execa } = await import("execa");
    await execa("mkfifo", [join(root, "lib/pipe")]);
    await expect(artifactSha256(root)).rejects.toThrow(/lib\/pipe, which is not a regular file/);
  });
});

describe("progress", () => {
  test("a tree of more than 2,000 files to read reports files and bytes; a small one stays quiet", async () => {
    const base = tempDir("togo-digest-many-");
    for (let d = 0; d < 21; d++) {
      mkdirSync(join(base, "many", `d${d}`), { recursive: true });
      for (let f = 0; f < 100; f++) writeFileSync(join(base, "many", `d${d}`, `f${f}`), `${d}/${f}\n`);
    }
    const seen: HashProgress[] = [];
    const d = await hashArtifact(join(base, "many"), { onProgress: (p) => seen.push(p) });
    expect(seen.length).toBeGreaterThan(0);
    for (const p of seen) expect(p).toMatchObject({ totalFiles: 2100, totalBytes: d.bytes });
    expect(seen.map((p) => p.files)).toEqual([...seen.map((p) => p.files)].sort((a, b) => a - b));

    const small: HashProgress[] = [];
    await hashArtifact(tree().root, { onProgress: (p) => small.push(p) });
    expect(small).toEqual([]);
  });

  test("the reporter: plain output gets a line at most every second and none in a stage's first second", async () => {
    let clock = 0;
    let out = "";
    const log = createReporter({ stream: { write: (s: string) => ((out += s), true), isTTY: false }, color: false, now: () => clock });
    await log.stage("build", async () => {
      log.progress!("hashing 1/9 files");
      clock = 999;
      log.progress!("hashing 2/9 files");
      clock = 1000;
      log.progress!("hashing 3/9 files");
      clock = 1500;
      log.progress!("hashing 4/9 files");
      clock = 2100;
      log.progress!("hashing 5/9 files");
    });
    const lines = out.split("\n").filter(Boolean);
    expect(lines.slice(0, -1)).toEqual(["  hashing 3/9 files", "  hashing 5/9 files"]);
    expect(lines.at(-1)).toMatch(/^✓ build\s+\S+$/);
  });

  test("--json: no progress notes, plain or on a TTY; the stage lines stay", async () => {
    for (const isTTY of [false, true]) {
      let clock = 0;
      let out = "";
      const log = createReporter({ stream: { write: (s: string) => ((out += s), true), isTTY }, color: false, progress: false, now: () => clock });
      const frames = () => out.split("\r").length;
      await log.stage("build", async () => {
        for (let i = 1; i <= 5; i++) {
          clock += 5000;
          log.progress!(`hashing ${i}/9 files`);
          // On a TTY, until the spinner has drawn a frame since (it would carry the note).
          for (const seen = frames(); isTTY && frames() === seen; ) await new Promise((r) => setTimeout(r, 10));
        }
      });
      expect({ isTTY, hashing: out.includes("hashing") }).toEqual({ isTTY, hashing: false });
      expect(out).toMatch(/✓ build/);
    }
  });

  test("the reporter on a TTY: the note rides on the spinner line and is gone with the stage", async () => {
    let out = "";
    let seen: () => void = () => {};
    const shown = new Promise<void>((r) => (seen = r));
    const stream = {
      isTTY: true,
      write: (s: string) => {
        out += s;
        if (s.includes("hashing 7/9 files")) seen();
        return true;
      },
    };
    const log = createReporter({ stream, color: false });
    await log.stage("build", async () => {
      log.progress!("hashing 7/9 files");
      await shown;
    });
    expect(out).toMatch(/\r\S build hashing 7\/9 files\x1b\[K/);
    expect(out.split("\r\x1b[K").at(-1)).toMatch(/^✓ build\s+\S+\n$/);
  });
});

describe("the cache's place", () => {
  test("one file per artifact path under the project's .togo/cache", () => {
    const w = new Workspace({ dir: "/p/proj", app: "a", stage: "prod" });
    expect(w.digestCache("dist")).toMatch(/^\/p\/proj\/\.togo\/cache\/digests-[0-9a-f]{16}\.json$/);
    expect(w.digestCache("dist")).toBe(w.digestCache("/p/proj/dist"));
    expect(w.digestCache("dist")).toBe(new Workspace({ dir: "/p/proj", app: "a" }).digestCache("dist"));
    expect(w.digestCache("other")).not.toBe(w.digestCache("dist"));
    expect(w.digestCache("..dist")).toMatch(/^\/p\/proj\/\.togo\/cache\//);
  });

  test("an artifact holding .togo (binary: .) keeps its cache in the user's cache dir instead", () => {
    const w = new Workspace({ dir: "/p/proj", app: "a" });
    for (const artifact of [".", "/p", "/p/proj/"]) {
      expect(w.digestCache(artifact, { XDG_CACHE_HOME: "/home/u/.cache-x" })).toMatch(/^\/home\/u\/\.cache-x\/togo\/digests-[0-9a-f]{16}\.json$/);
      expect(w.digestCache(artifact, {})).toBe(join(homedir(), ".cache", "togo", w.digestCache(artifact, {}).split("/").at(-1)!));
    }
    // A relative XDG_CACHE_HOME is ignored, as the XDG spec asks.
    expect(w.digestCache(".", { XDG_CACHE_HOME: "rel" })).toMatch(new RegExp(`^${homedir()}/\\.cache/togo/`));
    expect(w.digestCache(".")).not.toBe(w.digestCache("/p"));
  });
});
