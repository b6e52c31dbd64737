// The docker driver against a real dockerd (vfs, no iptables) in its own network namespace and a
// real registry on this machine's end of a veth pair. The image is built in the test without a
// daemon (this machine's node and sh with their libraries), pushed by `togo deploy`, then run by
// its digest exactly as the synthesized stack describes it (the provider stand-in: the
// kreuzwerker/docker provider is not in the mirror) — and `togo status` reads it from the daemon:
// ready while healthy, failed once stopped. A Dockerfile project is built by `docker build` there.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { CliResult as Result } from "../helpers/index.js";
import { cleanupTempDirs, tempDir, togo, writeFiles } from "../helpers/index.js";
import { createNetns, engine, runStackContainer, startDockerd, watchEvents, type Dockerd, type Netns } from "../helpers/dockerd.js";
import { nodeServerImage } from "../helpers/oci.js";
import { startRegistry, type Registry } from "../helpers/registry.js";

let netns: Netns | undefined;
let registry: Registry | undefined;
let dockerd: Dockerd | undefined;
let dir: string;
let mirror: string;
const SECRET = "sk-live-9c1e-never-printed";
const env = () => ({ API_TOKEN: SECRET });

interface StatusJson {
  app: string;
  driver: string;
  state: string;
  healthy: boolean;
  version: string | null;
  url: string | null;
  message: string;
}

function status(r: Result): StatusJson {
  const s = JSON.parse(String(r.stdout)) as StatusJson;
  // togo status exits 3 (and still prints) when the app is not ready.
  expect({ exit: r.exitCode, stderr: r.stderr }).toEqual({ exit: s.state === "ready" ? 0 : 3, stderr: "" });
  return s;
}

/** Polls `togo status --json` while the state is `not-ready` (the health check starting), up to a deadline. */
async function settledStatus(): Promise<StatusJson> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const s = status(await togo(["status", "--json"], { cwd: dir, env: env() }));
    if (s.state !== "not-ready" || Date.now() > deadline) return s;
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  netns = createNetns();
  registry = await startRegistry(netns.hostIp);
  dockerd = await startDockerd(netns, [registry.address]);
  dir = tempDir("togo-docker-run-");
  mirror = tempDir("togo-empty-mirror-");
  nodeServerImage(join(dir, "build", "image"));
  writeFiles(dir, {
    "togo.yaml": [
      "app: hello",
      "deploy:",
      "  provider: docker",
      `  image: ${registry.address}/hello`,
      "  app_port: 3000",
      "  healthcheck: { path: /up, timeout: 60, interval: 1 }",
      "  env: { NODE_ENV: production }",
      "  secrets: { API_TOKEN: 'env:API_TOKEN' }",
      "  options:",
      "    source: oci:build/image",
      "    insecure_registry: true",
      "    publish: 8080",
      `    docker_host: unix://${dockerd.socket}`,
      "terraform:",
      `  plugin_mirror: ${mirror}`,
      "",
    ].join("\n"),
  });
}, 180_000);

afterAll(async () => {
  // Everything this file started, by PID, then the namespace and the temp dirs.
  await dockerd?.stop();
  await registry?.stop();
  netns?.remove();
  cleanupTempDirs();
}, 120_000);

describe("docker driver: a real dockerd runs the pushed image by digest", () => {
  let containerId: string;
  let digest: string;

  test("before anything is deployed, status is not-deployed", async () => {
    const s = status(await togo(["status", "--json"], { cwd: dir, env: env() }));
    expect(s).toMatchObject({ app: "hello", driver: "docker", state: "not-deployed", healthy: false });
  });

  test("deploy pushes the image and records its digest; the apply stops at the missing provider", async () => {
    const r = await togo(["deploy", "--version", "1.0.0"], { cwd: dir, env: env() });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("kreuzwerker/docker 3.x");
    digest = (JSON.parse(readFileSync(join(dir, ".togo", "docker", "hello", "releases.json"), "utf8")) as { releases: { digest: string }[] }).releases[0].digest;
    expect(await registry!.manifestDigest("hello", "1.0.0")).toBe(digest);
    expect(String(r.stdout) + String(r.stderr)).not.toContain(SECRET);
  });

  test("the container the stack describes, run by digest, is reported ready", async () => {
    containerId = await runStackContainer(dockerd!.socket, join(dir, "cdktf.out", "stacks", "hello-docker", "cdk.tf.json"), { secret_API_TOKEN: SECRET });

    // dockerd pulled the pinned digest from the registry: the running image is exactly what togo pushed.
    const c = JSON.parse((await engine(dockerd!.socket, "GET", `/containers/${containerId}/json`)).body) as { Image: string; Config: { Env: string[] } };
    const img = JSON.parse((await engine(dockerd!.socket, "GET", `/images/${c.Image}/json`)).body) as { RepoDigests: string[] };
    expect(img.RepoDigests).toContain(`${registry!.address}/hello@${digest}`);
    expect(c.Config.Env).toEqual(expect.arrayContaining(["PORT=3000", "NODE_ENV=production", `API_TOKEN=${SECRET}`]));

    const s = await settledStatus();
    expect(s).toMatchObject({ state: "ready", healthy: true, version: "1.0.0", url: "http://127.0.0.1:8080" });
    expect(s.message).toContain("running and healthy");

    // The published port answers inside the namespace the daemon runs in.
    const body = execFileSync("ip", ["netns", "exec", netns!.name, process.execPath, "-e", "fetch('http://127.0.0.1:8080/up').then(async r => process.stdout.write(r.status + ' ' + await r.text()))"], { encoding: "utf8" });
    expect(body).toBe("200 ok /up\n");
  });

  test("a stopped container is reported failed, and the text form says so", async () => {
    const stop = await engine(dockerd!.socket, "POST", `/containers/${containerId}/stop?t=2`);
    expect(stop.status).toBe(204);
    const s = status(await togo(["status", "--json"], { cwd: dir, env: env() }));
    expect(s).toMatchObject({ state: "failed", healthy: false, version: "1.0.0" });
    expect(s.message).toMatch(/hello: exited with code \d+/);
    const text = await togo(["status"], { cwd: dir, env: env() });
    expect(text.exitCode).toBe(3);
    expect(text.stdout).toMatch(/state\s+failed/);
  });

  test("a container of that name that is not the app's is not mistaken for it", async () => {
    await engine(dockerd!.socket, "DELETE", `/containers/${containerId}?force=true`);
    const created = await engine(dockerd!.socket, "POST", "/containers/create?name=hello", { Image: digestImage(), Cmd: ["/usr/bin/node", "-e", "0"] });
    expect(created.status).toBe(201);
    const s = status(await togo(["status", "--json"], { cwd: dir, env: env() }));
    expect(s.state).toBe("not-deployed");
    expect(s.message).toContain("is not hello's");
    await engine(dockerd!.socket, "DELETE", "/containers/hello?force=true");
  });

  describe("a container Docker keeps restarting is failed, with how often it restarted", () => {
    const labels = { "togo.app": "hello", "togo.version": "1.0.0" };

    /** Creates and starts container `hello` with `cmd` under restart: always; resolves after `count` `event`s of it. */
    async function crashing(cmd: string, event: string, count: number, healthcheck?: object): Promise<void> {
      const watch = watchEvents(dockerd!.socket, { type: ["container"], container: ["hello"], event: [event] }, count);
      try {
        await watch.ready;
        const created = await engine(dockerd!.socket, "POST", "/containers/create?name=hello", {
          Image: digestImage(),
          Cmd: ["/bin/sh", "-c", cmd],
          Labels: labels,
          ...(healthcheck ? { Healthcheck: healthcheck } : {}),
          HostConfig: { RestartPolicy: { Name: "always" }, NetworkMode: "none" },
        });
        expect(created.status).toBe(201);
        expect((await engine(dockerd!.socket, "POST", "/containers/hello/start")).status).toBe(204);
        await watch.done;
      } finally {
        watch.close();
      }
    }

    afterEach(async () => {
      await engine(dockerd!.socket, "DELETE", "/containers/hello?force=true");
    });

    test("crashed, restarted, and caught running with its health check not passed: failed, not not-ready", async () => {
      // The first run leaves a mark in the container's own filesystem and exits; the restarted one
      // finds it and stays up without ever passing its health check (its first probe is an hour away).
      const hc = { Test: ["CMD-SHELL", "exit 1"], Interval: 3600e9, StartPeriod: 3600e9, Retries: 1 };
      await crashing("if [ -e /crashed ]; then exec /usr/bin/node -e 'setInterval(() => {}, 1 << 30)'; fi; : > /crashed; exit 3", "start", 2, hc);
      const s = status(await togo(["status", "--json"], { cwd: dir, env: env() }));
      expect(s).toMatchObject({ state: "failed", healthy: false, version: "1.0.0" });
      expect(s.message).toMatch(/^hello: crash loop: Docker restarted the container 1 time; it started again \d+s ago and its health check has not passed since$/);
    });

    test("a container that exits at once, over and over: failed, with the restart count", async () => {
      await crashing("exit 5", "die", 3);
      const s = status(await togo(["status", "--json"], { cwd: dir, env: env() }));
      expect(s).toMatchObject({ state: "failed", healthy: false });
      // Caught between exits or in one: either way the loop and its count are named.
      const restarts = Number(/Docker restarted (?:it|the container) (\d+) times?/.exec(s.message)?.[1]);
      expect(restarts).toBeGreaterThanOrEqual(2);
      expect(s.message).toContain("crash loop");
    });
  });

  test("a Dockerfile project is built with docker build on the reachable daemon, pushed, and a rebuild sends nothing", async () => {
    const proj = tempDir("togo-docker-build-");
    writeFiles(proj, {
      Dockerfile: 'FROM scratch\nCOPY hello.txt /srv/hello.txt\nCMD ["/srv/none"]\n',
      "hello.txt": "built by docker build\n",
      "togo.yaml": [
        "app: built",
        "deploy:",
        "  provider: docker",
        `  image: ${registry!.address}/built`,
        "  options: { insecure_registry: true }",
        "terraform:",
        `  plugin_mirror: ${mirror}`,
        "",
      ].join("\n"),
    });
    const daemon = { DOCKER_HOST: dockerd!.host, DOCKER_BUILDKIT: "0" };
    const first = await togo(["deploy", "--version", "0.1.0"], { cwd: proj, env: daemon });
    expect(first.stderr).toContain("kreuzwerker/docker 3.x");
    expect(first.exitCode).toBe(1);
    const recorded = (JSON.parse(readFileSync(join(proj, ".togo", "docker", "built", "releases.json"), "utf8")) as { releases: { digest: string }[] }).releases[0].digest;
    expect(await registry!.manifestDigest("built", "0.1.0")).toBe(recorded);

    const before = registry!.requests().length;
    const again = await togo(["deploy", "--version", "0.1.0"], { cwd: proj, env: daemon });
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toContain(`built:0.1.0 is already in the registry as ${recorded}; nothing sent`);
    expect(registry!.requests().slice(before).filter((r) => /^(PUT|POST|PATCH)/.test(r))).toEqual([]);
  });
});

/** The image the app's container ran (pulled by digest above). */
function digestImage(): string {
  const h = JSON.parse(readFileSync(join(dir, ".togo", "docker", "hello", "releases.json"), "utf8")) as { releases: { digest: string }[] };
  return `${registry!.address}/hello@${h.releases[0].digest}`;
}
