// togo dev --type docker, the pure parts: the commands it builds (no env value on a command line,
// where the dev port is published, the label on everything), how a batch of changes reaches the
// container, what the watcher ignores, and validate.
import { join } from "node:path";
import { parseConfig } from "../../src/config/load.js";
import { createReporter } from "../../src/core/log.js";
import { workspaceOf } from "../../src/core/workspace.js";
import * as C from "../../src/dev/docker-commands.js";
import { DockerReloader, reloadPlan, type Change } from "../../src/dev/docker.js";
import { watchPlan } from "../../src/dev/watcher.js";
import { cleanupTempDirs, tempDir, writeFiles } from "../helpers/index.js";

afterAll(() => cleanupTempDirs());

function spec(dir = "/srv/p", extra: string[] = [], stage?: string) {
  const text = ["app: hello", "deploy:", "  provider: docker", "  healthcheck: { path: /up }", ...extra, "dev: { type: docker, port: 4100 }", "stages: { staging: {} }", ""].join("\n");
  return parseConfig(text, join(dir, "togo.yaml"), {}, stage);
}

const unix = C.devDaemon({})!;
const tcp = C.devDaemon({ DOCKER_HOST: "tcp://10.0.0.5:2375" })!;

describe("names and addresses", () => {
  test("the dev daemon is DOCKER_HOST, else the local socket; a malformed one is none", () => {
    expect(unix).toEqual({ kind: "unix", url: "unix:///var/run/docker.sock", hostname: "127.0.0.1" });
    expect(tcp).toMatchObject({ kind: "tcp", hostname: "10.0.0.5" });
    expect(C.devDaemon({ DOCKER_HOST: "10.0.0.5:2375" })).toBeUndefined();
  });

  test("everything is named <app>-dev, never the deploy's container name; a stage is part of it", () => {
    const d = C.devDocker(spec(), unix);
    expect(d).toMatchObject({ app: "hello", container: "hello-dev", network: "hello-dev", image: "togo-dev/hello:dev", dockerfile: "/srv/p/Dockerfile", context: "/srv/p" });
    expect(C.devDocker(spec("/srv/p", [], "staging"), unix)).toMatchObject({ app: "hello-staging", container: "hello-staging-dev" });
  });

  test("a local daemon publishes on loopback, a remote one on its interfaces and is reached at its host name", () => {
    expect(C.devDocker(spec(), unix)).toMatchObject({ publishIp: "127.0.0.1", url: "http://127.0.0.1:4100", healthUrl: "http://127.0.0.1:4100/up" });
    expect(C.devDocker(spec(), tcp)).toMatchObject({ publishIp: "0.0.0.0", url: "http://10.0.0.5:4100" });
    expect(C.runContainer(C.devDocker(spec(), tcp), "sha256:abc", {}).args).toEqual(expect.arrayContaining(["--publish", "0.0.0.0:4100:4100"]));
  });

  test("deploy.options.source dockerfile:PATH and context are the deploy's own build", () => {
    const d = C.devDocker(spec("/srv/p", ["  options: { source: 'dockerfile:docker/Dockerfile.app', context: app }"]), unix);
    expect(d).toMatchObject({ dockerfile: "/srv/p/docker/Dockerfile.app", context: "/srv/p/app" });
  });
});

describe("commands", () => {
  const d = C.devDocker(spec(), tcp);

  test("the container's environment goes by name only; the values ride in the CLI's environment", () => {
    const cmd = C.runContainer(d, "sha256:abc", { API_TOKEN: "sk-secret-value", PORT: "4100" });
    expect(cmd.args.join(" ")).not.toContain("sk-secret-value");
    expect(cmd.args).toEqual(expect.arrayContaining(["--env", "API_TOKEN", "--env", "PORT"]));
    expect(cmd.env).toMatchObject({ API_TOKEN: "sk-secret-value", DOCKER_HOST: "tcp://10.0.0.5:2375" });
  });

  test("the container, network and image carry the togo.dev label; the container is restarted by Docker and runs under an init", () => {
    const run = C.runContainer(d, "sha256:abc", {});
    expect(run.args).toEqual(["run", "--detach", "--name", "hello-dev", "--label", "togo.dev=hello", "--network", "hello-dev", "--publish", "0.0.0.0:4100:4100", "--init", "--restart", "unless-stopped", "sha256:abc"]);
    expect(C.createNetwork(d).args).toEqual(["network", "create", "--label", "togo.dev=hello", "hello-dev"]);
    expect(C.buildImage(d, "/tmp/iid").args).toEqual(["build", "--iidfile", "/tmp/iid", "--label", "togo.dev=hello", "-t", "togo-dev/hello:dev", "-f", "/srv/p/Dockerfile", "/srv/p"]);
  });

  test("changed files are packed relative to the context, names never taken for options", () => {
    expect(C.tarFiles("/srv/p", ["-rf", "src/a.js"]).args).toEqual(["-c", "-f", "-", "-C", "/srv/p", "--", "-rf", "src/a.js"]);
    expect(C.copyIn(d, "abc", "/app").args).toEqual(["cp", "-", "abc:/app"]);
  });
});

describe("reloadPlan", () => {
  const d = { dockerfile: "/srv/p/Dockerfile", context: "/srv/p" };
  const ch = (event: Change["event"], path: string): Change => ({ event, path });

  test("without dev.sync every change rebuilds", () => {
    expect(reloadPlan(d, [ch("change", "/srv/p/a.js")], false, "/app").kind).toBe("rebuild");
  });

  test("with dev.sync, changed and added files are copied (folders made by the tar)", () => {
    expect(reloadPlan(d, [ch("change", "/srv/p/a.js"), ch("addDir", "/srv/p/lib"), ch("add", "/srv/p/lib/b.js"), ch("change", "/srv/p/a.js")], true, "/app", () => true)).toEqual({
      kind: "sync",
      files: ["a.js", "lib/b.js"],
    });
  });

  test("a removal, the Dockerfile, .dockerignore, a file outside the context, or no WORKDIR rebuilds", () => {
    expect(reloadPlan(d, [ch("unlink", "/srv/p/a.js")], true, "/app")).toMatchObject({ kind: "rebuild", why: "a file was removed" });
    const gone = (p: string) => p !== "/srv/p/.a.js.swp";
    expect(reloadPlan(d, [ch("add", "/srv/p/.a.js.swp"), ch("change", "/srv/p/a.js")], true, "/app", gone)).toMatchObject({ kind: "rebuild", why: "a file was removed" });
    expect(reloadPlan(d, [ch("change", "/srv/p/Dockerfile")], true, "/app", () => true)).toMatchObject({ kind: "rebuild", why: "the Dockerfile changed" });
    expect(reloadPlan(d, [ch("change", "/srv/p/.dockerignore")], true, "/app", () => true).kind).toBe("rebuild");
    expect(reloadPlan({ dockerfile: "/srv/p/app/Dockerfile", context: "/srv/p/app" }, [ch("change", "/srv/p/togo.yaml")], true, "/app", () => true).kind).toBe("rebuild");
    expect(reloadPlan(d, [ch("change", "/srv/p/a.js")], true, undefined).kind).toBe("rebuild");
  });
});

test("the watch plan's ignore: an entry, anything under it, a segment of that name; an anchored state dir", () => {
  const { ignored } = watchPlan("/srv/p", [], ["node_modules", "build/out", "/.togo"]);
  expect(["node_modules", "a/node_modules/x.js", "build/out/x", ".togo/dev/hello.json"].filter(ignored)).toHaveLength(4);
  expect([".", "src/a.js", "build/x", "node_modules2/x"].filter(ignored)).toEqual([]);
});

describe("validate", () => {
  const saved = process.env.DOCKER_HOST;
  afterEach(() => {
    if (saved === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = saved;
  });
  const config = (dir: string, extra: string[] = []) => {
    const s = spec(dir, extra);
    return { spec: s, log: createReporter({ quiet: true }), stateFile: workspaceOf(s).devStateFile, env: {} };
  };

  test("a project without a Dockerfile, and a malformed DOCKER_HOST, are problems with the fix", () => {
    const dir = tempDir("togo-dev-docker-unit-");
    process.env.DOCKER_HOST = "docker.example.com:2375";
    const problems = new DockerReloader().validate(config(dir));
    expect(problems).toEqual([
      { path: "DOCKER_HOST", value: "docker.example.com:2375", expected: expect.stringContaining("tcp://HOST:PORT") },
      { path: "dev.type", value: "docker", expected: expect.stringContaining(`${join(dir, "Dockerfile")}, which does not exist`) },
    ]);
  });

  test("a project with a Dockerfile on the local socket has none", () => {
    const dir = tempDir("togo-dev-docker-unit-");
    writeFiles(dir, { Dockerfile: "FROM scratch\n" });
    delete process.env.DOCKER_HOST;
    expect(new DockerReloader().validate(config(dir))).toEqual([]);
  });

  test("a missing Dockerfile is no problem when build_cmd is set (it may generate it)", () => {
    const dir = tempDir("togo-dev-docker-unit-");
    delete process.env.DOCKER_HOST;
    expect(new DockerReloader().validate(config(dir, ["  build_cmd: ./gen-dockerfile.sh"]))).toEqual([]);
  });
});
