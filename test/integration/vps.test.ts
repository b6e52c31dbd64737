// The vps driver end to end against a real sshd on 127.0.0.1 with a fresh user and key: terraform
// applies the bootstrap stack over SSH, examples/hello is deployed, the remote layout, .env bytes,
// prune, rollback, status, logs, exec, the lock, a failing health check, an upload cut off by
// killing the SSH connection, and destroy. The test host's PID 1 is not systemd, so releases run
// under togo's process manager here (the systemd unit is checked in test/unit/systemd.test.ts).
import { chownSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "@jest/globals";
import { execa } from "execa";
import { createServer } from "node:http";
import { BIN, cleanupTempDirs, EXAMPLE, freePort, ROOT, tempDir, testEnv, togo } from "../helpers/index.js";
import { startSshd, type Sshd } from "../helpers/sshd.js";

const SECRET = `it's "quoted" $HOME \${PATH} \`id\` back\\slash\nsecond line ünïcødé 🚀`;
const PLAIN_SECRET = "no single quote but $dollar `tick` and\nnewline ✓";
const FILE_TOKEN = `tok"en $x`;

let sshd: Sshd;
let dir: string;
let appPort: number;
let appDir: string;
let hold: string;
const env = () => ({ TRICKY_SECRET: SECRET, PLAIN_SECRET, HOLD_FILE: hold });

const yaml = (extra = "", binary = "server.js") => `app: hello
deploy:
${sshd.deployKeys}
  binary: ${binary}
  run: node ${binary}
  app_port: ${appPort}
  app_dir: ~/apps/hello
  release_cmd: "while [ -e \${HOLD_FILE:-/nonexistent} ]; do sleep 0.05; done"
  healthcheck: { path: /up, timeout: 8, interval: 0.1, settle: 0.5 }
  versions_to_keep: 2
  env:
    NODE_ENV: production
    GREETING: hello
  secrets:
    T_TRICKY: env:TRICKY_SECRET
    T_PLAIN: env:PLAIN_SECRET
    T_FILE: file:secrets.env#API_TOKEN
${extra}`;

const deploy = (version: string, extra: string[] = [], cwdEnv: Record<string, string> = {}) =>
  togo(["deploy", "--version", version, ...extra], { cwd: dir, env: { ...env(), ...cwdEnv } });
const current = () => readlinkSync(join(appDir, "current"));
const versions = () => readFileSync(join(appDir, ".versions"), "utf8");
const get = async (path = "/") => (await fetch(`http://127.0.0.1:${appPort}${path}`)).text();
/** The environment the serving process really runs with. */
const appEnviron = () => {
  const pid = readFileSync(join(appDir, "run", "app.pid"), "utf8").trim();
  const vars: Record<string, string> = {};
  for (const entry of readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").filter(Boolean)) {
    const i = entry.indexOf("=");
    vars[entry.slice(0, i)] = entry.slice(i + 1);
  }
  return vars;
};

beforeAll(async () => {
  sshd = await startSshd();
  appPort = await freePort();
  dir = tempDir("togo-vps-");
  appDir = join(sshd.home, "apps", "hello");
  const holdDir = tempDir("togo-hold-");
  statSync(holdDir);
  hold = join(holdDir, "hold");
  // The deploy user must see the hold file.
  await import("node:fs").then((fs) => fs.chmodSync(holdDir, 0o755));
  cpSync(join(EXAMPLE, "server.js"), join(dir, "server.js"));
  writeFileSync(join(dir, "secrets.env"), `# test secrets\nAPI_TOKEN="tok\\"en \\$x"\n`);
  writeFileSync(join(dir, "togo.yaml"), yaml());
});

afterAll(async () => {
  await sshd?.stop();
  cleanupTempDirs();
});

test("validate: missing host/user/run/binary are named before anything runs (exit 2)", async () => {
  const bad = tempDir("togo-vps-bad-");
  writeFileSync(join(bad, "togo.yaml"), "app: hello\ndeploy:\n  provider: vps\n  options: { service: launchd, bwlimit: fast }\n");
  const r = await togo(["deploy"], { cwd: bad });
  expect(r.exitCode).toBe(2);
  for (const key of ["deploy.host", "deploy.user", "deploy.run", "deploy.binary", "deploy.options.service", "deploy.options.bwlimit"]) expect(r.stderr).toContain(key);
  expect(r.stderr).toContain('"launchd"');
  expect(sshd.accepted()).toBe(0);
});

test("provision: terraform applies the bootstrap stack over SSH, pinned to the host key; unchanged = no apply", async () => {
  const r = await togo(["provision", "--yes"], { cwd: dir, env: env() });
  expect({ exit: r.exitCode, stderr: r.stderr }).toMatchObject({ exit: 0 });
  expect(r.stderr).toContain("apply hello-vps");
  expect(r.stdout).toContain(`http://127.0.0.1:${appPort}`);
  expect(statSync(appDir).isDirectory()).toBe(true);
  expect(statSync(appDir).mode & 0o777).toBe(0o700);
  expect(statSync(appDir).uid).toBe(sshd.uid);
  for (const sub of ["logs", "run", ".uploads"]) expect(existsSync(join(appDir, sub))).toBe(true);

  // The stack pins the host key and references the private key by path: never its contents.
  const stackJson = readFileSync(join(dir, "cdktf.out", "stacks", "hello-vps", "cdk.tf.json"), "utf8");
  const key = readFileSync(sshd.identityFile, "utf8");
  expect(stackJson).not.toContain(key.split("\n")[1]);
  expect(stackJson).toContain(`\${file(\\"${sshd.identityFile}\\")}`);
  expect(JSON.parse(stackJson).resource.terraform_data.bootstrap.connection.host_key).toBe(sshd.hostKey);
  expect(stackJson).not.toContain("T_TRICKY");

  const s = JSON.parse((await togo(["status", "--json"], { cwd: dir, env: env() })).stdout);
  expect(s.outputs).toMatchObject({ host: "127.0.0.1", user: sshd.user, app_dir: "~/apps/hello", has_systemd: "false", url: `http://127.0.0.1:${appPort}` });
  expect(s.state).toBe("not-deployed");

  const again = await togo(["provision", "--yes"], { cwd: dir, env: env() });
  expect(again.exitCode).toBe(0);
  expect(again.stderr).toContain("infrastructure unchanged");
});

test("deploy examples/hello: stages timed, one SSH connection, layout, .env 0600 with exact bytes", async () => {
  const before = sshd.accepted();
  const r = await deploy("1", ["--json"]);
  expect({ exit: r.exitCode, stderr: r.stderr }).toMatchObject({ exit: 0 });
  for (const stage of ["secrets", "build", "lock", "upload", "install", "release", "verify", "switch", "record", "prune"]) {
    expect(r.stderr).toMatch(new RegExp(`✓ ${stage}\\s+\\d+(ms|\\.\\d+s)`));
  }
  for (const secret of [SECRET, PLAIN_SECRET, FILE_TOKEN, "second line", "tok"]) expect(r.stderr + r.stdout).not.toContain(secret);
  const result = JSON.parse(r.stdout);
  expect(result.url).toBe(`http://127.0.0.1:${appPort}`);
  expect(result.raw.ssh.connections).toBe(1);
  expect(result.raw.uploaded).toBe(true);
  expect(sshd.accepted() - before).toBe(1); // what sshd saw, not just what togo counted

  expect(current()).toBe("v1");
  expect(versions()).toBe("1\n");
  expect(readdirSync(join(appDir, "v1"))).toContain("server.js");
  expect(await get()).toBe("hello from 1\n");

  const envFile = join(appDir, ".env");
  expect(statSync(envFile).mode & 0o777).toBe(0o600);
  expect(statSync(envFile).uid).toBe(sshd.uid);
  expect(readFileSync(envFile, "utf8")).toBe(
    `NODE_ENV='production'\nGREETING='hello'\n` +
      "T_TRICKY=\"it's \\\"quoted\\\" \\$HOME \\${PATH} \\`id\\` back\\\\slash\nsecond line ünïcødé 🚀\"\n" +
      `T_PLAIN='${PLAIN_SECRET}'\n` +
      `T_FILE='${FILE_TOKEN}'\n`,
  );
  expect(appEnviron()).toMatchObject({ T_TRICKY: SECRET, T_PLAIN: PLAIN_SECRET, T_FILE: FILE_TOKEN, GREETING: "hello", PORT: String(appPort), TOGO_VERSION: "1" });
});

test("deploy the unchanged artifact again: 0 bytes re-sent, one connection", async () => {
  const before = sshd.accepted();
  const r = await deploy("2", ["--json"]);
  expect(r.exitCode).toBe(0);
  const result = JSON.parse(r.stdout);
  expect(result.message).toContain("0 bytes uploaded");
  expect(result.raw).toMatchObject({ uploaded: false, bytes: 0, previous: "1" });
  expect(result.raw.ssh).toMatchObject({ connections: 1, bytesUploaded: 0 });
  expect(sshd.accepted() - before).toBe(1);
  expect(current()).toBe("v2");
  expect(versions()).toBe("2\n1\n");
  expect(await get()).toBe("hello from 2\n");
});

test("a changed artifact is uploaded; prune keeps versions_to_keep: 2 and the upload cache follows", async () => {
  writeFileSync(join(dir, "server.js"), readFileSync(join(EXAMPLE, "server.js"), "utf8").replace("// A tiny app", "// v3: A tiny app"));
  const r = await deploy("3");
  expect(r.exitCode).toBe(0);
  expect(r.stderr).toMatch(/deployed hello 3 \(\d+ bytes uploaded\)/);
  expect(versions()).toBe("3\n2\n");
  expect(existsSync(join(appDir, "v1"))).toBe(false);
  expect(existsSync(join(appDir, "v2"))).toBe(true);
  expect(current()).toBe("v3");
  const cached = readdirSync(join(appDir, ".uploads")).sort();
  const referenced = ["v2", "v3"].map((v) => readFileSync(join(appDir, v, ".togo-sha256"), "utf8").trim()).sort();
  expect(cached).toEqual(referenced);
});

test("status: ready with the release version, through the SSH connection", async () => {
  const r = await togo(["status", "--json"], { cwd: dir, env: env() });
  expect(r.exitCode).toBe(0);
  const s = JSON.parse(r.stdout);
  expect(s).toMatchObject({ app: "hello", driver: "vps", state: "ready", version: "3", healthy: true, url: `http://127.0.0.1:${appPort}` });
});

test("releases, rollback (deletes nothing), rollback to a named version", async () => {
  const list = JSON.parse((await togo(["releases", "--json"], { cwd: dir, env: env() })).stdout);
  expect(list.map((x: { version: string; current: boolean }) => [x.version, x.current])).toEqual([
    ["3", true],
    ["2", false],
  ]);
  const back = await togo(["rollback"], { cwd: dir, env: env() });
  expect({ exit: back.exitCode, stderr: back.stderr }).toMatchObject({ exit: 0 });
  expect(back.stdout).toContain("from 3 to 2");
  expect(current()).toBe("v2");
  expect(versions()).toBe("2\n3\n");
  expect(existsSync(join(appDir, "v3"))).toBe(true);
  expect(await get()).toBe("hello from 2\n");

  const named = await togo(["rollback", "3"], { cwd: dir, env: env() });
  expect(named.exitCode).toBe(0);
  expect(current()).toBe("v3");
  expect(await get()).toBe("hello from 3\n");
  const unknown = await togo(["rollback", "9"], { cwd: dir, env: env() });
  expect(unknown.exitCode).toBe(2);
  expect(unknown.stderr).toContain("release 9 is not on");
});

test("logs -n and exec -- CMD run over SSH in the current release", async () => {
  const logs = await togo(["logs", "-n", "5"], { cwd: dir, env: env() });
  expect({ exit: logs.exitCode, stderr: logs.stderr }).toMatchObject({ exit: 0 });
  expect(logs.stdout).toContain(`hello 3 listening on 127.0.0.1:${appPort}`);

  const ex = await togo(["exec", "--", "node", "-e", "console.log(process.env.GREETING, process.env.T_PLAIN === process.argv[1], process.cwd())", PLAIN_SECRET], { cwd: dir, env: env() });
  expect({ exit: ex.exitCode, stderr: ex.stderr }).toMatchObject({ exit: 0 });
  expect(ex.stdout.trim()).toBe(`hello true ${join(appDir, "v3")}`);
  const failing = await togo(["exec", "--", "sh", "-c", "exit 7"], { cwd: dir, env: env() });
  expect(failing.exitCode).toBe(7);
});

test("a concurrent deploy is refused by the remote lock; --lock-wait waits; lock release breaks a stale one", async () => {
  writeFileSync(hold, "");
  const first = deploy("4");
  const info = join(appDir, ".lock", "info");
  for (let i = 0; i < 400 && !existsSync(info); i++) await new Promise((r) => setTimeout(r, 25));
  expect(readFileSync(info, "utf8")).toMatch(/holder=\S+ time=\S+ version=4 app=hello/);

  const second = await deploy("5");
  expect(second.exitCode).toBe(1);
  expect(second.stderr).toContain("holds the lock");
  expect(second.stderr).toContain("version=4");
  expect(second.stderr).toContain("togo lock release");

  const waiting = deploy("6", ["--lock-wait", "60"]);
  rmSync(hold, { force: true });
  expect((await first).exitCode).toBe(0);
  expect((await waiting).exitCode).toBe(0);
  expect(current()).toBe("v6");
  expect(versions()).toBe("6\n4\n");
  expect(existsSync(join(appDir, ".lock"))).toBe(false);

  // A lock left by a crashed deploy an hour ago: reported as stale with how to break it.
  mkdirSync(join(appDir, ".lock"));
  writeFileSync(info, `holder=ci@runner:1:1 time=${new Date(Date.now() - 3600_000).toISOString()} version=0 app=hello\n`);
  chownSync(join(appDir, ".lock"), sshd.uid, sshd.uid);
  chownSync(info, sshd.uid, sshd.uid);
  const stale = await deploy("7");
  expect(stale.exitCode).toBe(1);
  expect(stale.stderr).toMatch(/stale \(60 min old\)/);
  const released = await togo(["lock", "release"], { cwd: dir, env: env() });
  expect({ exit: released.exitCode, stderr: released.stderr }).toMatchObject({ exit: 0 });
  expect(released.stderr).toContain("holder=ci@runner");
  expect(existsSync(join(appDir, ".lock"))).toBe(false);
});

test("Ctrl-C during a deploy stops it, releases the lock and leaves no SSH connection behind", async () => {
  writeFileSync(hold, "");
  const run = execa(process.execPath, [BIN, "deploy", "--version", "7"], { cwd: dir, env: testEnv(env()), extendEnv: false, reject: false });
  let r;
  try {
    // Wait until it is inside the release stage (release_cmd waits for the hold file).
    let err = "";
    run.stderr?.on("data", (d) => (err += d));
    for (let i = 0; i < 400 && !err.includes("✓ install"); i++) await new Promise((r) => setTimeout(r, 25));
    expect(existsSync(join(appDir, ".lock", "info"))).toBe(true);
    run.kill("SIGINT"); // the CLI only, as a shell's Ctrl-C reaches it (the SSH master has its own process group)
    r = await run;
  } finally {
    rmSync(hold, { force: true });
  }
  expect({ exit: r.exitCode, signal: r.signal, stderr: r.stderr }).toMatchObject({ exit: 130 });
  expect(r.stderr).toContain("SIGINT: cleaning up");
  expect(existsSync(join(appDir, ".lock"))).toBe(false);
  expect(current()).toBe("v6");
  for (let i = 0; i < 200 && sshd.sessions().length > 0; i++) await new Promise((r) => setTimeout(r, 25));
  expect(sshd.sessions()).toEqual([]);
});

test("a failing health check keeps the previous release serving and exits 1 with the last log lines", async () => {
  writeFileSync(
    join(dir, "broken.js"),
    `require("node:http").createServer((q, s) => { s.writeHead(q.url === "/up" ? 500 : 200); s.end("broken\\n"); }).listen(+process.env.PORT, "127.0.0.1", () => console.log("broken app up on " + process.env.PORT));\n`,
  );
  writeFileSync(join(dir, "broken.yaml"), yaml("", "broken.js").replace("timeout: 8", "timeout: 3"));
  const r = await togo(["deploy", "-c", "broken.yaml", "--version", "8"], { cwd: dir, env: env() });
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toContain("release 8 failed its health check");
  expect(r.stderr).toContain("500");
  expect(r.stderr).toContain("6 keeps serving");
  expect(r.stderr).toContain("broken app up on"); // the app's own last log lines
  expect(current()).toBe("v6");
  expect(await get()).toBe("hello from 6\n");
  expect(appEnviron().T_TRICKY).toBe(SECRET);
  expect(existsSync(join(appDir, ".lock"))).toBe(false);
});

test("over SSH too: a release that exits 0.5 s after its first 2xx is not deployed, and neither is one whose port another server holds", async () => {
  cpSync(join(ROOT, "test", "fixtures", "crashy.js"), join(dir, "crashy.js"));
  writeFileSync(join(dir, "crashy.yaml"), yaml("", "crashy.js").replace("settle: 0.5", "settle: 2"));
  const before = current();
  const crash = await togo(["deploy", "-c", "crashy.yaml", "--version", "c1"], { cwd: dir, env: env() });
  expect({ exit: crash.exitCode, stderr: crash.stderr }).toMatchObject({ exit: 1 });
  expect(crash.stderr).toContain("settle window");
  expect(current()).toBe(before);
  expect(await get()).toBe(`hello from ${before.slice(1)}\n`);

  // Another server answers 2xx on the port the app wants: the app cannot bind, togo must not call it deployed.
  const other = await freePort();
  const squatter = createServer((_q, res) => (res.writeHead(200), res.end("squatter\n")));
  await new Promise<void>((r) => squatter.listen(other, "127.0.0.1", r));
  try {
    writeFileSync(join(dir, "taken.yaml"), yaml().replace(`app_port: ${appPort}`, `app_port: ${other}`).replace("app_dir: ~/apps/hello", "app_dir: ~/apps/taken"));
    const taken = await togo(["deploy", "-c", "taken.yaml", "--version", "1"], { cwd: dir, env: env() });
    expect({ exit: taken.exitCode, stderr: taken.stderr }).toMatchObject({ exit: 1 });
    // The squatter is this test's process (root): the deploy user sees that another user holds the port.
    expect(taken.stderr).toMatch(new RegExp(`failed on port ${other} \\(port ${other} is held by another process \\((of another user|pid \\d+[^)]*)\\), not by this release`));
    expect(taken.stderr).toContain("nothing is serving");
  } finally {
    squatter.closeAllConnections();
    squatter.close();
  }
});

test("an upload cut off by killing the SSH connection leaves current untouched; the next deploy succeeds", async () => {
  const big = join(dir, "bundle");
  mkdirSync(big, { recursive: true });
  cpSync(join(dir, "server.js"), join(big, "server.js"));
  writeFileSync(join(big, "blob.bin"), randomBytes(6 * 1024 * 1024));
  writeFileSync(join(dir, "big.yaml"), yaml("  options: { bwlimit: 1024 }\n", "bundle/server.js").replace("binary: bundle/server.js", "binary: bundle"));
  const before = sshd.accepted();
  const run = togo(["deploy", "-c", "big.yaml", "--version", "9"], { cwd: dir, env: env() });
  const uploads = join(appDir, ".uploads");
  const partial = () => readdirSync(uploads).some((n) => n.endsWith(".partial"));
  for (let i = 0; i < 800 && !partial(); i++) await new Promise((r) => setTimeout(r, 25));
  expect(partial()).toBe(true);
  expect(sshd.killSessions().length).toBeGreaterThan(0);
  const r = await run;
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toMatch(/upload.*failed|connection .*lost/i);
  expect(current()).toBe("v6");
  expect(await get()).toBe("hello from 6\n");
  expect(existsSync(join(appDir, "v9"))).toBe(false);
  // The failed deploy reconnected once to release its lock.
  expect(existsSync(join(appDir, ".lock"))).toBe(false);
  expect(sshd.accepted() - before).toBe(2);

  writeFileSync(join(dir, "big.yaml"), yaml("", "bundle/server.js").replace("binary: bundle/server.js", "binary: bundle"));
  const again = await togo(["deploy", "-c", "big.yaml", "--version", "9"], { cwd: dir, env: env() });
  expect({ exit: again.exitCode, stderr: again.stderr }).toMatchObject({ exit: 0 });
  expect(current()).toBe("v9");
  expect(readFileSync(join(appDir, "v9", "bundle", "blob.bin")).equals(readFileSync(join(big, "blob.bin")))).toBe(true);
  expect(readdirSync(join(appDir, ".uploads")).some((n) => n.includes("partial") || n.startsWith("."))).toBe(false);
});

test("destroy stops the app, destroys the stack and removes the app dir", async () => {
  const r = await togo(["destroy", "--yes"], { cwd: dir, env: env() });
  expect({ exit: r.exitCode, stderr: r.stderr }).toMatchObject({ exit: 0 });
  expect(existsSync(appDir)).toBe(false);
  await expect(fetch(`http://127.0.0.1:${appPort}/`)).rejects.toThrow();
  const state = JSON.parse(readFileSync(join(dir, "terraform.hello-vps.tfstate"), "utf8"));
  expect(state.resources).toEqual([]);
});
