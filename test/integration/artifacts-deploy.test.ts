// deploy.artifact: store and togo build, end to end: a real build proxy (`togo artifacts serve`) on
// loopback with a token, the project's git repository pushed to a bare repository it clones
// through artifacts.git_url (file://), and a real sshd as the host. The deploy ships the proxy's
// build of the current commit and runs no build_cmd here (the build_cmd leaves a marker where it
// runs: never in the project); the bytes are checked by the client (a tampering front between it
// and the proxy is refused) and by the host (bytes changed after the download are refused there).
// Then the errors a user meets: no token, a proxy that is not there, uncommitted changes, a
// failing build (its logs where the message says); and `togo build` via the proxy and into a
// directory store without one, which a deploy then ships from.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "@jest/globals";
import { execa } from "execa";
import { startProxy, type Proxy } from "../helpers/artifacts.js";
import { startS3 } from "../helpers/s3.js";
import { cleanupTempDirs, EXAMPLE, freePort, tempDir, togo, type CliResult } from "../helpers/index.js";
import { startSshd, type Sshd } from "../helpers/sshd.js";

let sshd: Sshd;
let root: string;
let proj: string;
let store: string;
let appPort: number;
let appDir: string;
let proxyPort: number;
let proxyUrl: string;
let proxy: Proxy;
let tokenFile: string;
const TOKEN = "0123456789abcdef0123456789abcdef";

const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

/** The project's togo.yaml: the proxy builds server.js from app.js with build_cmd; it leaves BUILT_HERE where it runs. */
function yaml(o: { buildCmd?: string; artifacts?: string; hooks?: string } = {}): string {
  // No "\${" in it: togo.yaml would read that as a variable (the proxy's builder reads build_cmd as it is).
  const buildCmd = o.buildCmd ?? `sed "s/from .{version}/& built for $TOGO_OS-$TOGO_ARCH/" app.js > server.js && echo built > BUILT_HERE`;
  return `app: hello
deploy:
${sshd.deployKeys}
  build_cmd: '${buildCmd.replace(/'/g, "''")}'
  binary: server.js
  run: node server.js
  app_port: ${appPort}
  app_dir: ~/apps/hello
  healthcheck: { path: /up, timeout: 15, interval: 0.1, settle: 0.2 }
  artifact: store
artifacts:
${o.artifacts ?? `  server: ${proxyUrl}\n  token_file: ${tokenFile}\n  git_url: "file://${root}/git/{remote}/{owner}/{repo}.git"`}
${o.hooks ?? ""}`;
}

async function git(args: string[], cwd = proj): Promise<string> {
  const r = await execa("git", args, { cwd, reject: false, env: { GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@t", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@t" } });
  if (r.exitCode !== 0) throw new Error(`git ${args.join(" ")} exited ${r.exitCode}\n${r.stderr}`);
  return String(r.stdout).trim();
}

/** Commits every tracked change (and new files) and pushes it; the commit id. */
async function commitAndPush(message: string): Promise<string> {
  await git(["add", "-A"]);
  await git(["commit", "-q", "-m", message]);
  await git(["push", "-q", "origin", "HEAD:main"]);
  return git(["rev-parse", "HEAD"]);
}

function ok(r: CliResult): Record<string, unknown> {
  if (r.exitCode !== 0) throw new Error(`togo exited ${r.exitCode}\n${r.stderr}\n--- proxy ---\n${proxy.output().slice(-3000)}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

const deploy = (args: string[] = [], env?: Record<string, string>) => togo(["deploy", "--json", ...args], { cwd: proj, env, timeout: 180_000 });
const current = () => readFileSync(join(appDir, ".versions"), "utf8").split("\n")[0];
const served = async () => (await fetch(`http://127.0.0.1:${appPort}/`)).text();
/** Build records in the proxy's store, by state. */
function builds(dir = store): { state: string; commit: string; id: string }[] {
  const d = join(dir, "builds");
  if (!existsSync(d)) return [];
  return readdirSync(d)
    .filter((n) => n.endsWith(".json"))
    .map((n) => JSON.parse(readFileSync(join(d, n), "utf8")) as { state: string; commit: string; id: string });
}

/** A front that passes everything to the proxy but flips one byte of every artifact it serves. */
function tamperingFront(port: number): Promise<Server> {
  const server = createServer((req, res) => {
    const up = request({ host: "127.0.0.1", port: proxyPort, path: req.url, method: req.method, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      let first = true;
      ur.on("data", (chunk: Buffer) => {
        if (first && ur.headers["x-togo-sha256"]) {
          chunk = Buffer.from(chunk);
          chunk[0] ^= 0x20;
        }
        first = false;
        res.write(chunk);
      });
      ur.on("end", () => res.end());
    });
    req.pipe(up);
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}

beforeAll(async () => {
  sshd = await startSshd();
  appPort = await freePort();
  appDir = join(sshd.home, "apps", "hello");
  root = tempDir("togo-artdeploy-");
  store = join(root, "store");
  tokenFile = join(root, "token");
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });

  proxy = await startProxy(["--store", store, "--token-file", tokenFile, "--git-url", `file://${root}/git/{remote}/{owner}/{repo}.git`, "--jobs", "2"], { cwd: root });
  proxyUrl = proxy.url;
  proxyPort = Number(new URL(proxy.url).port);

  // The bare repository the proxy clones from, and the project pushed to it.
  await execa("git", ["init", "-q", "--bare", join(root, "git", "example.com", "acme", "hello.git")]);
  proj = join(root, "proj");
  await execa("git", ["init", "-q", "-b", "main", proj]);
  writeFileSync(join(proj, "app.js"), readFileSync(join(EXAMPLE, "server.js"), "utf8"));
  writeFileSync(join(proj, ".gitignore"), "server.js\nBUILT_HERE\n.togo/\n*.local.yaml\n");
  writeFileSync(join(proj, "togo.yaml"), yaml());
  await git(["remote", "add", "origin", `file://${root}/git/example.com/acme/hello.git`]);
  await commitAndPush("hello");
}, 120_000);

afterAll(async () => {
  await proxy?.stop();
  await sshd?.stop();
  cleanupTempDirs();
});

test("deploy.artifact: store ships the proxy's build of the current commit; no build_cmd runs here; the host has the store's bytes", async () => {
  const commit = await git(["rev-parse", "HEAD"]);
  const r = await deploy(["--version", "1"]);
  const out = ok(r);
  const raw = out.raw as { sha256: string; version: string; uploaded: boolean; store: unknown };
  expect(raw.store).toEqual({ from: proxyUrl, remote: "example.com", owner: "acme", repo: "hello", commit, os: "linux", arch: "amd64" });
  // Built by the proxy (its build_cmd saw TOGO_OS/TOGO_ARCH), and nothing of the build here.
  expect(await served()).toBe("hello from 1 built for linux-amd64\n");
  expect(existsSync(join(proj, "server.js"))).toBe(false);
  expect(existsSync(join(proj, "BUILT_HERE"))).toBe(false);
  // The build's log came through while it ran.
  expect(r.stderr).toContain("build | ");
  expect(r.stderr).toMatch(/artifact: downloaded server\.js, \d+ bytes, sha256 [0-9a-f]{64} checked/);
  // One build, of this commit; the release on the host is that artifact byte for byte.
  expect(builds().map((b) => [b.state, b.commit])).toEqual([["succeeded", commit]]);
  const shipped = readFileSync(join(appDir, "v1", "server.js"));
  expect(sha256(shipped)).toBe(raw.sha256);
  const metaDir = join(store, "artifacts", "example.com", "acme", "hello", commit);
  const [variant] = readdirSync(metaDir);
  expect(JSON.parse(readFileSync(join(metaDir, variant, "meta.json"), "utf8")).sha256).toBe(raw.sha256);
  expect(current()).toBe("1");

  // Again under another version: no new build, nothing downloaded or uploaded again.
  const again = await deploy(["--version", "2"]);
  const raw2 = ok(again).raw as { sha256: string; uploaded: boolean };
  expect(raw2).toMatchObject({ sha256: raw.sha256, uploaded: false });
  expect(again.stderr).toContain("fetched before, its bytes checked again");
  expect(builds()).toHaveLength(1);
  expect(await served()).toBe("hello from 2 built for linux-amd64\n");
}, 300_000);

test("a download whose bytes are not what the proxy vouched for is refused; nothing reaches the host", async () => {
  writeFileSync(join(proj, "app.js"), readFileSync(join(proj, "app.js"), "utf8").replace('"hello"', '"howdy"'));
  await commitAndPush("howdy");
  const frontPort = await freePort();
  const front = await tamperingFront(frontPort);
  try {
    writeFileSync(join(proj, "tamper.local.yaml"), yaml({ artifacts: `  server: http://127.0.0.1:${frontPort}\n  token_file: ${tokenFile}` }));
    const r = await deploy(["-c", "tamper.local.yaml", "--version", "3"]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/does not match its sha256 \(the proxy says [0-9a-f]{64}, the \d+ bytes received hash to [0-9a-f]{64}\); it was refused and nothing was kept/);
    expect(current()).toBe("2");
    expect(existsSync(join(appDir, "v3"))).toBe(false);
    // Nothing half-downloaded is left to be taken later.
    const downloads = join(proj, ".togo", "downloads");
    const left = readdirSync(downloads).flatMap((d) => readdirSync(join(downloads, d)));
    expect(left).toEqual(["server.js"]); // the first test's, checked
  } finally {
    await new Promise((r) => front.close(r));
  }
}, 300_000);

test("bytes changed after the download are refused by the host itself (its own sha256 check), and removed there", async () => {
  // pre_deploy runs after the build stage fetched and checked the artifact, before the upload.
  const hook = `hooks:\n  pre_deploy: 'for f in .togo/downloads/*/server.js; do printf "// changed\\n" >> "$f"; done'\n`;
  writeFileSync(join(proj, "hook.local.yaml"), yaml({ hooks: hook }));
  const r = await deploy(["-c", "hook.local.yaml", "--version", "3"]);
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toMatch(/the uploaded artifact hashes to [0-9a-f]{64}, not [0-9a-f]{64} \(the artifact store's\): refused and removed/);
  expect(current()).toBe("2");
  expect(existsSync(join(appDir, "v3"))).toBe(false);
  expect(readdirSync(join(appDir, ".uploads")).filter((n) => n.includes("partial"))).toEqual([]);

  // The changed local copy is not trusted later either: the next deploy fetches the bytes again.
  const again = await deploy(["--version", "3"]);
  ok(again);
  expect(again.stderr).toMatch(/artifact: downloaded server\.js/);
  expect(await served()).toBe("howdy from 3 built for linux-amd64\n");
}, 300_000);

test("no token: 401 becomes what to set (exit 2); a proxy that is not there: unreachable (exit 1); nothing changes on the host", async () => {
  writeFileSync(join(proj, "notoken.local.yaml"), yaml({ artifacts: `  server: ${proxyUrl}` }));
  const noToken = await deploy(["-c", "notoken.local.yaml", "--version", "4"]);
  expect(noToken.exitCode).toBe(2);
  expect(noToken.stderr).toContain(`the build proxy at ${proxyUrl} wants a token (401); set artifacts.token_file`);

  const deadPort = await freePort();
  writeFileSync(join(proj, "dead.local.yaml"), yaml({ artifacts: `  server: http://127.0.0.1:${deadPort}\n  token_file: ${tokenFile}` }));
  const dead = await deploy(["-c", "dead.local.yaml", "--version", "4"]);
  expect(dead.exitCode).toBe(1);
  expect(dead.stderr).toContain(`the build proxy at http://127.0.0.1:${deadPort} is unreachable (ECONNREFUSED)`);
  expect(dead.stderr).toContain("start it (togo artifacts serve) or fix artifacts.server");
  expect(current()).toBe("3");
}, 300_000);

test("uncommitted changes to tracked files stop the deploy before any build is asked for (exit 2)", async () => {
  const before = builds().length;
  writeFileSync(join(proj, "app.js"), `${readFileSync(join(proj, "app.js"), "utf8")}// wip\n`);
  try {
    const r = await deploy(["--version", "4"]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("1 tracked file has uncommitted changes (app.js): commit and push them (the proxy builds commits, not this working tree), or stash them");
    expect(builds()).toHaveLength(before);
    expect(current()).toBe("3");
  } finally {
    await git(["checkout", "-q", "app.js"]);
  }
}, 120_000);

test("a failing build: exit 1 with the proxy's error and where its logs are; the logs are there", async () => {
  writeFileSync(join(proj, "togo.yaml"), yaml({ buildCmd: "echo compiling the app; echo broken >&2; exit 3" }));
  const commit = await commitAndPush("a broken build");
  const r = await deploy(["--version", "4"]);
  expect(r.exitCode).toBe(1);
  const m = /failed on http:\/\/127\.0\.0\.1:\d+: (.*); its logs: (http:\/\/127\.0\.0\.1:\d+\/builds\/([0-9a-f]{16})\/logs)/.exec(r.stderr);
  expect(m).not.toBeNull();
  expect(r.stderr).toContain("build | compiling the app");
  const logs = await (await fetch(m![2], { headers: { authorization: `Bearer ${TOKEN}` } })).text();
  expect(logs).toContain("compiling the app");
  expect(logs).toContain("broken");
  expect(builds().find((b) => b.id === m![3])).toMatchObject({ state: "failed", commit });
  expect(current()).toBe("3");
  // The same commit built here by togo build (no proxy): the failure names its log, which is kept with the build's record.
  const failing = join(root, "failing-store");
  writeFileSync(join(proj, "failing.local.yaml"), yaml({ artifacts: `  store: ${failing}` }));
  const here = await togo(["build", "-c", "failing.local.yaml"], { cwd: proj, timeout: 180_000 });
  expect(here.exitCode).toBe(1);
  const log = /failed: build_cmd failed \(exit 3\); its log: (\S+\.log)/.exec(here.stderr)?.[1];
  expect(log).toBeDefined();
  expect(readFileSync(log!, "utf8")).toContain("compiling the app");
  expect(builds(failing).map((b) => [b.state, b.commit])).toEqual([["failed", commit]]);
  // Back to a working build for what follows.
  writeFileSync(join(proj, "togo.yaml"), yaml());
  await commitAndPush("fixed");
}, 300_000);

test("togo build via artifacts.server: the current commit for another arch is built there; asked again, it is there already", async () => {
  const commit = await git(["rev-parse", "HEAD"]);
  const first = ok(await togo(["build", "--arch", "arm64", "--json"], { cwd: proj, timeout: 180_000 }));
  expect(first).toMatchObject({ coordinates: { remote: "example.com", owner: "acme", repo: "hello", os: "linux", arch: "arm64", version: commit }, server: proxyUrl, built: true });
  expect(first.sha256).toMatch(/^[0-9a-f]{64}$/);
  expect(existsSync(join(proj, "BUILT_HERE"))).toBe(false);
  const second = ok(await togo(["build", "--arch", "arm64", "--json"], { cwd: proj, timeout: 180_000 }));
  expect(second).toMatchObject({ sha256: first.sha256, built: false });
}, 300_000);

test("togo build into a directory store without a proxy, and a deploy that ships from that store", async () => {
  const local = join(root, "local-store");
  const artifacts = `  store: ${local}`;
  writeFileSync(join(proj, "local.local.yaml"), yaml({ artifacts }));
  const commit = await git(["rev-parse", "HEAD"]);
  const built = await togo(["build", "-c", "local.local.yaml", "--json"], { cwd: proj, timeout: 180_000 });
  const out = ok(built);
  expect(out).toMatchObject({ commit, store: local, file_name: "server.js", built: true });
  // Built from a clean checkout elsewhere: nothing in the project.
  expect(existsSync(join(proj, "server.js"))).toBe(false);
  expect(existsSync(join(proj, "BUILT_HERE"))).toBe(false);
  expect(builds(local).map((b) => b.state)).toEqual(["succeeded"]);
  expect(readFileSync(join(local, "builds", `${String(out.build_id)}.log`), "utf8")).toContain("build_cmd");

  // The proxy is not asked (it is not configured); the store has the build.
  const before = builds().length;
  const r = await deploy(["-c", "local.local.yaml", "--version", "5"]);
  const raw = ok(r).raw as { sha256: string };
  expect(raw.sha256).toBe(out.sha256);
  expect(r.stderr).toContain(`from ${local}, sha256 ${String(out.sha256)} checked`);
  expect(builds()).toHaveLength(before);
  expect(await served()).toBe("howdy from 5 built for linux-amd64\n");

  // A commit the store has no build of: what to run.
  writeFileSync(join(proj, "app.js"), `${readFileSync(join(proj, "app.js"), "utf8")}// next\n`);
  await commitAndPush("next");
  const missing = await deploy(["-c", "local.local.yaml", "--version", "6"]);
  expect(missing.exitCode).toBe(1);
  expect(missing.stderr).toContain(`the artifact store ${local} has no build of example.com/acme/hello`);
  expect(missing.stderr).toContain("togo build --os linux --arch amd64");
  expect(current()).toBe("5");
}, 300_000);

test("togo build into an s3:// store (s3rver behind a front that enforces If-None-Match: *) and a deploy from that bucket without a proxy", async () => {
  const s3 = await startS3(join(root, "s3"), "togo-artifacts");
  try {
    const env = { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER", AWS_REGION: "eu-west-1", AWS_EC2_METADATA_DISABLED: "true" };
    writeFileSync(join(proj, "s3.local.yaml"), yaml({ artifacts: `  store: s3://togo-artifacts/builds\n  endpoint: ${s3.endpoint}` }));
    const commit = await git(["rev-parse", "HEAD"]);
    const out = ok(await togo(["build", "-c", "s3.local.yaml", "--json"], { cwd: proj, env, timeout: 180_000 }));
    expect(out).toMatchObject({ commit, store: "s3://togo-artifacts/builds", file_name: "server.js", built: true });
    // Blob and metadata written only if absent.
    expect(s3.log.some((l) => /^PUT \/togo-artifacts\/builds\/artifacts\/example\.com\/acme\/hello\/[0-9a-f]{40}\/linux-amd64-[0-9a-f]+\/meta\.json/.test(l))).toBe(true);
    expect(existsSync(join(proj, "BUILT_HERE"))).toBe(false);

    const before = builds().length;
    const r = await deploy(["-c", "s3.local.yaml", "--version", "7"], env);
    ok(r);
    expect(r.stderr).toContain(`from s3://togo-artifacts/builds, sha256 ${String(out.sha256)} checked`);
    expect(sha256(readFileSync(join(appDir, "v7", "server.js")))).toBe(out.sha256);
    expect(builds()).toHaveLength(before);
    expect(await served()).toBe("howdy from 7 built for linux-amd64\n");
  } finally {
    await s3.close();
  }
}, 300_000);
