// Shipping only what changed, under a real sh with the real rsync: a directory upload built from
// the previous release's upload (unchanged files hard-linked, changed ones sent), installed as hard
// links, the result exactly the artifact, nothing written outside app_dir and nothing linked to the
// build output. Plus the scripts and rsync arguments as data, and the base lines a tampered release
// folder must never produce.
import { execa } from "execa";
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { afterAll, describe, expect, test } from "@jest/globals";
import { LocalTransport, localRsyncArgs, parseRsyncFiles } from "../../src/exec/local.js";
import { rsyncArgs, tarCreateArgs, unpackScript } from "../../src/exec/ssh.js";
import { artifactSha256 } from "../../src/ship/artifact.js";
import * as S from "../../src/ship/scripts.js";
import { cleanupTempDirs, tempDir } from "../helpers/index.js";

afterAll(cleanupTempDirs);

const sh = (script: string) => execa("sh", ["-c", script], { reject: false, stripFinalNewline: false });

/** Every path under dir with its type, size and content hash: what "nothing else changed" compares. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const s = lstatSync(p);
      out.push(`${relative(dir, p)} ${s.isDirectory() ? "d" : s.isSymbolicLink() ? "l" : `f${s.size}:${readFileSync(p, "utf8").length}`}`);
      if (s.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

function build(root: string, files: number): string {
  const dist = join(root, "dist");
  for (let i = 0; i < files; i++) {
    const d = join(dist, `mod${i % 12}`);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `f${i}.js`), `// file ${i}\n${"x".repeat(i * 7)}\n`);
  }
  writeFileSync(join(dist, "server.js"), "// v1\n");
  writeFileSync(join(dist, "run.sh"), "#!/bin/sh\n");
  chmodSync(join(dist, "run.sh"), 0o755);
  symlinkSync("mod0/f0.js", join(dist, "main.js"));
  return dist;
}

describe("a release built from the previous one", () => {
  test("only changed files are sent, the rest hard-linked; the release is exactly the artifact; nothing outside app_dir", async () => {
    const root = tempDir("togo-linkdest-");
    const app = join(root, "srv", "my app");
    const outside = join(root, "srv", "neighbour");
    mkdirSync(outside, { recursive: true });
    writeFileSync(join(outside, "keep.txt"), "not togo's\n");
    const dist = build(join(root, "project"), 300);
    const dir = S.releaseDir(app);
    const t = new LocalTransport();
    await t.run(dir.layout());

    const ship = async (version: string) => {
      const sha = await artifactSha256(dist);
      const answer = (await t.run(dir.hasUpload(sha))).stdout;
      const bases = S.uploadBases(answer);
      const sent = await t.upload(dist, `${app}/.uploads/${sha}.partial`, { linkDest: bases.map((b) => `../${b}`) });
      await t.run(dir.storeUpload(sha));
      await t.run(dir.install(version, sha, "dist"));
      await t.run(dir.switchTo(version, false));
      await t.run(dir.record(version));
      return { sha, bases, sent };
    };

    const first = await ship("1");
    expect(first.bases).toEqual([]);
    expect(first.sent).toMatchObject({ files: 302 });
    const outsideBefore = listing(join(root, "srv")).filter((l) => !l.startsWith("my app"));

    // One file changed, one added, one removed, one made executable.
    writeFileSync(join(dist, "server.js"), "// v2, a little longer\n");
    writeFileSync(join(dist, "mod3", "new.js"), "// new\n");
    rmSync(join(dist, "mod5", "f5.js"));
    chmodSync(join(dist, "mod7", "f7.js"), 0o755);
    const second = await ship("2");
    expect(second.bases).toEqual([first.sha]);
    // Sent: the changed and the added file; the chmod-ed one is copied from the base on the target.
    expect(second.sent).toMatchObject({ files: 2, linked: true });

    const up = (sha: string, rel: string) => join(app, ".uploads", sha, rel);
    const rel = (v: string, r: string) => join(app, `v${v}`, "dist", r);
    // Exactly the artifact, and v1 exactly what it was.
    expect(await artifactSha256(join(app, "v2", "dist"))).toBe(second.sha);
    expect(await artifactSha256(join(app, "v1", "dist"))).toBe(first.sha);
    expect(await artifactSha256(up(second.sha, ""))).toBe(second.sha);
    // Unchanged files are one inode across both uploads and both releases.
    const ino = (p: string) => statSync(p).ino;
    for (const r of ["mod0/f0.js", "mod11/f299.js", "run.sh"]) {
      expect(new Set([ino(up(first.sha, r)), ino(up(second.sha, r)), ino(rel("1", r)), ino(rel("2", r))]).size).toBe(1);
    }
    // Changed files are new inodes; the old release keeps its bytes and mode.
    expect(ino(rel("2", "server.js"))).not.toBe(ino(rel("1", "server.js")));
    expect(readFileSync(rel("1", "server.js"), "utf8")).toBe("// v1\n");
    expect(statSync(rel("1", "mod7/f7.js")).mode & 0o111).toBe(0);
    expect(statSync(rel("2", "mod7/f7.js")).mode & 0o111).not.toBe(0);
    expect(ino(rel("2", "server.js"))).toBe(ino(up(second.sha, "server.js")));
    expect(lstatSync(rel("2", "main.js")).isSymbolicLink()).toBe(true);
    // Nothing was linked to the build output, nothing written beside app_dir.
    const sources: string[] = [];
    const walk = (d: string) => readdirSync(d, { withFileTypes: true }).forEach((e) => (e.isDirectory() ? walk(join(d, e.name)) : e.isFile() && sources.push(join(d, e.name))));
    walk(dist);
    expect(sources.filter((p) => statSync(p).nlink !== 1)).toEqual([]);
    expect(listing(join(root, "srv")).filter((l) => !l.startsWith("my app"))).toEqual(outsideBefore);
    expect(readdirSync(join(app, ".uploads")).sort()).toEqual([first.sha, second.sha].sort());

    // The same artifact again: there already, nothing to send.
    expect((await t.run(dir.hasUpload(second.sha))).stdout).toBe("yes\n");

    // A change that keeps the size and the mtime (a build that pins timestamps, or two builds in
    // the same second): it must still reach the release, not be linked from the base.
    const pinned = statSync(join(dist, "server.js"));
    writeFileSync(join(dist, "server.js"), "// v3, a little longer\n");
    utimesSync(join(dist, "server.js"), pinned.atime, pinned.mtime);
    const third = await ship("3");
    expect(third.bases[0]).toBe(second.sha);
    expect(readFileSync(rel("3", "server.js"), "utf8")).toBe("// v3, a little longer\n");
    expect(await artifactSha256(join(app, "v3", "dist"))).toBe(third.sha);
    expect(readFileSync(rel("2", "server.js"), "utf8")).toBe("// v2, a little longer\n");
  });

  test("a single-file artifact is installed as a hard link to its upload", async () => {
    const app = join(tempDir("togo-install-"), "app");
    const dir = S.releaseDir(app);
    const t = new LocalTransport();
    await t.run(dir.layout());
    const sha = "a".repeat(64);
    writeFileSync(join(app, ".uploads", sha), "#!/bin/sh\n", { mode: 0o755 });
    await t.run(dir.install("1", sha, "server bin"));
    const installed = join(app, "v1", "server bin");
    expect(statSync(installed).ino).toBe(statSync(join(app, ".uploads", sha)).ino);
    expect(readFileSync(join(app, "v1", ".togo-sha256"), "utf8")).toBe(`${sha}\n`);
  });
});

describe("the bases hasUpload offers", () => {
  const A = "a".repeat(64);
  const B = "b".repeat(64);
  const C = "c".repeat(64);
  async function host(): Promise<string> {
    const app = join(tempDir("togo-bases-"), "app");
    for (const [v, sha] of [["1", A], ["2", B], ["3", C]]) {
      mkdirSync(join(app, `v${v}`), { recursive: true });
      writeFileSync(join(app, `v${v}`, ".togo-sha256"), `${sha}\n`);
      mkdirSync(join(app, ".uploads", sha), { recursive: true });
    }
    // v3 is the newest folder, v1 is current.
    await sh(`cd '${app}' && touch -d '2020-01-01' v1 v2 && ln -s v1 current`);
    return app;
  }

  test("the current release's upload, then the newest other one's", async () => {
    const app = await host();
    const r = await sh(S.hasUploadScript(app, "d".repeat(64)));
    expect(r.stdout).toBe(`no\nbase ${A}\nbase ${C}\n`);
    expect(S.uploadBases(r.stdout)).toEqual([A, C]);
    expect((await sh(S.hasUploadScript(app, B))).stdout).toBe("yes\n");
  });

  test("a tampered sha256, a symlinked upload, a missing upload or a bad current offer nothing", async () => {
    const app = await host();
    writeFileSync(join(app, "v1", ".togo-sha256"), "../../etc\n");
    rmSync(join(app, ".uploads", C), { recursive: true });
    const elsewhere = tempDir("togo-elsewhere-");
    rmSync(join(app, ".uploads", B), { recursive: true });
    symlinkSync(elsewhere, join(app, ".uploads", B));
    await sh(`cd '${app}' && touch v2`);
    expect((await sh(S.hasUploadScript(app, "d".repeat(64)))).stdout).toBe("no\n");
    rmSync(join(app, "current"));
    symlinkSync("v1; rm -rf /", join(app, "current"));
    expect((await sh(S.hasUploadScript(app, "d".repeat(64)))).stdout).toBe("no\n");
    expect(S.uploadBases(`no\nbase ${A}\nbase ../${A}\nbase ${A.slice(1)}\nbase ${A}x\n`)).toEqual([A]);
  });

  test("on a fresh host: no, and no bases", async () => {
    const app = join(tempDir("togo-bases-"), "nothing-yet");
    expect((await sh(S.hasUploadScript(app, A))).stdout).toBe("no\n");
  });
});

describe("without rsync", () => {
  test("a directory travels as a tar archive and unpacks to exactly the artifact (links, dangling ones, modes)", async () => {
    const root = tempDir("togo-tar-");
    const dist = build(join(root, "project"), 40);
    symlinkSync("../nowhere", join(dist, "dangling"));
    mkdirSync(join(dist, "empty"));
    const archive = join(root, "up", "x.partial.tar");
    mkdirSync(join(root, "up"));
    await execa("tar", tarCreateArgs(dist, archive));
    const dest = join(root, "up", "x.partial");
    mkdirSync(join(dest, "leftover from a cut-off attempt"), { recursive: true });
    const r = await sh(unpackScript(archive, dest));
    expect(r.exitCode).toBe(0);
    expect(await artifactSha256(dest)).toBe(await artifactSha256(dist));
    expect(readdirSync(join(root, "up"))).toEqual(["x.partial"]);
    expect(unpackScript("/h/a b/.uploads/s.partial.tar", "/h/a b/.uploads/s.partial")).toBe(
      "rm -rf '/h/a b/.uploads/s.partial' && mkdir -p '/h/a b/.uploads/s.partial' && tar -xpf '/h/a b/.uploads/s.partial.tar' -C '/h/a b/.uploads/s.partial' && rm -f '/h/a b/.uploads/s.partial.tar'",
    );
  });
});

describe("as data", () => {
  test("install links, falls back to a copy, and stops on any failure", () => {
    const s = S.installScript("~/apps/my app", "2", "f".repeat(64), "dist");
    expect(s).toContain(`cp -al "$HOME"/'apps/my app/.uploads/${"f".repeat(64)}' "$HOME"/'apps/my app/.v2.tmp'/dist 2>/dev/null || { rm -rf`);
    expect(s).toContain(`cp -R "$HOME"/'apps/my app/.uploads/${"f".repeat(64)}' "$HOME"/'apps/my app/.v2.tmp'/dist; } || exit 1`);
    expect(s.split("\n").slice(0, -1).every((l) => l.endsWith("|| exit 1"))).toBe(true);
  });

  test("rsync: a directory is mirrored exactly and built from the bases; a file is not", () => {
    const T = { host: "203.0.113.10", user: "deploy", port: 22 };
    const dir = rsyncArgs(T, "/tmp/c", "/p/dist", "/srv/x/.uploads/abc.partial", true, ["../def"]);
    expect(dir.slice(0, 5)).toEqual(["-a", "--stats", "--delete", "--checksum", "--link-dest=../def"]);
    expect(dir.slice(-2)).toEqual(["/p/dist/", "deploy@203.0.113.10:/srv/x/.uploads/abc.partial/"]);
    expect(rsyncArgs(T, "/tmp/c", "/p/app", "/srv/x/u", false, ["../def"]).join(" ")).not.toMatch(/delete|link-dest/);
    expect(localRsyncArgs("/p/dist/", "/srv/x/u", true, ["../a", "../b"])).toEqual(["-a", "--delete", "--stats", "--checksum", "--link-dest=../a", "--link-dest=../b", "/p/dist/", "/srv/x/u/"]);
    // Without a base there is nothing to compare with: no --checksum (it would read every file for nothing).
    expect(localRsyncArgs("/p/dist/", "/srv/x/u", true, [])).not.toContain("--checksum");
    expect(parseRsyncFiles("Number of files: 30,481 (reg: 30,000, dir: 481)\nNumber of regular files transferred: 1,234\n")).toBe(1234);
  });
});
