// togo dev --type docker against a real dockerd (vfs, no iptables) in its own network namespace,
// reached over plain TCP on the namespace's end of a veth pair — a remote dev daemon, so the dev
// port is published there and the app answers at that address. The base image is this machine's
// node and sh imported into the daemon (no registry, no internet); the project's Dockerfile builds
// on it. Edit → the new container answers; with dev.sync the files are copied into the same
// container; a broken build leaves the running one serving; a crash is restarted and counted; a
// container named like the deploy's stays untouched; abort leaves no dev container or network.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, copyFileSync, chmodSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseConfig } from "../../src/config/load.js";
import { createReporter } from "../../src/core/log.js";
import { workspaceOf } from "../../src/core/workspace.js";
import { registerBuiltinReloaders } from "../../src/dev/index.js";
import { newReloader, ReloaderRunError, type DevConfig, type DevStatus, type Manager } from "../../src/dev/reloader.js";
import { execa } from "execa";
import { BIN, cleanupTempDirs, tempDir, testEnv, togo, writeFiles } from "../helpers/index.js";
import { createNetns, engine, startDockerd, type Dockerd, type Netns } from "../helpers/dockerd.js";
import { sharedLibraries } from "../helpers/oci.js";

let netns: Netns | undefined;
let dockerd: Dockerd | undefined;
let dir: string;
let manager: Manager;
const PORT = 4100;
const log: string[] = [];
/** Every manager run a test started, so a failing test never leaves one watching (jest would not exit). */
const runs: { ac: AbortController; running: Promise<void> }[] = [];
function start(config: DevConfig, ac = new AbortController()): Promise<void> {
  const running = manager.run(config, ac.signal);
  running.catch(() => undefined);
  runs.push({ ac, running });
  return running;
}
const savedEnv = { DOCKER_HOST: process.env.DOCKER_HOST, DOCKER_BUILDKIT: process.env.DOCKER_BUILDKIT };

const SERVER = `const v = require("fs").readFileSync(__dirname + "/version.txt", "utf8").trim();
require("http").createServer((req, res) => {
  if (req.url === "/up" && v === "sick") { console.log("not well: /up answers 503"); res.statusCode = 503; res.end(); return; }
  if (req.url === "/crash") { res.end("bye\\n"); setTimeout(() => process.exit(3), 10); return; }
  res.end(v + " " + process.env.GREETING + "\\n");
}).listen(Number(process.env.PORT), "0.0.0.0");
`;
const DOCKERFILE = 'FROM togo-devbase:1\nWORKDIR /app\nCOPY . .\nCMD ["/usr/bin/node", "/app/server.js"]\n';

function yaml(sync: boolean, healthTimeout = 90): string {
  return [
    "app: hello",
    "deploy:",
    "  provider: docker",
    "  image: 127.0.0.1:5000/hello",
    "  app_port: 3000",
    `  healthcheck: { path: /up, timeout: ${healthTimeout} }`,
    "  env: { NODE_ENV: development }",
    "dev:",
    "  type: docker",
    `  port: ${PORT}`,
    "  env: { GREETING: dev }",
    `  sync: ${sync}`,
    // Without .togo: the state file togo dev writes there must never trigger a reload itself.
    ...(sync ? ["  ignore: [node_modules]"] : []),
    "",
  ].join("\n");
}

function devConfig(sync: boolean, healthTimeout?: number): DevConfig {
  const text = yaml(sync, healthTimeout);
  writeFiles(dir, { "togo.yaml": text });
  const spec = parseConfig(text, join(dir, "togo.yaml"), {});
  return {
    spec,
    log: createReporter({ stream: { write: (s: string) => (log.push(s), true) }, color: false }),
    stateFile: workspaceOf(spec).devStateFile,
    env: { ...spec.env, ...spec.dev.env, PORT: String(spec.dev.port) },
  };
}

const sock = () => dockerd!.socket;
const appUrl = () => `http://${netns!.nsIp}:${PORT}`;

async function get(path = "/"): Promise<string> {
  try {
    const r = await fetch(`${appUrl()}${path}`, { signal: AbortSignal.timeout(5000) });
    return await r.text();
  } catch (e) {
    return `(no answer: ${(e as Error).message})`;
  }
}

/** Polls `check` until it returns a value, up to a deadline; fails with what it saw last. */
async function until<T>(what: string, check: () => Promise<T | undefined>, seen: () => Promise<unknown>, ms = 150_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last seen: ${JSON.stringify(await seen())}\nmanager log:\n${log.join("")}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

const statusOf = (config: DevConfig) => manager.status(config);
const answers = (text: string) => until(`the app to answer "${text}"`, async () => ((await get()) === text ? true : undefined), () => get());
const stateIs = (config: DevConfig, ok: (s: DevStatus) => boolean) =>
  until("a dev status", async () => {
    const s = await statusOf(config);
    return ok(s) ? s : undefined;
  }, () => statusOf(config));

interface ContainerJson {
  Id: string;
  Name: string;
  RestartCount: number;
  State: { Status: string; StartedAt: string };
  Config: { Env: string[]; Labels: Record<string, string> };
}
async function container(name: string): Promise<ContainerJson | undefined> {
  const r = await engine(sock(), "GET", `/containers/${name}/json`);
  return r.status === 200 ? (JSON.parse(r.body) as ContainerJson) : undefined;
}
async function devContainers(): Promise<string[]> {
  const r = await engine(sock(), "GET", `/containers/json?all=1&filters=${encodeURIComponent(JSON.stringify({ label: ["togo.dev"] }))}`);
  return (JSON.parse(r.body) as { Names: string[] }[]).map((c) => c.Names[0]);
}
async function networkExists(name: string): Promise<boolean> {
  return (await engine(sock(), "GET", `/networks/${name}`)).status === 200;
}

/** A base image with this machine's node and sh, imported straight into the daemon. */
function importBaseImage(host: string): void {
  const root = tempDir("togo-devbase-");
  for (const file of new Set([process.execPath, "/bin/sh", ...sharedLibraries(process.execPath), ...sharedLibraries("/bin/sh")])) {
    const dest = join(root, file === process.execPath ? "/usr/bin/node" : file);
    mkdirSync(dirname(dest), { recursive: true });
    copyFileSync(file, dest);
    chmodSync(dest, 0o755);
  }
  const tar = execFileSync("tar", ["-C", root, "-cf", "-", "."], { maxBuffer: 1 << 30 });
  execFileSync("docker", ["import", "-c", 'CMD ["/usr/bin/node"]', "-", "togo-devbase:1"], { input: tar, env: { ...process.env, DOCKER_HOST: host }, maxBuffer: 1 << 20 });
}

let deployed: ContainerJson;

beforeAll(async () => {
  netns = createNetns();
  dockerd = await startDockerd(netns, [], { tcp: true });
  process.env.DOCKER_HOST = dockerd.tcpHost!;
  // This docker CLI's BuildKit path needs buildx, which is not installed here.
  process.env.DOCKER_BUILDKIT = "0";
  importBaseImage(dockerd.tcpHost!);
  dir = tempDir("togo-dev-docker-");
  writeFiles(dir, { Dockerfile: DOCKERFILE, "server.js": SERVER, "version.txt": "v1\n" });
  // The deployed container, named and labelled as the docker driver would: togo dev must never touch it.
  const created = await engine(sock(), "POST", "/containers/create?name=hello", {
    Image: "togo-devbase:1",
    Cmd: ["/usr/bin/node", "-e", "setInterval(() => {}, 1 << 30)"],
    Labels: { "togo.app": "hello", "togo.version": "1.0.0" },
    HostConfig: { NetworkMode: "none" },
  });
  expect(created.status).toBe(201);
  expect((await engine(sock(), "POST", "/containers/hello/start")).status).toBe(204);
  deployed = (await container("hello"))!;
  registerBuiltinReloaders();
  manager = await newReloader("docker");
}, 300_000);

afterAll(async () => {
  for (const r of runs) r.ac.abort();
  await Promise.allSettled(runs.map((r) => r.running));
  process.env.DOCKER_HOST = savedEnv.DOCKER_HOST;
  process.env.DOCKER_BUILDKIT = savedEnv.DOCKER_BUILDKIT;
  if (savedEnv.DOCKER_HOST === undefined) delete process.env.DOCKER_HOST;
  if (savedEnv.DOCKER_BUILDKIT === undefined) delete process.env.DOCKER_BUILDKIT;
  await dockerd?.stop();
  netns?.remove();
  cleanupTempDirs();
}, 120_000);

async function expectDeployedUntouched(): Promise<void> {
  const now = await container("hello");
  expect(now).toBeDefined();
  expect({ id: now!.Id, status: now!.State.Status, started: now!.State.StartedAt, restarts: now!.RestartCount }).toEqual({
    id: deployed.Id,
    status: "running",
    started: deployed.State.StartedAt,
    restarts: 0,
  });
}

describe("togo dev --type docker: rebuild and replace", () => {
  const ac = new AbortController();
  let config: DevConfig;
  let running: Promise<void>;
  let firstId: string;

  test("the manager builds the image, starts the dev container, and it answers on dev.port", async () => {
    config = devConfig(false);
    expect(manager.validate(config)).toEqual([]);
    running = start(config, ac);
    const s = await stateIs(config, (x) => x.state === "ready");
    expect(s).toMatchObject({ type: "docker", pid: process.pid, url: appUrl(), reloads: 0, restarts: 0 });
    expect(await get()).toBe("v1 dev\n");
    const c = (await container("hello-dev"))!;
    firstId = c.Id;
    expect(c.Config.Labels["togo.dev"]).toBe("hello");
    expect(c.Config.Labels["togo.app"]).toBeUndefined();
    expect(c.Config.Env).toEqual(expect.arrayContaining([`PORT=${PORT}`, "GREETING=dev", "NODE_ENV=development"]));
    await expectDeployedUntouched();
  });

  test("edit → the image is rebuilt and a new container answers", async () => {
    writeFiles(dir, { "version.txt": "v2\n" });
    await answers("v2 dev\n");
    const s = await stateIs(config, (x) => x.state === "ready" && x.reloads === 1);
    expect(s.message).toContain("rebuilt and replaced");
    expect(Date.parse(s.lastReload!)).not.toBeNaN();
    expect((await container("hello-dev"))!.Id).not.toBe(firstId);
    expect(await container(firstId)).toBeUndefined();
    await expectDeployedUntouched();
  });

  test("a broken build is reported failed and the running container keeps serving; the fix serves again", async () => {
    writeFiles(dir, { Dockerfile: "FROM togo-devbase:1\nNOT_AN_INSTRUCTION x\n" });
    const s = await stateIs(config, (x) => x.state === "failed");
    expect(s.message).toContain("docker build");
    expect(s.message).toContain("the previous dev container still serves");
    expect(await get()).toBe("v2 dev\n");
    writeFiles(dir, { Dockerfile: DOCKERFILE });
    await stateIs(config, (x) => x.state === "ready" && x.reloads === 2);
    expect(await get()).toBe("v2 dev\n");
  });

  test("abort removes the dev container and network, and the state file; the deployed container stays", async () => {
    ac.abort();
    await running;
    expect(await devContainers()).toEqual([]);
    expect(await networkExists("hello-dev")).toBe(false);
    expect(existsSync(config.stateFile)).toBe(false);
    expect(await statusOf(config)).toMatchObject({ state: "not-deployed" });
    await expectDeployedUntouched();
  });
});

describe("togo dev --type docker with dev.sync: copy and restart", () => {
  const ac = new AbortController();
  let config: DevConfig;
  let running: Promise<void>;
  let id: string;

  test("edit → the file is copied into the same container, which is restarted and answers", async () => {
    config = devConfig(true);
    running = start(config, ac);
    await stateIs(config, (x) => x.state === "ready");
    expect(await get()).toBe("v2 dev\n");
    id = (await container("hello-dev"))!.Id;
    writeFiles(dir, { "version.txt": "v3\n" });
    await answers("v3 dev\n");
    const s = await stateIs(config, (x) => x.state === "ready" && x.reloads === 1);
    expect(s.message).toContain("copied and restarted");
    expect((await container("hello-dev"))!.Id).toBe(id);
  });

  test("a crash is restarted by Docker and counted in the status", async () => {
    expect(await get("/crash")).toBe("bye\n");
    const s = await stateIs(config, (x) => (x.restarts ?? 0) >= 1);
    expect(s.state).not.toBe("not-deployed");
    await answers("v3 dev\n");
    expect((await container("hello-dev"))!.Id).toBe(id);
  });

  test("a removed file rebuilds instead of copying", async () => {
    writeFiles(dir, { "extra.txt": "x\n" });
    await stateIs(config, (x) => x.state === "ready" && x.reloads === 2);
    execFileSync("rm", [join(dir, "extra.txt")]);
    const s = await stateIs(config, (x) => x.state === "ready" && x.reloads === 3);
    expect(s.message).toContain("rebuilt and replaced");
    expect((await container("hello-dev"))!.Id).not.toBe(id);
  });

  test("abort leaves no dev container", async () => {
    ac.abort();
    await running;
    expect(await devContainers()).toEqual([]);
    expect(await networkExists("hello-dev")).toBe(false);
    await expectDeployedUntouched();
  });
});

test("a container named like the dev container that is not togo dev's is refused and left alone", async () => {
  const created = await engine(sock(), "POST", "/containers/create?name=hello-dev", { Image: "togo-devbase:1", Cmd: ["/usr/bin/node", "-e", "0"] });
  expect(created.status).toBe(201);
  const config = devConfig(false);
  const err = await manager.run(config, new AbortController().signal).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ReloaderRunError);
  expect((err as Error).message).toContain("is not togo dev's");
  expect((await container("hello-dev"))?.Id).toBe((JSON.parse(created.body) as { Id: string }).Id);
  expect(await networkExists("hello-dev")).toBe(false);
  await engine(sock(), "DELETE", "/containers/hello-dev?force=true");
  await expectDeployedUntouched();
});

test("a dev container that never answers its health check is failed, with its last log lines", async () => {
  writeFiles(dir, { "version.txt": "sick\n" });
  const ac = new AbortController();
  const config = devConfig(false, 3);
  const running = start(config, ac);
  const s = await stateIs(config, (x) => x.state === "failed");
  expect(s.message).toContain(`did not answer ${appUrl()}/up with 2xx within 3s (503)`);
  expect(s.message).toContain("not well: /up answers 503");
  ac.abort();
  await running;
  expect(await devContainers()).toEqual([]);
  writeFiles(dir, { "version.txt": "v3\n" });
});

test("a Dockerfile that build_cmd generates: validate passes without it, the first build says it is missing, and once it appears the app answers", async () => {
  const gen = tempDir("togo-dev-docker-gen-");
  const text = yaml(false).replace("  app_port: 3000\n", "  app_port: 3000\n  build_cmd: ./make-dockerfile.sh\n");
  writeFiles(gen, { "togo.yaml": text, "server.js": SERVER, "version.txt": "gen1\n" });
  const spec = parseConfig(text, join(gen, "togo.yaml"), {});
  const config: DevConfig = {
    spec,
    log: createReporter({ stream: { write: (s: string) => (log.push(s), true) }, color: false }),
    stateFile: workspaceOf(spec).devStateFile,
    env: { ...spec.env, ...spec.dev.env, PORT: String(spec.dev.port) },
  };
  expect(manager.validate(config)).toEqual([]);
  const ac = new AbortController();
  const running = start(config, ac);
  try {
    const failed = await stateIs(config, (x) => x.state === "failed");
    expect(failed.message).toContain(`${join(gen, "Dockerfile")} does not exist`);
    expect(failed.message).toContain("does not run deploy.build_cmd");
    // Generated now (as build_cmd run by hand or a clone would): the change builds and serves it.
    writeFiles(gen, { Dockerfile: DOCKERFILE });
    await answers("gen1 dev\n");
    await stateIs(config, (x) => x.state === "ready");
  } finally {
    ac.abort();
    await running;
  }
  expect(await devContainers()).toEqual([]);
});

test("through the CLI: togo dev (dev.type: docker) serves an edit, togo dev status says so, Ctrl-C removes the dev container", async () => {
  writeFiles(dir, { "version.txt": "cli1\n", Dockerfile: DOCKERFILE });
  devConfig(false); // writes togo.yaml
  const env = testEnv({ DOCKER_HOST: dockerd!.tcpHost!, DOCKER_BUILDKIT: "0" });
  const dev = execa(process.execPath, [BIN, "dev"], { cwd: dir, env, extendEnv: false, reject: false });
  let said = "";
  dev.stderr?.on("data", (d) => (said += d));
  dev.stdout?.on("data", (d) => (said += d));
  try {
    await until("the dev container to answer", async () => ((await get()) === "cli1 dev\n" || dev.exitCode !== null ? true : undefined), async () => ({ answer: await get(), said }));
    expect({ answer: await get(), said }).toMatchObject({ answer: "cli1 dev\n" });
    writeFiles(dir, { "version.txt": "cli2\n" });
    await until("the edit to be served", async () => ((await get()) === "cli2 dev\n" ? true : undefined), async () => ({ answer: await get(), said }));
    const st = await togo(["dev", "status", "--json"], { cwd: dir, env: { DOCKER_HOST: dockerd!.tcpHost!, DOCKER_BUILDKIT: "0" } });
    expect({ code: st.exitCode, status: JSON.parse(st.stdout || "{}"), said }).toMatchObject({ code: 0, status: { state: "ready", type: "docker" } });
  } finally {
    dev.kill("SIGINT");
  }
  const r = await dev;
  expect({ code: r.exitCode, said }).toMatchObject({ code: 130 });
  expect(await devContainers()).toEqual([]);
  await expectDeployedUntouched();
}, 300_000);
