// deploy.artifact: store without a network: the project's coordinates from its remote URL, the
// host's platform names, the host-side sha256 check under a real sh (sha256sum, or openssl where
// it is all there is), and the deploy pipeline against a recording fake transport with a directory
// store — build_cmd never runs, the host is asked its os/arch, the upload is stored only through
// the check, a refused upload installs nothing, a mixed fleet and a missing build are refused.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, test } from "@jest/globals";
import { execa } from "execa";
import { parseConfig } from "../../src/config/load.js";
import { OperationError, UsageError } from "../../src/core/errors.js";
import { createReporter } from "../../src/core/log.js";
import type { Spec, Target } from "../../src/core/spec.js";
import { FsStore } from "../../src/artifacts/fs-store.js";
import { artifactKey } from "../../src/artifacts/key.js";
import { shippingOptions, shippingSchema } from "../../src/ship/options.js";
import { versionedRelease } from "../../src/ship/release.js";
import { parseHostPlatform, storeVerifiedUploadScript } from "../../src/ship/scripts.js";
import { parseRemoteUrl, projectSource } from "../../src/ship/store-artifact.js";
import { cleanupTempDirs, tempDir } from "../helpers/index.js";
import { FakeTransport } from "../helpers/fake-transport.js";

afterAll(cleanupTempDirs);
const fakes: FakeTransport[] = [];
afterEach(async () => {
  for (const f of fakes.splice(0)) await f.close();
});

const HTTPS = "https://{remote}/{owner}/{repo}.git";

describe("the project's coordinates from its remote", () => {
  test.each([
    ["https://github.com/acme/hello.git", HTTPS, ["github.com", "acme", "hello"]],
    ["https://github.com/acme/hello", HTTPS, ["github.com", "acme", "hello"]],
    ["git@github.com:acme/hello.git", HTTPS, ["github.com", "acme", "hello"]],
    ["ssh://git@git.example.com:2222/acme/hello.git", HTTPS, ["git.example.com", "acme", "hello"]],
    ["https://user:pw@git.example.com/acme/hello.git", HTTPS, ["git.example.com", "acme", "hello"]],
    // Read back through the proxy's own template first.
    ["file:///srv/git/example.com/acme/hello.git", "file:///srv/git/{remote}/{owner}/{repo}.git", ["example.com", "acme", "hello"]],
    ["https://git.internal/scm/acme/hello.git", "https://{remote}/scm/{owner}/{repo}.git", ["git.internal", "acme", "hello"]],
  ])("%s", (url, template, want) => {
    expect(parseRemoteUrl(url, template)).toEqual({ remote: want[0], owner: want[1], repo: want[2] });
  });

  test.each(["https://github.com/hello.git", "not a url", "https://github.com/acme/../hello.git", "https://github.com/ac me/hello.git"])("%s names no coordinates", (url) => {
    expect(parseRemoteUrl(url, HTTPS)).toBeUndefined();
  });
});

test("uname's names become Go's; an unknown one is no platform", () => {
  expect(parseHostPlatform("os=Linux\narch=x86_64\n")).toEqual({ os: "linux", arch: "amd64" });
  expect(parseHostPlatform("os=Linux\narch=aarch64\n")).toEqual({ os: "linux", arch: "arm64" });
  expect(parseHostPlatform("os=Darwin\narch=arm64\n")).toEqual({ os: "darwin", arch: "arm64" });
  expect(parseHostPlatform("os=Plan9\narch=x86_64\n")).toBeUndefined();
  expect(parseHostPlatform("os=Linux\narch=m68k\n")).toBeUndefined();
});

describe("the host's own sha256 check, under a real sh", () => {
  const bytes = "#!/bin/sh\necho hi\n";
  const sha = createHash("sha256").update(bytes).digest("hex");
  const setup = () => {
    const app = tempDir("togo-verify-");
    mkdirSync(join(app, ".uploads"));
    writeFileSync(join(app, ".uploads", `${sha}.partial`), bytes);
    return app;
  };

  test("the bytes the store built are stored under their sha256", async () => {
    const app = setup();
    const r = await execa("sh", ["-c", storeVerifiedUploadScript(app, sha)], { reject: false });
    expect(r.exitCode).toBe(0);
    expect(readFileSync(join(app, ".uploads", sha), "utf8")).toBe(bytes);
    expect(existsSync(join(app, ".uploads", `${sha}.partial`))).toBe(false);
  });

  test("other bytes are refused and removed; nothing is stored", async () => {
    const app = setup();
    writeFileSync(join(app, ".uploads", `${sha}.partial`), `${bytes}tampered\n`);
    const r = await execa("sh", ["-c", storeVerifiedUploadScript(app, sha)], { reject: false });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`the uploaded artifact hashes to [0-9a-f]{64}, not ${sha} \\(the artifact store's\\): refused and removed`));
    expect(existsSync(join(app, ".uploads", sha))).toBe(false);
    expect(existsSync(join(app, ".uploads", `${sha}.partial`))).toBe(false);
  });

  test("a tarred directory (dist.tar.gz) is checked, then stored unpacked, as a directory upload is", async () => {
    const src = tempDir("togo-dist-");
    mkdirSync(join(src, "lib"));
    writeFileSync(join(src, "server.js"), "// main\n");
    writeFileSync(join(src, "lib", "a.js"), "// a\n");
    const tgz = join(tempDir(), "dist.tar.gz");
    await execa("tar", ["-czf", tgz, "-C", src, "."]);
    const tsha = createHash("sha256").update(readFileSync(tgz)).digest("hex");
    const app = tempDir("togo-verify-");
    mkdirSync(join(app, ".uploads"));
    writeFileSync(join(app, ".uploads", `${tsha}.partial`), readFileSync(tgz));
    const r = await execa("sh", ["-c", storeVerifiedUploadScript(app, tsha, true)], { reject: false });
    expect(r.stderr).toBe("");
    expect(readFileSync(join(app, ".uploads", tsha, "lib", "a.js"), "utf8")).toBe("// a\n");
    expect(readdirSync(join(app, ".uploads")).sort()).toEqual([tsha]);
    // Bytes that are not the store's are refused before tar sees them.
    writeFileSync(join(app, ".uploads", `${sha}.partial`), readFileSync(tgz));
    const wrong = await execa("sh", ["-c", storeVerifiedUploadScript(app, sha, true)], { reject: false });
    expect(wrong.exitCode).toBe(1);
    expect(readdirSync(join(app, ".uploads")).sort()).toEqual([tsha]);
  });

  test("a host with only openssl checks with it; one with no tool at all says so and stores nothing", async () => {
    const app = setup();
    const bin = tempDir("togo-bin-");
    for (const tool of ["openssl", "mv", "rm"]) symlinkSync(`/usr/bin/${tool}`.replace("/usr/bin/mv", "/bin/mv").replace("/usr/bin/rm", "/bin/rm"), join(bin, tool));
    const withOpenssl = await execa("/bin/sh", ["-c", storeVerifiedUploadScript(app, sha)], { env: { PATH: bin }, extendEnv: false, reject: false });
    expect(withOpenssl.stderr).toBe("");
    expect(existsSync(join(app, ".uploads", sha))).toBe(true);

    const bare = setup();
    const none = await execa("/bin/sh", ["-c", storeVerifiedUploadScript(bare, sha)], { env: { PATH: tempDir("togo-empty-") }, extendEnv: false, reject: false });
    expect(none.exitCode).toBe(1);
    expect(none.stderr).toContain("the host has none of sha256sum, shasum or openssl to check the artifact with");
    expect(existsSync(join(bare, ".uploads", sha))).toBe(false);
  });
});

// --- the deploy pipeline with a directory store and a recording fake host ---

const ARTIFACT = "console.log('from the store')\n";
const ARTIFACT_SHA = createHash("sha256").update(ARTIFACT).digest("hex");

async function git(dir: string, ...args: string[]): Promise<string> {
  const r = await execa("git", args, { cwd: dir, env: { GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@t", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@t" } });
  return String(r.stdout).trim();
}

/** A committed project whose build_cmd would leave BUILT_HERE, with a store holding its build for linux/amd64 (unless `empty`). */
async function storeProject(o: { empty?: boolean; binary?: string; fileName?: string } = {}): Promise<{ spec: Spec; dir: string }> {
  const dir = tempDir("togo-storeproj-");
  const store = join(dir, "store");
  const yaml = `app: hello
deploy:
  provider: local
  build_cmd: touch BUILT_HERE && cp app.js server.js
  binary: ${o.binary ?? "server.js"}
  run: node server.js
  app_port: 3999
  app_dir: /srv/hello
  artifact: store
artifacts:
  store: ${store}
`;
  writeFileSync(join(dir, "togo.yaml"), yaml);
  writeFileSync(join(dir, "app.js"), "console.log('here')\n");
  writeFileSync(join(dir, ".gitignore"), "store/\n.togo/\n");
  await git(dir, "init", "-q");
  await git(dir, "add", "-A");
  await git(dir, "commit", "-q", "-m", "init");
  await git(dir, "remote", "add", "origin", "https://git.example.com/acme/hello.git");
  const commit = await git(dir, "rev-parse", "HEAD");
  if (!o.empty) {
    const c = { remote: "git.example.com", owner: "acme", repo: "hello", os: "linux", arch: "amd64", version: commit };
    const key = artifactKey(c, commit, "0123456789abcdef");
    const file = join(tempDir(), "server.js");
    writeFileSync(file, ARTIFACT);
    await new FsStore(store).put(key, file, { coordinates: c, key, commit, sha256: ARTIFACT_SHA, size: ARTIFACT.length, built_at: new Date().toISOString(), recipe: key.recipe, file_name: o.fileName ?? "server.js" });
  }
  return { spec: parseConfig(yaml, join(dir, "togo.yaml"), {}), dir };
}

function host(platform = "os=Linux\narch=x86_64\n"): FakeTransport {
  const f = new FakeTransport();
  fakes.push(f);
  f.on("host.platform", { stdout: platform })
    .on("current", { stdout: "1\n" })
    .on("upload.has", { stdout: "no\n" })
    .on("release.sha", { stdout: "" })
    .on("port.free", { stdout: "20001\n" })
    .on("candidate.status", { stdout: "running 42\n" })
    .on("candidate.owns", { stdout: "ours\n" })
    .on("service.status", { stdout: "running 43\n" })
    .on("service.owns", { stdout: "ours\n" });
  return f;
}

const shipping = (transport: FakeTransport | ((t: Target) => FakeTransport)) =>
  versionedRelease({
    driver: "test",
    ctx: { log: createReporter({ quiet: true }), opts: { force: false, yes: false, lockWait: 0, json: false, version: "2" } },
    options: shippingOptions(shippingSchema.parse({})),
    front: "own",
    open: { transport, serviceMode: "process" },
    env: process.env,
  });
const one = (spec: Spec): Target[] => [{ appDir: spec.appDir, url: "http://app" }];

describe("deploy.artifact: store in the deploy pipeline", () => {
  test("the store's build for the host's os/arch is shipped; build_cmd does not run; the host stores it only through its check", async () => {
    const { spec, dir } = await storeProject();
    const f = host();
    const r = await shipping(f).deploy(spec, one(spec));
    expect((r.raw as { sha256: string }).sha256).toBe(ARTIFACT_SHA);
    expect(existsSync(join(dir, "BUILT_HERE"))).toBe(false);
    expect(existsSync(join(dir, "server.js"))).toBe(false);
    const ops = f.ops();
    expect(ops.indexOf("host.platform")).toBeLessThan(ops.indexOf("lock.acquire"));
    expect(ops).toContain("upload.verify");
    expect(ops).not.toContain("upload.store");
    expect(f.of("upload.verify")[0].script).toContain(ARTIFACT_SHA);
    expect(f.of("upload")[0].script).toContain(join(dir, ".togo", "downloads", ARTIFACT_SHA, "server.js"));
    expect(f.of("release.install")[0].script).toContain("server.js");
    expect(readFileSync(join(dir, ".togo", "downloads", ARTIFACT_SHA, "server.js"), "utf8")).toBe(ARTIFACT);
  });

  test("a directory artifact (dist → dist.tar.gz) is unpacked by the host and installed under deploy.binary's name", async () => {
    const { spec } = await storeProject({ binary: "dist", fileName: "dist.tar.gz" });
    const f = host();
    await shipping(f).deploy(spec, one(spec));
    expect(f.of("upload.verify")[0].script).toContain("tar -xzf");
    expect(f.of("release.install")[0].script).toMatch(/\/dist(\s|')/);
    expect(f.of("release.install")[0].script).not.toContain("dist.tar.gz");
    // A file artifact is stored as it is.
    const plain = await storeProject();
    const g = host();
    await shipping(g).deploy(plain.spec, one(plain.spec));
    expect(g.of("upload.verify")[0].script).not.toContain("tar ");
  });

  test("an upload the host refuses installs nothing, switches nothing, and gives the lock back", async () => {
    const { spec } = await storeProject();
    const f = host();
    f.on("upload.verify", { code: 1, stderr: "togo: the uploaded artifact hashes to abc, not def (the artifact store's): refused and removed\n" });
    const err = await shipping(f).deploy(spec, one(spec)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OperationError);
    expect((err as Error).message).toContain("refused and removed");
    expect(f.ops()).not.toContain("release.install");
    expect(f.ops()).not.toContain("switch");
    expect(f.ops()).toContain("lock.release");
  });

  test("a store without a build of the commit: what to run, before anything changes on the host", async () => {
    const { spec } = await storeProject({ empty: true });
    const f = host("os=Linux\narch=aarch64\n");
    const err = await shipping(f).deploy(spec, one(spec)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OperationError);
    expect((err as Error).message).toMatch(/has no build of git\.example\.com\/acme\/hello [0-9a-f]{12} for linux\/arm64: build it into the store \(togo build --os linux --arch arm64\), or set artifacts.server/);
    expect(f.ops()).not.toContain("lock.acquire");
  });

  test("a fleet of two platforms is refused: one build a deploy", async () => {
    const { spec } = await storeProject();
    const hosts: Record<string, FakeTransport> = { a: host(), b: host("os=Linux\narch=aarch64\n") };
    const targets: Target[] = ["a", "b"].map((h) => ({ host: h, user: "deploy", appDir: spec.appDir, url: "http://app" }));
    const err = await shipping((t) => hosts[t.host!]).deploy(spec, targets).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toContain("ships one build a deploy, but the hosts differ: linux/amd64");
    expect((err as Error).message).toContain("linux/arm64");
  });

  test("the working tree must be what was committed: a changed tracked file, no commit, no git, no remote", async () => {
    const { spec, dir } = await storeProject();
    writeFileSync(join(dir, "app.js"), "changed\n");
    await expect(projectSource(spec)).rejects.toThrow(/1 tracked file has uncommitted changes \(app\.js\): commit and push them/);
    // Untracked files are in no commit: they do not count.
    await git(dir, "checkout", "-q", "app.js");
    writeFileSync(join(dir, "notes.txt"), "x\n");
    await expect(projectSource(spec)).resolves.toMatchObject({ remote: "git.example.com", owner: "acme", repo: "hello" });

    const bare = tempDir("togo-nogit-");
    const noGit = { ...spec, dir: bare };
    await expect(projectSource(noGit)).rejects.toThrow(UsageError);
    await expect(projectSource(noGit)).rejects.toThrow(/is not in a git repository: git init, commit and push it \(or set deploy.artifact: build to build here\)/);
    await git(bare, "init", "-q");
    await expect(projectSource(noGit)).rejects.toThrow(/has no commit yet: commit and push the project first/);
    writeFileSync(join(bare, "a"), "a");
    await git(bare, "add", "a");
    await git(bare, "commit", "-q", "-m", "a");
    await expect(projectSource(noGit)).rejects.toThrow(/has no remote: add the one the proxy clones from/);
    await git(bare, "remote", "add", "origin", "/srv/hello.git");
    await expect(projectSource(noGit)).rejects.toThrow(/the origin remote's URL \(\/srv\/hello\.git\) names no \{remote\}\/\{owner\}\/\{repo\}/);
  });
});
