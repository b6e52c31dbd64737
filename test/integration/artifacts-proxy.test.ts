// The build proxy for real: `togo artifacts serve` as a process on loopback, an fs store, git
// repositories the test makes (bare repos through file:// URLs and --git-url). Builds are held open
// by a gate file the test creates, so "while it runs" is a state the test controls, not a race; each
// build appends a line to a count file, so "one build" is counted on the builder's real runs.
import { createHash } from "node:crypto";
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { execa } from "execa";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { cleanupTempDirs, freePort, tempDir, togo, writeFiles } from "../helpers/index.js";
import { GitFixture, startProxy, waitBuild, type Proxy } from "../helpers/artifacts.js";

const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

let root: string;
let repos: GitFixture;
let store: string;
let proxy: Proxy;

/** A repo whose build counts its runs, prints, waits for `gate` (when given), and writes out/app. */
function gatedRepo(count: string, gate: string | undefined, content: string): Record<string, string> {
  const wait = gate ? `while [ ! -e ${gate} ]; do sleep 0.05; done; ` : "";
  return {
    "togo.yaml": `app: demo
deploy:
  build_cmd: "echo run >> ${count}; echo building $TOGO_OS/$TOGO_ARCH goos=$GOOS goarch=$GOARCH; ${wait}mkdir -p out; printf '%s %s/%s' \\"$(cat content.txt)\\" $TOGO_OS $TOGO_ARCH > out/app"
  binary: out/app
`,
    "content.txt": content,
  };
}

/** The state letter of a process (R, S, D, Z...), or "gone". */
function runningState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
  } catch {
    return "gone";
  }
}

/** Polls a build record file until check passes; returns its text. */
async function waitForRecord(file: string, check: (r: { runner?: { build_pgid?: number } }) => boolean): Promise<string> {
  for (let i = 0; i < 1200; i++) {
    if (existsSync(file)) {
      const text = readFileSync(file, "utf8");
      if (check(JSON.parse(text))) return text;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${file} never passed the check`);
}

const runs = (count: string) => (existsSync(count) ? readFileSync(count, "utf8").split("\n").filter(Boolean).length : 0);

/** Reads a streamed response until its text matches re; returns the text so far and the reader. */
async function readUntil(res: Response, re: RegExp): Promise<{ text: string; reader: ReadableStreamDefaultReader<Uint8Array> }> {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  let text = "";
  const timer = setTimeout(() => void reader.cancel(new Error("timeout")), 60_000);
  while (!re.test(text)) {
    const { value, done } = await reader.read();
    if (done) clearTimeout(timer);
    if (done) throw new Error(`the stream ended (or 60 s passed) before ${re}; it had:\n${text}`);
    text += Buffer.from(value).toString();
  }
  clearTimeout(timer);
  return { text, reader };
}

async function readRest(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<string> {
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return text;
    text += Buffer.from(value).toString();
  }
}

beforeAll(async () => {
  root = tempDir("togo-proxy-");
  repos = new GitFixture(root);
  store = join(root, "store");
  proxy = await startProxy(["--store", store, "--git-url", repos.gitUrl, "--jobs", "4", "--work-dir", join(root, "work-a")], { cwd: root });
});

afterAll(async () => {
  await proxy?.stop();
  cleanupTempDirs();
});

describe("POST, logs, GET", () => {
  test("POST → 202; the log streams while the build runs; GET → 202, then 200 with bytes whose sha256 is X-Togo-Sha256", async () => {
    const count = join(root, "hello.count");
    const gate = join(root, "hello.gate");
    const commit = await repos.create("hello", gatedRepo(count, gate, "hello v1"));
    await repos.tag("hello", "v1.0.0", commit);
    const path = `${proxy.url}/example.test/acme/hello/linux/arm64/v1.0.0`;

    const post = await fetch(path, { method: "POST" });
    expect(post.status).toBe(202);
    const started = (await post.json()) as { build_id: string; status_url: string; logs_url: string };
    expect(started.build_id).toMatch(/^[0-9a-f]{16}$/);
    expect(started.status_url).toBe(`${proxy.url}/builds/${started.build_id}`);
    expect(started.logs_url).toBe(`${proxy.url}/builds/${started.build_id}/logs`);

    // The build is waiting on the gate: its first lines are already readable.
    const logs = await fetch(started.logs_url);
    expect(logs.status).toBe(200);
    expect(logs.headers.get("content-type")).toMatch(/^text\/plain/);
    const { text: early, reader } = await readUntil(logs, /building linux\/arm64 goos=linux goarch=arm64/);
    expect(early).toContain(`checking out ${commit}`);

    const waiting = await fetch(path);
    expect(waiting.status).toBe(202);
    expect(waiting.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(((await waiting.json()) as { build_id: string }).build_id).toBe(started.build_id);
    const status = (await (await fetch(started.status_url)).json()) as Record<string, unknown>;
    expect(status).toMatchObject({ id: started.build_id, state: "running", commit, coordinates: { remote: "example.test", owner: "acme", repo: "hello", os: "linux", arch: "arm64", version: "v1.0.0" } });

    writeFileSync(gate, "");
    const rest = await readRest(reader);
    expect(early + rest).toMatch(/artifact app, \d+ bytes, sha256 [0-9a-f]{64}/);
    const done = await waitBuild(proxy.url, started.build_id);
    expect(done.state).toBe("succeeded");

    const got = await fetch(path);
    expect(got.status).toBe(200);
    const bytes = Buffer.from(await got.arrayBuffer());
    expect(bytes.toString()).toBe("hello v1 linux/arm64");
    expect(got.headers.get("x-togo-sha256")).toBe(sha256(bytes));
    expect(got.headers.get("etag")).toBe(`"${sha256(bytes)}"`);
    expect(got.headers.get("content-disposition")).toBe('attachment; filename="app"');
    expect(done.sha256).toBe(sha256(bytes));

    // Built: a POST answers 200 with where it is, and builds nothing.
    const again = await fetch(path, { method: "POST" });
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ sha256: sha256(bytes), size: bytes.length, url: path });
    const unchanged = await fetch(path, { headers: { "If-None-Match": `"${sha256(bytes)}"` } });
    expect(unchanged.status).toBe(304);
    // A resumed download: one byte range (206), the tail, an If-Range naming other bytes (200), past the end (416).
    expect(got.headers.get("accept-ranges")).toBe("bytes");
    const part = await fetch(path, { headers: { Range: "bytes=6-7" } });
    expect([part.status, part.headers.get("content-range"), await part.text()]).toEqual([206, `bytes 6-7/${bytes.length}`, "v1"]);
    const tail = await fetch(path, { headers: { Range: "bytes=-5" } });
    expect([tail.status, await tail.text()]).toEqual([206, "arm64"]);
    const from = await fetch(path, { headers: { Range: "bytes=9-" } });
    expect([from.status, await from.text()]).toEqual([206, "linux/arm64"]);
    const stale = await fetch(path, { headers: { Range: "bytes=0-1", "If-Range": '"0000"' } });
    expect([stale.status, await stale.text()]).toEqual([200, "hello v1 linux/arm64"]);
    const past = await fetch(path, { headers: { Range: `bytes=${bytes.length}-` } });
    expect([past.status, past.headers.get("content-range")]).toEqual([416, `bytes */${bytes.length}`]);
    expect(runs(count)).toBe(1);
    // The log of a finished build is still there, whole.
    expect(await (await fetch(started.logs_url)).text()).toBe(early + rest);
  });

  test("a failing build → 424 naming its logs, which are kept (and listed by togo artifacts ls --builds)", async () => {
    await repos.create("broken", { "togo.yaml": "app: demo\ndeploy:\n  build_cmd: \"echo compiling the broken thing; echo no such compiler >&2; exit 3\"\n  binary: out/app\n" });
    const path = `${proxy.url}/example.test/acme/broken/linux/amd64/main`;
    const post = await fetch(path, { method: "POST" });
    expect(post.status).toBe(202);
    const { build_id, logs_url } = (await post.json()) as { build_id: string; logs_url: string };
    const done = await waitBuild(proxy.url, build_id);
    expect(done).toMatchObject({ state: "failed", error: "build_cmd failed (exit 3)" });

    const got = await fetch(path);
    expect(got.status).toBe(424);
    const body = (await got.json()) as { error: string; build_id: string; logs_url: string };
    expect(body.build_id).toBe(build_id);
    expect(body.error).toContain(logs_url);
    const log = await (await fetch(logs_url)).text();
    expect(log).toContain("compiling the broken thing");
    expect(log).toContain("no such compiler");
    expect(log).toContain("build failed: build_cmd failed (exit 3)");

    const ls = await togo(["artifacts", "ls", "--builds", "--json", "--store", store], { cwd: root });
    expect(ls.stderr).toBe("");
    const records = JSON.parse(ls.stdout) as { id: string; state: string; error?: string }[];
    expect(records.find((r) => r.id === build_id)).toMatchObject({ state: "failed", error: "build_cmd failed (exit 3)" });
  });

  test("unknown → 404: a version the repository lacks, a repository that does not exist, a build id never made", async () => {
    const tag = await fetch(`${proxy.url}/example.test/acme/hello/linux/amd64/v9.9.9`);
    expect(tag.status).toBe(404);
    expect(((await tag.json()) as { error: string }).error).toContain('no tag or branch "v9.9.9"');
    const postTag = await fetch(`${proxy.url}/example.test/acme/hello/linux/amd64/v9.9.9`, { method: "POST" });
    expect(postTag.status).toBe(404);
    const repo = await fetch(`${proxy.url}/example.test/acme/nothere/linux/amd64/v1`, { method: "POST" });
    expect(repo.status).toBe(404);
    const text = await repo.text();
    expect(text).toContain("could not be read");
    expect(text).not.toContain(root); // the clone URL stays on the server
    // A resolvable version never built: 404 too, with how to get it built.
    const never = await fetch(`${proxy.url}/example.test/acme/hello/darwin/amd64/v1.0.0`);
    expect(never.status).toBe(404);
    expect(((await never.json()) as { error: string }).error).toContain("POST the same path");
    expect((await fetch(`${proxy.url}/builds/0123456789abcdef`)).status).toBe(404);
    expect((await fetch(`${proxy.url}/builds/0123456789abcdef/logs`)).status).toBe(404);
    expect((await fetch(`${proxy.url}/builds/..%2F..%2Fetc`)).status).toBe(404);
    const bad = await fetch(`${proxy.url}/example.test/acme/hello/linux/amd64/..%2F..`, { method: "POST" });
    expect(bad.status).toBe(400);
  });
});

describe("single flight and keys", () => {
  test("50 concurrent identical POSTs → one build (the builder ran once), all told the same build id", async () => {
    const count = join(root, "busy.count");
    const gate = join(root, "busy.gate");
    await repos.create("busy", gatedRepo(count, gate, "busy"));
    const path = `${proxy.url}/example.test/acme/busy/linux/amd64/main`;
    const answers = await Promise.all(Array.from({ length: 50 }, () => fetch(path, { method: "POST" }).then(async (r) => ({ status: r.status, body: (await r.json()) as { build_id: string } }))));
    expect(answers.map((a) => a.status)).toEqual(Array(50).fill(202));
    const ids = new Set(answers.map((a) => a.body.build_id));
    expect(ids.size).toBe(1);
    writeFileSync(gate, "");
    const done = await waitBuild(proxy.url, [...ids][0]);
    expect(done.state).toBe("succeeded");
    expect(runs(count)).toBe(1);
    // And 50 more now: all 200, still one run.
    const after = await Promise.all(Array.from({ length: 50 }, () => fetch(path, { method: "POST" }).then((r) => r.status)));
    expect(after).toEqual(Array(50).fill(200));
    expect(runs(count)).toBe(1);
  });

  test("two tags on one commit build once; a moved tag builds the new commit", async () => {
    const count = join(root, "tags.count");
    const a = await repos.create("tags", gatedRepo(count, undefined, "commit A"));
    await repos.tag("tags", "v1", a);
    await repos.tag("tags", "stable", a);
    const v1 = `${proxy.url}/example.test/acme/tags/linux/amd64/v1`;
    const stable = `${proxy.url}/example.test/acme/tags/linux/amd64/stable`;

    const first = await fetch(v1, { method: "POST" });
    expect(first.status).toBe(202);
    await waitBuild(proxy.url, ((await first.json()) as { build_id: string }).build_id);
    const same = await fetch(stable, { method: "POST" });
    expect(same.status).toBe(200);
    expect(runs(count)).toBe(1);
    const viaStable = await fetch(stable);
    expect(viaStable.headers.get("x-togo-commit")).toBe(a);
    expect(await viaStable.text()).toBe("commit A linux/amd64");

    const b = await repos.commit("tags", { "content.txt": "commit B" });
    // A GET just before the move: the resolution it makes may be reused by GETs, never by a POST.
    expect((await fetch(v1)).headers.get("x-togo-commit")).toBe(a);
    await repos.tag("tags", "v1", b);
    const moved = await fetch(v1, { method: "POST" });
    expect(moved.status).toBe(202);
    const rec = await waitBuild(proxy.url, ((await moved.json()) as { build_id: string }).build_id);
    expect(rec.commit).toBe(b);
    expect(runs(count)).toBe(2);
    const got = await fetch(v1);
    expect(got.status).toBe(200);
    expect(got.headers.get("x-togo-commit")).toBe(b);
    expect(await got.text()).toBe("commit B linux/amd64");
    // stable still names A, whose artifact is still there.
    expect(await (await fetch(stable)).text()).toBe("commit A linux/amd64");
    // A full commit id is a version too, and the same key.
    expect((await fetch(`${proxy.url}/example.test/acme/tags/linux/amd64/${a}`, { method: "POST" })).status).toBe(200);
    expect(runs(count)).toBe(2);

    const ls = await togo(["artifacts", "ls", "--json", "--store", store], { cwd: root });
    const metas = JSON.parse(ls.stdout) as { commit: string; coordinates: { repo: string } }[];
    expect(metas.filter((m) => m.coordinates.repo === "tags").map((m) => m.commit).sort()).toEqual([a, b].sort());
  });
});

describe("how a repository is built", () => {
  test("a build that runs past --build-timeout is stopped (its process group killed) and failed, saying so", async () => {
    const count = join(root, "slow.count");
    await repos.create("slow", gatedRepo(count, join(root, "slow.gate-never"), "slow"));
    const root3 = tempDir("togo-proxy-timeout-");
    const p = await startProxy(["--store", join(root3, "store"), "--git-url", repos.gitUrl, "--work-dir", join(root3, "work"), "--build-timeout", "8"], { cwd: root3 });
    try {
      const { build_id } = (await (await fetch(`${p.url}/example.test/acme/slow/linux/amd64/main`, { method: "POST" })).json()) as { build_id: string };
      const record = JSON.parse(await waitForRecord(join(root3, "store", "builds", `${build_id}.json`), (r) => r.runner?.build_pgid !== undefined)) as { runner: { build_pgid: number } };
      expect(await waitBuild(p.url, build_id)).toMatchObject({ state: "failed", error: "timed out after 8 s (--build-timeout)" });
      expect(runningState(record.runner.build_pgid)).not.toMatch(/^[RSD]$/);
      expect((await fetch(`${p.url}/example.test/acme/slow/linux/amd64/main`)).status).toBe(424);
    } finally {
      await p.stop();
    }
  });

  test("no togo.yaml: its Makefile runs, with GOOS/GOARCH; what it made (untracked files) is the artifact, tarred; the server's environment never reaches the build", async () => {
    await repos.create("maker", {
      Makefile: "all:\n\tmkdir -p bin\n\tprintf '%s/%s' \"$$GOOS\" \"$$GOARCH\" > bin/tool\n\techo secret=$${PROXY_SECRET:-unset} home=$$HOME\n",
      "README.md": "tracked, so not part of the artifact\n",
    });
    const root2 = tempDir("togo-proxy-make-");
    // A `go` the default Makefile can call (no Go toolchain on this machine): it writes dist/<name>.
    const fakeBin = join(root2, "bin");
    writeFiles(fakeBin, { go: "#!/bin/sh\nmkdir -p dist && printf 'go %s for %s/%s cgo=%s' \"$*\" \"$GOOS\" \"$GOARCH\" \"$CGO_ENABLED\" > dist/server\n" });
    chmodSync(join(fakeBin, "go"), 0o755);
    await repos.create("gomod", { "go.mod": "module example.test/acme/gomod\n", "main.go": "package main\nfunc main() {}\n" });
    const p = await startProxy(["--store", join(root2, "store"), "--git-url", repos.gitUrl, "--work-dir", join(root2, "work")], { cwd: root2, env: { PROXY_SECRET: "hunter2-do-not-leak", PATH: `${fakeBin}:${process.env.PATH}` } });
    try {
      const make = `${p.url}/example.test/acme/maker/darwin/arm64/main`;
      const { build_id } = (await (await fetch(make, { method: "POST" })).json()) as { build_id: string };
      expect(await waitBuild(p.url, build_id)).toMatchObject({ state: "succeeded" });
      const log = await (await fetch(`${p.url}/builds/${build_id}/logs`)).text();
      expect(log).toContain("secret=unset");
      expect(log).not.toContain("hunter2");
      const got = await fetch(make);
      expect(got.headers.get("content-disposition")).toBe('attachment; filename="maker_darwin_arm64.tar.gz"');
      const tgz = join(root2, "maker.tar.gz");
      writeFileSync(tgz, Buffer.from(await got.arrayBuffer()));
      const listing = await execa("tar", ["-tzf", tgz]);
      expect(listing.stdout.split("\n")).toEqual(["bin/tool"]);
      expect((await execa("tar", ["-xzOf", tgz, "bin/tool"])).stdout).toBe("darwin/arm64");

      const gomod = `${p.url}/example.test/acme/gomod/linux/riscv64/main`;
      const second = (await (await fetch(gomod, { method: "POST" })).json()) as { build_id: string };
      expect(await waitBuild(p.url, second.build_id)).toMatchObject({ state: "succeeded" });
      expect(await (await fetch(`${p.url}/builds/${second.build_id}/logs`)).text()).toContain("make (togo's default Makefile)");
      const tgz2 = join(root2, "gomod.tar.gz");
      writeFileSync(tgz2, Buffer.from(await (await fetch(gomod)).arrayBuffer()));
      expect((await execa("tar", ["-tzf", tgz2])).stdout.split("\n")).toEqual(["dist/server"]);
      expect((await execa("tar", ["-xzOf", tgz2, "dist/server"])).stdout).toBe("go build -trimpath -o dist/ ./... for linux/riscv64 cgo=0");
    } finally {
      await p.stop();
    }
  });
});

describe("git over the network", () => {
  test("repositories served by git daemon on loopback (git://): a tag resolves, the commit is fetched by id and built", async () => {
    const count = join(root, "daemon.count");
    const commit = await repos.create("daemon", gatedRepo(count, undefined, "over git://"));
    await repos.tag("daemon", "v2.0.0", commit);
    const port = await freePort();
    const pidFile = join(root, "git-daemon.pid");
    const daemon = spawn("git", ["daemon", "--reuseaddr", `--base-path=${join(root, "git")}`, "--export-all", `--port=${port}`, "--listen=127.0.0.1", `--pid-file=${pidFile}`], { stdio: ["ignore", "ignore", "pipe"] });
    let daemonErr = "";
    daemon.stderr.on("data", (c: Buffer) => (daemonErr += c.toString()));
    const root4 = tempDir("togo-proxy-gitd-");
    let p: Proxy | undefined;
    try {
      // Ready when it answers an ls-remote.
      for (let i = 0; (await execa("git", ["ls-remote", `git://127.0.0.1:${port}/example.test/acme/daemon.git`], { reject: false })).exitCode !== 0; i++) {
        if (i > 200) throw new Error(`git daemon did not start:\n${daemonErr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      p = await startProxy(["--store", join(root4, "store"), "--git-url", `git://127.0.0.1:${port}/{remote}/{owner}/{repo}.git`, "--work-dir", join(root4, "work")], { cwd: root4 });
      const path = `${p.url}/example.test/acme/daemon/freebsd/amd64/v2.0.0`;
      const { build_id } = (await (await fetch(path, { method: "POST" })).json()) as { build_id: string };
      expect(await waitBuild(p.url, build_id)).toMatchObject({ state: "succeeded", commit });
      const got = await fetch(path);
      expect(got.headers.get("x-togo-commit")).toBe(commit);
      expect(await got.text()).toBe("over git:// freebsd/amd64");
      expect(await (await fetch(`${p.url}/builds/${build_id}/logs`)).text()).not.toContain("fetching every branch and tag");
    } finally {
      await p?.stop();
      // `git daemon` runs git-daemon as its child: stop that one by its pid file, then the wrapper.
      if (existsSync(pidFile)) process.kill(Number(readFileSync(pidFile, "utf8").trim()), "SIGTERM");
      daemon.kill("SIGTERM");
    }
  });
});

describe("the token", () => {
  test("with a token configured: no token or a wrong one → 401, the right one passes; beyond loopback without a token the server refuses to start (exit 2)", async () => {
    const tokenFile = join(root, "token");
    const token = "0123456789abcdef0123456789abcdef";
    writeFileSync(tokenFile, `${token}\n`);
    const guarded = await startProxy(["--store", join(root, "store-token"), "--git-url", repos.gitUrl, "--token-file", tokenFile, "--work-dir", join(root, "work-t")], { cwd: root });
    try {
      const path = `${guarded.url}/example.test/acme/hello/linux/amd64/v1.0.0`;
      const none = await fetch(path);
      expect(none.status).toBe(401);
      expect(none.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect((await fetch(path, { method: "POST" })).status).toBe(401);
      expect((await fetch(path, { headers: { Authorization: "Bearer wrong-token-wrong-token" } })).status).toBe(401);
      expect((await fetch(`${guarded.url}/builds/0123456789abcdef`)).status).toBe(401);
      // The refused POST started nothing.
      expect(existsSync(join(root, "store-token", "builds")) ? readdirSync(join(root, "store-token", "builds")) : []).toEqual([]);
      const ok = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
      expect(ok.status).toBe(404); // through the gate: this store has never built it
      expect(guarded.output()).not.toContain(token);
    } finally {
      await guarded.stop();
    }
    const open = await togo(["artifacts", "serve", "--listen", "0.0.0.0:0", "--store", join(root, "store-open")], { cwd: root, timeout: 60_000 });
    expect(open.exitCode).toBe(2);
    expect(open.stderr).toContain("--token-file");
    expect(existsSync(join(root, "store-open"))).toBe(false);
    // Bad usage is refused before anything starts (exit 2, naming the flag).
    for (const [args, says] of [
      [["--jobs", "0"], "--jobs"],
      [["--jobs", "two"], "--jobs"],
      [["--isolation", "podman"], "--isolation"],
      [["--isolation", "docker"], "--image"],
      [["--listen", "127.0.0.1:99999"], "--listen"],
      [["--store", "s3://Bad_Bucket/x"], "s3://bucket/prefix"],
      [["--token-file", join(root, "no-such-token")], "--token-file"],
    ] as [string[], string][]) {
      const base = [...(args.includes("--listen") ? [] : ["--listen", "127.0.0.1:0"]), ...(args.includes("--store") ? [] : ["--store", join(root, "store-bad")])];
      const r = await togo(["artifacts", "serve", ...base, ...args], { cwd: root, timeout: 60_000 });
      expect({ args, exitCode: r.exitCode, says: r.stderr.includes(says) }).toEqual({ args, exitCode: 2, says: true });
    }
  });
});

describe("a restart", () => {
  test("SIGKILL mid-build: the next server re-runs the build (its run 2) and the one still queued, stops the dead run's build command, and nothing half-written is ever served", async () => {
    const count = join(root, "crash.count");
    const gate = join(root, "crash.gate");
    const crashStore = join(root, "store-crash");
    await repos.create("crash", gatedRepo(count, gate, "survivor"));
    await repos.create("later", gatedRepo(join(root, "later.count"), undefined, "queued"));
    // One job: the second build waits in the queue while the first runs.
    const args = ["--store", crashStore, "--git-url", repos.gitUrl, "--work-dir", join(root, "work-c"), "--jobs", "1"];
    const first = await startProxy(args, { cwd: root });
    const path = (url: string) => `${url}/example.test/acme/crash/linux/amd64/main`;
    const later = (url: string) => `${url}/example.test/acme/later/linux/amd64/main`;
    let build_id: string;
    let queued_id: string;
    let pgid: number;
    try {
      const post = await fetch(path(first.url), { method: "POST" });
      build_id = ((await post.json()) as { build_id: string }).build_id;
      queued_id = ((await (await fetch(later(first.url), { method: "POST" })).json()) as { build_id: string }).build_id;
      expect(((await (await fetch(`${first.url}/builds/${queued_id}`)).json()) as { state: string }).state).toBe("queued");
      await readUntil(await fetch(`${first.url}/builds/${build_id}/logs`), /building linux\/amd64/);
      // Its build command is running; its process group is in the record (written just after it started).
      const recordFile = join(crashStore, "builds", `${build_id}.json`);
      const record = () => JSON.parse(readFileSync(recordFile, "utf8")) as { state: string; runner: { build_pgid?: number } };
      while (record().runner.build_pgid === undefined) await new Promise((r) => setTimeout(r, 50));
      // And the log so far is in the store (appended a moment after it is streamed), for run 2 to continue.
      const logFile = join(crashStore, "builds", `${build_id}.log`);
      while (!(existsSync(logFile) && readFileSync(logFile, "utf8").includes("building linux/amd64"))) await new Promise((r) => setTimeout(r, 50));
      expect(record().state).toBe("running");
      pgid = record().runner.build_pgid as number;
      expect(runningState(pgid)).toMatch(/^[RSD]$/);
    } finally {
      await first.stop("SIGKILL");
    }
    expect(existsSync(join(crashStore, "artifacts"))).toBe(false);

    const second = await startProxy(args, { cwd: root });
    let stopped: number | null = null;
    try {
      await second.waitFor(new RegExp(`build ${build_id} taken over`));
      // The dead server's build command went with the take-over (dead, or a zombie not yet reaped; on a
      // busy machine the SIGKILL may take a moment to land, hence the bounded poll).
      for (let i = 0; i < 200 && /^[RSD]$/.test(runningState(pgid)); i++) await new Promise((r) => setTimeout(r, 50));
      expect(runningState(pgid)).not.toMatch(/^[RSD]$/);
      await second.waitFor(new RegExp(`build ${build_id} running \\(run 2\\)`));
      const waiting = await fetch(path(second.url));
      expect(waiting.status).toBe(202);
      await readUntil(await fetch(`${second.url}/builds/${build_id}/logs`), /building linux\/amd64[\s\S]*run 2 of this build[\s\S]*building linux\/amd64/);
      writeFileSync(gate, "");
      const done = await waitBuild(second.url, build_id);
      expect(done).toMatchObject({ state: "succeeded", attempt: 2 });
      expect(runs(count)).toBe(2);
      const got = await fetch(path(second.url));
      const bytes = Buffer.from(await got.arrayBuffer());
      expect(bytes.toString()).toBe("survivor linux/amd64");
      expect(got.headers.get("x-togo-sha256")).toBe(sha256(bytes));
      // Neither the interrupted run's checkout nor the finished one is left in the work root.
      expect(readdirSync(join(root, "work-c")).filter((n) => n.startsWith(build_id))).toEqual([]);
      // The build that was still queued when the server died was not lost either.
      expect(await waitBuild(second.url, queued_id)).toMatchObject({ state: "succeeded", attempt: 1 });
      expect(await (await fetch(later(second.url))).text()).toBe("queued linux/amd64");
      expect(runs(join(root, "later.count"))).toBe(1);
      // Both builds done, nothing is being written: no temp file is left (the dead server's swept).
      expect(readdirSync(join(crashStore, ".tmp"))).toEqual([]);
      // And the queue the next server would read is empty.
      expect(readdirSync(join(crashStore, "queue"))).toEqual([]);
    } finally {
      stopped = await second.stop();
      // Should the take-over have failed to stop it, the dead server's build command goes here.
      try {
        process.kill(-pgid, "SIGKILL");
      } catch {
        // gone, as it should be
      }
    }
    // SIGTERM stops it cleanly, and a stopped server leaves no empty work root behind.
    expect(stopped).toBe(0);
    expect(existsSync(join(root, "work-c"))).toBe(false);
  });
});
