// The docker driver's stack, proven by cdktf's Testing matchers on the synthesized JSON (the
// kreuzwerker/docker provider is not in the local mirror, so this stack is never applied in CI),
// plus the driver's pure parts: option validation, image refs, release history, state mapping,
// the provider check and the skopeo/docker command arrays; and the deploy and rollback pipelines
// as far as they go with no daemon and no registry (the user's hooks in their places).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Container } from "@cdktf/provider-docker/lib/container/index.js";
import { Image } from "@cdktf/provider-docker/lib/image/index.js";
import { Network } from "@cdktf/provider-docker/lib/network/index.js";
import { DockerProvider } from "@cdktf/provider-docker/lib/provider/index.js";
import { Testing } from "cdktf";
import { appUrl, DockerDriver, dockerStackProps, healthcheckTest } from "../../drivers/docker/index.js";
import { parseConfig } from "../../src/config/load.js";
import * as C from "../../drivers/docker/image/commands.js";
import { dockerHostOf } from "../../drivers/docker/image/host.js";
import { currentRelease, entryProblem, HistoryError, markApplied, recordPush, rollbackTarget, type History } from "../../drivers/docker/image/history.js";
import { readDockerOptions } from "../../drivers/docker/image/options.js";
import { mirroredVersions, providerProblem } from "../../drivers/docker/image/provider.js";
import { parseImageRef, versionTag } from "../../drivers/docker/image/ref.js";
import { mapContainer } from "../../drivers/docker/image/status.js";
import { HookError } from "../../src/core/errors.js";
import { createReporter } from "../../src/core/log.js";
import type { Spec } from "../../src/core/spec.js";
import { DockerStack, type DockerStackProps } from "../../stacks/docker.js";
import { cleanupTempDirs, freePort, tempDir } from "../helpers/index.js";
import { writeOciLayout } from "../helpers/oci.js";

Testing.setupJest();
afterAll(cleanupTempDirs);

const DIGEST = `sha256:${"ab".repeat(32)}`;
const OLD = `sha256:${"cd".repeat(32)}`;

function spec(deploy: string, top = ""): Spec {
  const dir = tempDir("togo-docker-unit-");
  return parseConfig(`app: hello\n${top}deploy:\n  provider: docker\n  image: registry.example.com/team/hello\n${deploy}`, join(dir, "togo.yaml"), {
    API_TOKEN: "s3cret-value",
  });
}

function synth(props: DockerStackProps): string {
  const app = Testing.app();
  const stack = new DockerStack(app, "hello-docker", props);
  return Testing.synth(stack);
}

const release = { repository: "registry.example.com/team/hello", digest: DIGEST, version: "1.2.0" };

describe("the docker stack (synth matchers)", () => {
  const s = spec(
    [
      "  app_port: 8080",
      "  env: { NODE_ENV: production }",
      "  secrets: { API_TOKEN: 'env:API_TOKEN' }",
      "  healthcheck: { path: /healthz, timeout: 20, interval: 2 }",
      "  options:",
      "    source: registry",
      "    publish: '127.0.0.1:9000'",
      "    restart: on-failure",
      "    docker_host: 'ssh://deploy@203.0.113.10:2222'",
    ].join("\n") + "\n",
  );
  const json = synth(dockerStackProps(s, release));

  // Not toBeValidTerraform(): it runs terraform init + validate, which would download the provider.
  test("configures the docker provider for the configured host", () => {
    expect(json).toHaveProviderWithProperties(DockerProvider, { host: "ssh://deploy@203.0.113.10:2222" });
  });

  test("pins the image by digest, never by tag", () => {
    expect(json).toHaveResourceWithProperties(Image, { name: `registry.example.com/team/hello@${DIGEST}`, keep_locally: true });
    const parsed = JSON.parse(json) as { resource: Record<string, Record<string, { name?: string; image?: string }>> };
    expect(parsed.resource.docker_image.image.name).not.toMatch(/:latest|:1\.2\.0/);
    // The container runs the pulled image's id, i.e. exactly that digest.
    expect(parsed.resource.docker_container.container.image).toBe("${docker_image.image.image_id}");
  });

  test("sets env with PORT, and secrets as sensitive variables, never their values", () => {
    expect(json).toHaveResourceWithProperties(Container, {
      env: ["NODE_ENV=production", "PORT=8080", "TOGO_VERSION=1.2.0", "API_TOKEN=${var.secret_API_TOKEN}"],
    });
    const parsed = JSON.parse(json) as { variable: Record<string, { sensitive: boolean; type: string }> };
    expect(parsed.variable.secret_API_TOKEN).toMatchObject({ sensitive: true, type: "string" });
    expect(json).not.toContain("s3cret-value");
  });

  test("publishes the app port, with the restart policy, on the stack's network", () => {
    expect(json).toHaveResourceWithProperties(Network, { name: "hello", driver: "bridge" });
    expect(json).toHaveResourceWithProperties(Container, {
      name: "hello",
      restart: "on-failure",
      must_run: true,
      ports: [{ internal: 8080, external: 9000, ip: "127.0.0.1", protocol: "tcp" }],
      networks_advanced: [{ name: "${docker_network.network.name}" }],
    });
  });

  test("health-checks healthcheck.path on the app port and waits for it on apply", () => {
    const parsed = JSON.parse(json) as { resource: { docker_container: { container: { healthcheck: { test: string[] } } } } };
    const hc = parsed.resource.docker_container.container.healthcheck;
    expect(hc).toMatchObject({ interval: "2000ms", timeout: "5000ms", start_period: "20000ms", retries: 3 });
    expect(hc.test[0]).toBe("CMD-SHELL");
    expect(hc.test[1]).toContain("http://127.0.0.1:8080/healthz");
    expect(json).toHaveResourceWithProperties(Container, { wait: true });
  });

  test("labels the container with app, version and digest", () => {
    expect(json).toHaveResourceWithProperties(Container, {
      labels: [
        { label: "togo.app", value: "hello" },
        { label: "togo.version", value: "1.2.0" },
        { label: "togo.digest", value: DIGEST },
      ],
    });
  });

  test("outputs the container name, the image digest and the url", () => {
    const parsed = JSON.parse(json) as { output: Record<string, { value: unknown }> };
    expect(parsed.output.container_name.value).toBe("hello");
    expect(parsed.output.image_digest.value).toBe(DIGEST);
    expect(parsed.output.url.value).toBe("http://127.0.0.1:9000");
    expect(parsed.output.version.value).toBe("1.2.0");
  });

  test("before the first deploy it describes only the network (no image, no container)", () => {
    const none = synth(dockerStackProps(s));
    expect(none).toHaveResource(Network);
    expect(none).not.toHaveResource(Image);
    expect(none).not.toHaveResource(Container);
  });

  test("exec-form health check, no publishing, run command, default local socket", () => {
    const t = spec("  run: node server.js\n  options:\n    source: registry\n    publish: false\n    healthcheck_cmd: [node, probe.js]\n");
    const j = synth(dockerStackProps(t, release));
    expect(j).toHaveProviderWithProperties(DockerProvider, { host: "unix:///var/run/docker.sock" });
    expect(j).toHaveResourceWithProperties(Container, { env: ["PORT=3000", "TOGO_VERSION=1.2.0"], ports: [], command: ["/bin/sh", "-c", "node server.js"], healthcheck: expect.objectContaining({ test: ["CMD", "node", "probe.js"] }) });
    const u = spec("  options:\n    source: registry\n    healthcheck_cmd: false\n");
    expect(JSON.parse(synth(dockerStackProps(u, release))).resource.docker_container.container.healthcheck).toBeUndefined();
  });

  test("a deploy.host is reached over ssh with the spec's ssh settings", () => {
    const t = spec("  host: 203.0.113.7\n  user: deploy\n  port: 2200\n  identity_file: /keys/id\n  options: { source: registry }\n");
    expect(dockerHostOf(t).url).toBe("ssh://deploy@203.0.113.7:2200");
    expect(synth(dockerStackProps(t, release))).toHaveProviderWithProperties(DockerProvider, { host: "ssh://deploy@203.0.113.7:2200", ssh_opts: ["-i", "/keys/id"] });
  });
});

describe("validation (docker options)", () => {
  const problems = (deploy: string) => readDockerOptions(spec(deploy)).problems;
  const cases: [string, string, string, string][] = [
    ["a tag on image", "  options: { source: registry }\n", "", ""],
    ["unknown option", "  options: { source: registry, pubish: 80 }\n", "deploy.options.pubish", "unknown option"],
    ["bad docker_host", "  options: { source: registry, docker_host: 'http://x' }\n", "deploy.options.docker_host", "ssh://USER@HOST"],
    ["bad publish", "  options: { source: registry, publish: 'everywhere' }\n", "deploy.options.publish", "IP:PORT"],
    ["bad source", "  options: { source: 'git:foo' }\n", "deploy.options.source", "oci:PATH"],
    ["missing oci layout", "  options: { source: 'oci:build/image' }\n", "deploy.options.source", "does not exist"],
    ["bad restart", "  options: { source: registry, restart: sometimes }\n", "deploy.options.restart", "unless-stopped"],
    ["bad network name", "  options: { source: registry, network: 'my net' }\n", "deploy.options.network", "Docker name"],
    ["bad healthcheck_cmd", "  options: { source: registry, healthcheck_cmd: 42 }\n", "deploy.options.healthcheck_cmd", "command list"],
  ];
  test.each(cases.slice(1))("%s", (_name, deploy, path, fragment) => {
    const p = problems(deploy);
    expect(p.map((x) => x.path)).toContain(path);
    expect(p.find((x) => x.path === path)!.expected).toContain(fragment);
  });

  test("a valid config has no problems", () => {
    expect(problems(cases[0][1])).toEqual([]);
  });

  test("a misspelt option gets a did-you-mean, as with every driver", () => {
    expect(problems("  options: { source: registry, insecure_registy: true }\n")).toEqual([
      { path: "deploy.options.insecure_registy", expected: expect.stringMatching(/^unknown option for the docker driver; did you mean "insecure_registry"\? \(known: source, context, /) },
    ]);
  });

  test("a missing image source is reported beside another key's problem", () => {
    const p = problems("  options: { source: 'oci:build/image', restart: sometimes }\n");
    expect(p.map((x) => x.path)).toEqual(["deploy.options.source", "deploy.options.restart"]);
    expect(p[0].expected).toContain("does not exist and there is no build_cmd");
  });

  test("image is required, names a registry, and carries neither tag nor digest", () => {
    const dir = tempDir("togo-docker-unit-");
    const base = (image: string) =>
      readDockerOptions(parseConfig(`app: hello\ndeploy:\n  provider: docker\n${image}  options: { source: registry }\n`, join(dir, "togo.yaml"), {})).problems;
    expect(base("")[0]).toMatchObject({ path: "deploy.image", expected: expect.stringContaining("is required") });
    expect(base("  image: hello\n")[0]).toMatchObject({ path: "deploy.image", value: "hello", expected: expect.stringContaining("name the registry") });
    expect(base("  image: reg.example.com/hello:latest\n")[0].expected).toContain("never :latest");
    expect(base(`  image: reg.example.com/hello@${DIGEST}\n`)[0].expected).toContain("drop the @sha256");
  });

  test("a project with a Dockerfile builds it by default; otherwise the image is taken from the registry", () => {
    const s = spec("");
    expect(readDockerOptions(s).options.source).toEqual({ kind: "registry" });
    writeFileSync(join(s.dir, "Dockerfile"), "FROM scratch\n");
    expect(readDockerOptions(s).options.source).toMatchObject({ kind: "dockerfile", dockerfile: join(s.dir, "Dockerfile"), context: s.dir });
  });
});

describe("image references and versions", () => {
  test("parses registry, path, tag and digest", () => {
    expect(parseImageRef("127.0.0.1:5000/hello")).toEqual({ registry: "127.0.0.1:5000", path: "hello" });
    expect(parseImageRef(`reg.io/a/b:1.0@${DIGEST}`)).toEqual({ registry: "reg.io", path: "a/b", tag: "1.0", digest: DIGEST });
    expect(parseImageRef("localhost/x")).toEqual({ registry: "localhost", path: "x" });
    expect(parseImageRef("team/x:2")).toEqual({ path: "team/x", tag: "2" });
  });
  test("a version becomes a tag (+ is not allowed in tags)", () => {
    expect(versionTag("1.2.0+build.5")).toBe("1.2.0_build.5");
  });
  test("the url follows domain, then the published address", () => {
    const s = spec("  options: { source: registry, publish: 8081, docker_host: 'tcp://10.0.0.5:2376' }\n");
    expect(appUrl(s, readDockerOptions(s).options)).toBe("http://10.0.0.5:8081");
    const d = spec("  domain: hello.example.com\n  options: { source: registry }\n");
    expect(appUrl(d, readDockerOptions(d).options)).toBe("https://hello.example.com");
  });
  test("default health check probes healthcheck.path with curl, wget or node", () => {
    const s = spec("  options: { source: registry }\n");
    const t = healthcheckTest(s, readDockerOptions(s).options)!;
    expect(t[0]).toBe("CMD-SHELL");
    expect(t[1]).toMatch(/^curl .*http:\/\/127\.0\.0\.1:3000\/up \|\| wget .* \|\| node -e /);
  });
});

describe("release history", () => {
  const r = (version: string, digest: string) => ({ version, digest, repository: "reg/x", pushedAt: "t" });
  test("records newest first, refuses a changed digest under a recorded version, prunes but keeps current", () => {
    let h: History = { releases: [] };
    h = recordPush(h, r("1", OLD), 2);
    h = markApplied(h, "1", "t1");
    h = recordPush(h, r("2", DIGEST), 2);
    h = recordPush(h, r("2", DIGEST), 2); // the same push again: no duplicate
    expect(h.releases.map((x) => x.version)).toEqual(["2", "1"]);
    expect(() => recordPush(h, r("2", OLD), 2)).toThrow(/version 2 was pushed before as sha256:abab.*this build is sha256:cdcd/);
    h = recordPush(h, r("3", `sha256:${"ef".repeat(32)}`), 1);
    expect(h.releases.map((x) => x.version)).toEqual(["3", "1"]); // 1 is current: kept
    expect(currentRelease(h)?.digest).toBe(OLD);
  });
  test("rollback goes to the newest release older than the current, or a named one", () => {
    let h: History = { releases: [r("3", "sha256:3"), r("2", "sha256:2"), r("1", "sha256:1")] };
    expect(() => rollbackTarget(h)).toThrow(/nothing is deployed/);
    h = markApplied(h, "3", "t");
    expect(rollbackTarget(h)?.version).toBe("2");
    expect(rollbackTarget(h, "1")?.version).toBe("1");
    expect(rollbackTarget(h, "9")).toBeUndefined();
    h = markApplied(h, "1", "t");
    expect(() => rollbackTarget(h)).toThrow(/oldest release/);
  });
  test("a current version the history does not list is a clear error (exit 2), not a TypeError", () => {
    const h: History = { current: "9.9.9", releases: [r("2", DIGEST), r("1", OLD)] };
    let err: unknown;
    try {
      rollbackTarget(h, undefined, "/p/.togo/docker/hello/releases.json");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HistoryError);
    expect((err as HistoryError).exitCode).toBe(2);
    expect((err as Error).message).toBe(
      '/p/.togo/docker/hello/releases.json says the current version is "9.9.9", but lists no such release, so there is no "release before it"; name the version to roll back to: togo rollback VERSION (togo releases lists them)',
    );
    expect(rollbackTarget(h, "1")?.digest).toBe(OLD); // a named version still works
  });
  test("an entry is pinnable only as a push records it", () => {
    expect(entryProblem(r("1.0.0", DIGEST))).toBeUndefined();
    expect(entryProblem(r("1.0.0", "sha256:zzz; rm -rf /"))).toBe('has digest "sha256:zzz; rm -rf /", not a sha256 digest (sha256: and 64 lowercase hex digits)');
    expect(entryProblem(r("1.0.0", `sha256:${"AB".repeat(32)}`))).toMatch(/not a sha256 digest/);
    expect(entryProblem({ version: "1.0.0" })).toBe("has no digest");
    expect(entryProblem({ version: "1.0.0", digest: DIGEST })).toBe("has repository undefined, not the registry/path it was pushed to");
    expect(entryProblem({ version: "$(reboot)", digest: DIGEST, repository: "reg/x" })).toMatch(/^has version "\$\(reboot\)", not a release version/);
    expect(entryProblem("1.0.0")).toMatch(/^is "1.0.0", not a release/);
  });
});

describe("container state mapping", () => {
  const c = (state: object, restarts = 0) => ({ RestartCount: restarts, State: state, Config: { Labels: { "togo.version": "1.0.0", "togo.digest": DIGEST } } });
  // Never restarted by Docker.
  test.each([
    ["running + healthy", { Status: "running", Running: true, Health: { Status: "healthy" } }, "ready"],
    ["running + starting", { Status: "running", Running: true, Health: { Status: "starting" } }, "not-ready"],
    ["running + unhealthy", { Status: "running", Running: true, Health: { Status: "unhealthy", FailingStreak: 4, Log: [{ ExitCode: 1, Output: "refused" }] } }, "not-ready"],
    ["running, no health check", { Status: "running", Running: true }, "not-ready"],
    ["exited", { Status: "exited", ExitCode: 137 }, "failed"],
    ["dead", { Status: "dead" }, "failed"],
    ["restarting", { Status: "restarting", Restarting: true, ExitCode: 1 }, "failed"],
    ["created", { Status: "created" }, "not-ready"],
  ])("%s → %s", (_n, state, want) => {
    const m = mapContainer(c(state, 0));
    expect(m.state).toBe(want);
    expect(m.healthy).toBe(want === "ready");
    expect(m.version).toBe("1.0.0");
  });

  // A crash loop is caught running between exits as often as restarting: Docker's RestartCount says it.
  const NOW = Date.parse("2025-03-01T12:00:00Z");
  const startedAgo = (s: number) => new Date(NOW - s * 1000).toISOString();
  test.each([
    ["running, health check starting, restarted 5 times", "failed", { Status: "running", Running: true, StartedAt: startedAgo(1), Health: { Status: "starting" } }, 5, /^crash loop: Docker restarted the container 5 times; it started again 1s ago and its health check has not passed since$/],
    ["running, unhealthy, restarted once", "failed", { Status: "running", Running: true, StartedAt: startedAgo(3600), Health: { Status: "unhealthy", FailingStreak: 3, Log: [{ ExitCode: 7, Output: "refused" }] } }, 1, /^crash loop: Docker restarted the container 1 time; it started again 3600s ago and is unhealthy \(3 failed probes in a row \(last probe exit 7: refused\)\)$/],
    ["running, no health check, just restarted", "failed", { Status: "running", Running: true, StartedAt: startedAgo(2) }, 12, /Docker restarted the container 12 times; it started again 2s ago and it has no health check/],
    ["running, no health check, start time unknown", "failed", { Status: "running", Running: true }, 2, /restarted the container 2 times; it started again and/],
    ["restarting", "failed", { Status: "restarting", Restarting: true, ExitCode: 1 }, 4, /^crash loop: the container keeps exiting \(last exit code 1\); Docker restarted it 4 times$/],
    ["exited after restarts", "failed", { Status: "exited", ExitCode: 2 }, 3, /^exited with code 2 after Docker restarted it 3 times$/],
    ["healthy after a restart long ago", "ready", { Status: "running", Running: true, StartedAt: startedAgo(3600), Health: { Status: "healthy" } }, 1, /^running and healthy \(Docker restarted it 1 time before\)$/],
    ["no health check, restarted long ago, up since", "not-ready", { Status: "running", Running: true, StartedAt: startedAgo(600) }, 1, /readiness is unknown .*; Docker restarted it 1 time, the last over 60s ago$/],
  ])("%s → %s", (_n, want, state, restarts, message) => {
    const m = mapContainer(c(state, restarts as number), NOW);
    expect({ state: m.state, healthy: m.healthy }).toEqual({ state: want, healthy: want === "ready" });
    expect(m.message).toMatch(message as RegExp);
  });
  test("messages say why", () => {
    expect(mapContainer(c({ Status: "exited", ExitCode: 137 })).message).toContain("exited with code 137");
    expect(mapContainer(c({ Status: "running", Health: { Status: "unhealthy", FailingStreak: 4, Log: [{ ExitCode: 1, Output: "refused" }] } })).message).toContain("4 failed probes in a row (last probe exit 1: refused)");
  });
});

describe("the provider check (never a download)", () => {
  test("a mirror without kreuzwerker/docker is refused with the fix; one with it passes", () => {
    const mirror = tempDir("togo-mirror-");
    mkdirSync(join(mirror, "registry.terraform.io", "hashicorp", "aws", "5.100.0", "linux_amd64"), { recursive: true });
    const s = spec("  options: { source: registry }\n", `terraform:\n  plugin_mirror: ${mirror}\n`);
    const msg = providerProblem(s, "/p/cdktf.out/stacks/hello-docker");
    expect(msg).toContain("kreuzwerker/docker 3.x");
    expect(msg).toContain(`plugin mirror ${mirror}`);
    expect(msg).toContain("terraform providers mirror");
    mkdirSync(join(mirror, "registry.terraform.io", "kreuzwerker", "docker"), { recursive: true });
    writeFileSync(join(mirror, "registry.terraform.io", "kreuzwerker", "docker", "terraform-provider-docker_3.6.2_linux_amd64.zip"), "");
    expect(mirroredVersions(mirror, "linux_amd64")).toEqual(["3.6.2"]);
    expect(mirroredVersions(mirror, "darwin_arm64")).toEqual([]);
  });
  test("without a mirror terraform installs it as usual (no check)", () => {
    expect(providerProblem(spec("  options: { source: registry }\n"), "/x")).toBeUndefined();
  });
});

describe("commands as data", () => {
  test("skopeo pushes with preserved digests and a digest file; TLS off only when asked", () => {
    expect(C.skopeoPush("oci:/b/img:1", "docker://r/x:1", "/t/d", true).args).toEqual(["copy", "--quiet", "--preserve-digests", "--digestfile", "/t/d", "oci:/b/img:1", "docker://r/x:1"]);
    expect(C.skopeoPush("oci:/b/img", "docker://r/x:1", "/t/d", false).args).toContain("--dest-tls-verify=false");
    expect(C.skopeoInspectRaw("docker://r/x:1", false).args).toEqual(["inspect", "--raw", "--tls-verify=false", "docker://r/x:1"]);
    expect(C.skopeoInspectRaw("oci:/b/img", false).args).toEqual(["inspect", "--raw", "oci:/b/img"]);
    expect(C.sourceRef({ kind: "oci", path: "/b/img", ref: "v1" })).toBe("oci:/b/img:v1");
    expect(C.sourceRef({ kind: "docker-archive", path: "/b/i.tar" })).toBe("docker-archive:/b/i.tar");
  });
  test("docker commands carry DOCKER_HOST, not flags", () => {
    expect(C.dockerInspectContainer("hello", "unix:///s.sock")).toEqual({ file: "docker", args: ["inspect", "--type", "container", "hello"], env: { DOCKER_HOST: "unix:///s.sock" } });
  });
});

describe("the user's hooks around a docker deploy and rollback (no daemon, no registry)", () => {
  const dump = (out: string, name: string) => `echo ${name} >> ${join(out, "order")}; env | grep '^TOGO_' | sort > ${join(out, `${name}.env`)}`;
  const read = (out: string, name: string) =>
    Object.fromEntries(
      readFileSync(join(out, `${name}.env`), "utf8")
        .trim()
        .split("\n")
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );

  /** A project whose registry is a closed port on this machine: every registry call is refused. */
  async function project(hooks: string[]) {
    const out = tempDir("togo-docker-hooks-");
    const registry = `127.0.0.1:${await freePort()}`;
    const s = spec(`  build_cmd: echo build_cmd >> ${join(out, "order")}\n  options: { source: 'oci:build/image', insecure_registry: true }\n`);
    s.image = `${registry}/team/hello`;
    for (const h of hooks) s.hooks[h as keyof Spec["hooks"]] = dump(out, h);
    writeOciLayout(join(s.dir, "build", "image"), { files: { "/srv/hello.txt": { content: "hello\n" } } });
    const log = createReporter({ quiet: true });
    const driver = (version?: string) => new DockerDriver({ log, opts: { force: false, yes: false, lockWait: 0, json: false, version } });
    return { s, out, log, driver, registry };
  }

  test("pre_build runs before the build, pre_deploy after it and before the push; a refused push reaches on_failure", async () => {
    const { s, out, log, driver } = await project(["pre_build", "pre_deploy", "post_deploy", "on_failure"]);
    const err = await driver("1.0.0").deploy(s).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^could not read 127\.0\.0\.1:\d+\/team\/hello:1\.0\.0 from the registry/);
    expect(readFileSync(join(out, "order"), "utf8").split("\n").filter(Boolean)).toEqual(["pre_build", "build_cmd", "pre_deploy", "on_failure"]);
    expect(log.stages.map((x) => [x.name, x.ok])).toEqual([
      ["secrets", true],
      ["build", true],
      ["push", false],
    ]);
    const pre = read(out, "pre_deploy");
    expect(pre).toMatchObject({ TOGO_APP: "hello", TOGO_DRIVER: "docker", TOGO_COMMAND: "deploy", TOGO_VERSION: "1.0.0", TOGO_PREVIOUS_VERSION: "", TOGO_HOSTS: "unix:///var/run/docker.sock" });
    expect(read(out, "pre_build")).toMatchObject({ TOGO_DRIVER: "docker", TOGO_COMMAND: "deploy" });
    expect(read(out, "on_failure")).toMatchObject({ TOGO_DRIVER: "docker", TOGO_ERROR: (err as Error).message });
    // Nothing was recorded: the release history is written only after a push.
    expect(existsSync(join(s.dir, ".togo", "docker", "hello", "releases.json"))).toBe(false);
  });

  test("a failing pre_deploy stops the deploy before the registry is asked; on_failure says why", async () => {
    const { s, out, log, driver } = await project(["on_failure"]);
    s.hooks.pre_deploy = "exit 3";
    const err = await driver("1.0.0").deploy(s).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HookError);
    expect((err as Error).message).toBe("the pre_deploy hook exited 3: exit 3; nothing was changed on any target");
    expect(log.stages.map((x) => x.name)).toEqual(["secrets", "build"]);
    expect(read(out, "on_failure").TOGO_ERROR).toBe((err as Error).message);
  });

  test("a rollback with nothing deployed fails before any stage, and on_failure is told (TOGO_COMMAND=rollback)", async () => {
    const { s, out, log, driver } = await project(["on_failure", "post_rollback"]);
    await expect(driver().rollback(s)).rejects.toThrow(/nothing is deployed yet/);
    expect(log.stages).toEqual([]);
    expect(read(out, "on_failure")).toMatchObject({ TOGO_COMMAND: "rollback", TOGO_DRIVER: "docker", TOGO_ERROR: expect.stringContaining("nothing is deployed yet") });
    expect(existsSync(join(out, "post_rollback.env"))).toBe(false);
  });

  test("a rollback to a version only the registry could know asks it in the resolve stage", async () => {
    const { s, out, log, driver, registry } = await project(["on_failure"]);
    await expect(driver().rollback(s, "0.9.0")).rejects.toThrow(`could not read ${registry}/team/hello:0.9.0 from the registry`);
    expect(log.stages.map((x) => [x.name, x.ok])).toEqual([["resolve", false]]);
    expect(read(out, "on_failure")).toMatchObject({ TOGO_COMMAND: "rollback", TOGO_VERSION: "0.9.0" });
  });
});

describe("a stage (staging) on the docker driver", () => {
  /** hello with a staging stage, selected as --stage would; the registry a closed port on this machine. */
  async function staged() {
    const dir = tempDir("togo-docker-stage-");
    const out = tempDir("togo-docker-stage-hooks-");
    const registry = `127.0.0.1:${await freePort()}`;
    const s = parseConfig(
      `app: hello\ndeploy:\n  provider: docker\n  image: ${registry}/team/hello\n  options: { source: 'oci:build/image', insecure_registry: true }\n` +
        `hooks:\n  on_failure: ${JSON.stringify(`env | grep '^TOGO_' | sort > ${join(out, "on_failure.env")}`)}\nstages:\n  staging:\n    deploy: { app_port: 8081 }\n`,
      join(dir, "togo.yaml"),
      {},
      "staging",
    );
    writeOciLayout(join(dir, "build", "image"), { files: { "/srv/hello.txt": { content: "hello\n" } } });
    return { s, out, registry };
  }

  test("the synthesized stack names the container and network <app>-<stage>", async () => {
    const { s } = await staged();
    const json = synth(dockerStackProps(s, release));
    expect(json).toHaveResourceWithProperties(Container, { name: "hello-staging", env: ["PORT=8081", "TOGO_VERSION=1.2.0"] });
    expect(json).toHaveResourceWithProperties(Network, { name: "hello-staging" });
    expect((JSON.parse(json) as { output: Record<string, { value: unknown }> }).output.container_name.value).toBe("hello-staging");
  });

  test("the deploy pushes the tag <stage>-<version>, never the bare version another stage may use", async () => {
    const { s, out, registry } = await staged();
    const driver = new DockerDriver({ log: createReporter({ quiet: true }), opts: { force: false, yes: false, lockWait: 0, json: false, version: "1.0.0" } });
    const err = await driver.deploy(s).catch((e: unknown) => e);
    // The push reads the destination tag first; the registry refuses, so the message names it.
    expect((err as Error).message).toMatch(new RegExp(`^could not read ${registry.replaceAll(".", "\\.")}/team/hello:staging-1\\.0\\.0 from the registry`));
    expect(readFileSync(join(out, "on_failure.env"), "utf8")).toContain("TOGO_STAGE=staging\n");
  });
});
