// The docker driver against a real registry (docker-registry on 127.0.0.1) with the real CLI:
// images built in the test as OCI layouts (no daemon), pushed by togo with skopeo; the digest the
// registry serves is the one togo recorded and pinned in the stack; a second push sends nothing;
// rollback re-pins an earlier digest. The kreuzwerker/docker provider is not in the plugin mirror,
// so every apply stops, clearly and before terraform runs, at the provider check (exit 1). The
// user's hooks ride on the same stages: a failing pre_deploy sends nothing; post_deploy and
// post_rollback are shown in-process, with a stand-in for the terraform apply only.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DockerDriver } from "../../drivers/docker/index.js";
import type { StackApply } from "../../drivers/docker/release.js";
import { parseConfig } from "../../src/config/load.js";
import { createReporter } from "../../src/core/log.js";
import { stackDir } from "../../src/infra/runner.js";
import { cleanupTempDirs, tempDir, togo, writeFiles } from "../helpers/index.js";
import { writeOciLayout } from "../helpers/oci.js";
import { startRegistry, type Registry } from "../helpers/registry.js";

let registry: Registry;
let dir: string;
let mirror: string;
const SECRET = "tok-4f9a-never-printed";
const env = { API_TOKEN: SECRET };

const imageA = { files: { "/srv/hello.txt": { content: "release A\n" } }, cmd: ["/bin/true"] };
const imageB = { files: { "/srv/hello.txt": { content: "release B\n" } }, cmd: ["/bin/true"] };

function config(extraOptions = "", hooks: Record<string, string> = {}): string {
  const hookLines = Object.entries(hooks).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`);
  return [
    "app: hello",
    "deploy:",
    "  provider: docker",
    `  image: ${registry.address}/team/hello`,
    "  app_port: 3000",
    "  env: { NODE_ENV: production }",
    "  secrets: { API_TOKEN: 'env:API_TOKEN' }",
    "  options:",
    "    source: oci:build/image",
    "    insecure_registry: true",
    "    publish: 8080",
    extraOptions,
    "terraform:",
    `  plugin_mirror: ${mirror}`,
    ...(hookLines.length > 0 ? ["hooks:", ...hookLines] : []),
    "",
  ].join("\n");
}

const stackJson = () => JSON.parse(readFileSync(join(dir, "cdktf.out", "stacks", "hello-docker", "cdk.tf.json"), "utf8")) as {
  resource: { docker_image: { image: { name: string } }; docker_container: { container: { env: string[] } } };
};
const history = () => JSON.parse(readFileSync(join(dir, ".togo", "docker", "hello", "releases.json"), "utf8")) as { releases: { version: string; digest: string }[] };
const writes = (requests: string[]) => requests.filter((r) => /^(PUT|POST|PATCH|DELETE) /.test(r));

beforeAll(async () => {
  registry = await startRegistry();
  dir = tempDir("togo-docker-reg-");
  mirror = tempDir("togo-empty-mirror-"); // a plugin mirror without kreuzwerker/docker, as on this machine
  writeFiles(dir, { "togo.yaml": config() });
});

afterAll(async () => {
  await registry?.stop();
  cleanupTempDirs();
});

describe("docker driver: push to a real registry", () => {
  let digestA: string;
  let digestB: string;

  test("a bad config is refused before anything runs (exit 2, key, value and fix named)", async () => {
    const bad = tempDir("togo-docker-bad-");
    writeFiles(bad, {
      "togo.yaml": `app: hello\ndeploy:\n  provider: docker\n  image: ${registry.address}/hello:latest\n  options:\n    source: oci:nowhere\n    publish: everywhere\n    docker_host: 'ftp://x'\n`,
    });
    const r = await togo(["deploy", "--version", "1.0.0"], { cwd: bad, env });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("deploy.image:");
    expect(r.stderr).toContain("never :latest");
    expect(r.stderr).toContain('deploy.options.publish: got "everywhere"');
    expect(r.stderr).toContain("deploy.options.docker_host");
    expect(r.stderr).toContain("deploy.options.source");
    expect(existsSync(join(bad, ".togo"))).toBe(false);
    expect(writes(registry.requests())).toEqual([]);
  });

  test("deploy pushes the image, records the digest the registry serves, and pins the stack to it", async () => {
    digestA = writeOciLayout(join(dir, "build", "image"), imageA);
    const r = await togo(["deploy", "--version", "1.0.0"], { cwd: dir, env });
    // The push and the record are real; the apply needs the provider, which the mirror lacks.
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("kreuzwerker/docker 3.x");
    expect(r.stderr).toContain(`not in the plugin mirror ${mirror}`);
    expect(r.stderr).toContain(`Version 1.0.0 (${digestA}) is pushed and recorded`);
    expect(r.stderr).toMatch(/✓ push/);
    expect(r.stderr).toMatch(/✓ record/);

    const served = await registry.manifestDigest("team/hello", "1.0.0");
    expect(served).toBe(digestA);
    expect(history().releases).toEqual([expect.objectContaining({ version: "1.0.0", digest: digestA, repository: `${registry.address}/team/hello` })]);
    expect(stackJson().resource.docker_image.image.name).toBe(`${registry.address}/team/hello@${digestA}`);
    // Terraform never started: nothing was initialised, so nothing could have been downloaded.
    expect(existsSync(join(dir, "cdktf.out", "stacks", "hello-docker", ".terraform"))).toBe(false);
    // The secret is in neither the stack JSON nor the output.
    expect(stackJson().resource.docker_container.container.env).toContain("API_TOKEN=${var.secret_API_TOKEN}");
    expect(readFileSync(join(dir, "cdktf.out", "stacks", "hello-docker", "cdk.tf.json"), "utf8")).not.toContain(SECRET);
    expect(String(r.stdout) + String(r.stderr)).not.toContain(SECRET);
  });

  test("a second push of the same image is a no-op: the registry receives no write", async () => {
    const before = registry.requests().length;
    const r = await togo(["deploy", "--version", "1.0.0"], { cwd: dir, env });
    expect(r.exitCode).toBe(1); // the apply, again
    expect(r.stderr).toContain(`team/hello:1.0.0 is already in the registry as ${digestA}; nothing sent`);
    const during = registry.requests().slice(before);
    expect(during.length).toBeGreaterThan(0); // it did ask
    expect(writes(during)).toEqual([]); // and wrote nothing
    expect(history().releases.map((x) => x.version)).toEqual(["1.0.0"]);
  });

  test("a new image under a new version is pushed; releases lists both, newest first", async () => {
    digestB = writeOciLayout(join(dir, "build", "image"), imageB);
    expect(digestB).not.toBe(digestA);
    const r = await togo(["deploy", "--version", "2.0.0"], { cwd: dir, env });
    expect(r.exitCode).toBe(1);
    expect(await registry.manifestDigest("team/hello", "2.0.0")).toBe(digestB);
    expect(stackJson().resource.docker_image.image.name).toBe(`${registry.address}/team/hello@${digestB}`);
    const rel = await togo(["releases", "--json"], { cwd: dir, env });
    expect(rel.exitCode).toBe(0);
    expect(JSON.parse(String(rel.stdout))).toEqual([
      expect.objectContaining({ version: "2.0.0", digest: digestB, current: false }),
      expect.objectContaining({ version: "1.0.0", digest: digestA, current: false }),
    ]);
  });

  test("another image under a version already pushed is refused; the registry keeps the original", async () => {
    const r = await togo(["deploy", "--version", "1.0.0"], { cwd: dir, env });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`version 1.0.0 was pushed before as ${digestA}, and this build is ${digestB}`);
    expect(await registry.manifestDigest("team/hello", "1.0.0")).toBe(digestA);
    // The registry's tag is checked too: another checkout (no local history) cannot move it either.
    const other = tempDir("togo-docker-other-");
    const errorFile = join(other, "togo-error.txt");
    writeFiles(other, {
      "togo.yaml": config("", { on_failure: `printf '%s|%s' "$TOGO_DRIVER" "$TOGO_ERROR" > ${errorFile}` }).replace("source: oci:build/image", `source: oci:${join(dir, "build", "image")}`),
    });
    const before = registry.requests().length;
    const o = await togo(["deploy", "--version", "1.0.0"], { cwd: other, env });
    expect(o.exitCode).toBe(1);
    const refusal = `the registry already has ${registry.address}/team/hello:1.0.0 as ${digestA}, and this build is ${digestB}`;
    expect(o.stderr).toContain(refusal);
    expect(o.stderr).toMatch(/✗ push/);
    expect(writes(registry.requests().slice(before))).toEqual([]);
    expect(await registry.manifestDigest("team/hello", "1.0.0")).toBe(digestA);
    // The user's on_failure hook was told why, as for every driver.
    expect(readFileSync(errorFile, "utf8")).toBe(`docker|${refusal}; deploy the change under a new version (--version, or commit so git describe changes)`);
  });

  test("rollback re-applies a previous digest from the release history", async () => {
    const r = await togo(["rollback", "1.0.0"], { cwd: dir, env });
    expect(r.exitCode).toBe(1); // the apply needs the provider
    expect(r.stderr).toMatch(/✓ verify/); // the registry still serves that digest
    expect(r.stderr).toContain(`Version 1.0.0 (${digestA}) is pushed and recorded`);
    expect(stackJson().resource.docker_image.image.name).toBe(`${registry.address}/team/hello@${digestA}`);
  });

  test("rollback to a version only the registry knows finds it by its tag", async () => {
    const other = tempDir("togo-docker-other-checkout-");
    writeFiles(other, { "togo.yaml": config().replace("source: oci:build/image", "source: registry") });
    const r = await togo(["rollback", "2.0.0"], { cwd: other, env });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`Version 2.0.0 (${digestB}) is pushed and recorded`);
    const missing = await togo(["rollback", "9.9.9"], { cwd: other, env });
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain("version 9.9.9 is neither in the release history");
  });

  describe("rollback pins a history entry only if it is sound and the registry serves it", () => {
    const repo = () => `${registry.address}/team/hello`;
    const current = () => ({ version: "2.0.0", digest: digestB, repository: repo(), pushedAt: "t", appliedAt: "t" });

    /** A checkout whose releases.json holds `entry` (as 0.5.0 unless it says otherwise) under the current 2.0.0. */
    function checkout(entry: unknown, over: { current?: string } = {}) {
      const proj = tempDir("togo-docker-badhist-");
      const file = join(proj, ".togo", "docker", "hello", "releases.json");
      const text = `${JSON.stringify({ current: over.current ?? "2.0.0", releases: [current(), entry] }, null, 2)}\n`;
      writeFiles(proj, { "togo.yaml": config().replace("source: oci:build/image", "source: registry"), ".togo/docker/hello/releases.json": text });
      return { proj, unchanged: () => expect(readFileSync(file, "utf8")).toBe(text) };
    }

    async function refused(proj: string, args: string[]) {
      const before = registry.requests().length;
      const r = await togo(args, { cwd: proj, env });
      // Nothing applied: never synthesized, so no stack was written, let alone applied; the registry untouched.
      expect(r.stderr).not.toMatch(/[✓✗] (synth|apply)/);
      expect(existsSync(join(proj, "cdktf.out"))).toBe(false);
      expect(writes(registry.requests().slice(before))).toEqual([]);
      return r;
    }

    test("a digest the registry does not serve: exit 1, the version and the image named", async () => {
      const gone = `sha256:${"0".repeat(64)}`;
      const { proj, unchanged } = checkout({ version: "0.5.0", digest: gone, repository: repo(), pushedAt: "t" });
      const r = await refused(proj, ["rollback", "0.5.0"]);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain(`version 0.5.0 (${join(proj, ".togo/docker/hello/releases.json")}) is ${repo()}@${gone}, which the registry no longer has; nothing was applied`);
      expect(r.stderr).toMatch(/✗ verify/);
      expect(r.stderr).not.toContain("pushed and recorded");
      unchanged();
    });

    test("a digest that is not one (a shell command in it): exit 2, entry and value named, the registry never asked", async () => {
      const { proj, unchanged } = checkout({ version: "0.5.0", digest: "sha256:zzz; rm -rf /", repository: repo(), pushedAt: "t" });
      const before = registry.requests().length;
      const r = await refused(proj, ["rollback", "0.5.0"]);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain(`releases.json: release "0.5.0" (releases[1]) has digest "sha256:zzz; rm -rf /", not a sha256 digest (sha256: and 64 lowercase hex digits); nothing was applied`);
      expect(registry.requests().length).toBe(before);
      unchanged();
    });

    test("an entry of another repository: exit 1, both repositories named", async () => {
      const { proj, unchanged } = checkout({ version: "0.5.0", digest: digestA, repository: "evil.example.com/team/hello", pushedAt: "t" });
      const r = await refused(proj, ["rollback", "0.5.0"]);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain(`release "0.5.0" (releases[1]) was pushed to evil.example.com/team/hello, not to ${repo()} (deploy.image); nothing was applied`);
      unchanged();
    });

    test("an entry with no digest or repository (undefined@undefined), as the default target: exit 2", async () => {
      const { proj, unchanged } = checkout({ version: "0.5.0", pushedAt: "t" });
      const r = await refused(proj, ["rollback"]);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain(`release "0.5.0" (releases[1]) has no digest; nothing was applied`);
      expect(r.stderr).not.toContain("undefined");
      unchanged();
    });

    test("a current version the history does not list: a clear error (exit 2), not a crash", async () => {
      const { proj, unchanged } = checkout({ version: "1.0.0", digest: digestA, repository: repo(), pushedAt: "t" }, { current: "9.9.9" });
      const r = await refused(proj, ["rollback"]);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain('says the current version is "9.9.9", but lists no such release');
      expect(r.stderr).toContain("togo rollback VERSION");
      expect(r.stderr).not.toMatch(/TypeError|Cannot read/);
      unchanged();
      // Naming the version works as before.
      const named = await togo(["rollback", "1.0.0"], { cwd: proj, env });
      expect(named.stderr).toMatch(/✓ verify/);
      expect(named.stderr).toContain(`Version 1.0.0 (${digestA}) is pushed and recorded`);
    });
  });

  test("source: registry deploys an image already pushed (built elsewhere) without pushing", async () => {
    const ci = tempDir("togo-docker-prebuilt-");
    writeFiles(ci, { "togo.yaml": config().replace("source: oci:build/image", "source: registry") });
    const before = registry.requests().length;
    const r = await togo(["deploy", "--version", "2.0.0"], { cwd: ci, env });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`Version 2.0.0 (${digestB}) is pushed and recorded`);
    expect(writes(registry.requests().slice(before))).toEqual([]);
    const absent = await togo(["deploy", "--version", "3.0.0"], { cwd: ci, env });
    expect(absent.exitCode).toBe(1);
    expect(absent.stderr).toContain("team/hello:3.0.0 is not in the registry");
  });

  test("a missing secret fails the deploy before anything is pushed, naming the secret only", async () => {
    writeFileSync(join(dir, "togo.yaml"), config());
    const before = registry.requests().length;
    const r = await togo(["deploy", "--version", "4.0.0"], { cwd: dir, env: {} });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("secret API_TOKEN (env): environment variable API_TOKEN is not set");
    expect(registry.requests().length).toBe(before);
  });
  test("a failing pre_deploy hook stops the deploy before the push: exit 1, the hook named, nothing written", async () => {
    const proj = tempDir("togo-docker-predeploy-");
    writeFiles(proj, { "togo.yaml": config("", { pre_deploy: "exit 3" }).replace("source: oci:build/image", `source: oci:${join(dir, "build", "image")}`) });
    const before = registry.requests().length;
    const r = await togo(["deploy", "--version", "5.0.0"], { cwd: proj, env });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("the pre_deploy hook exited 3: exit 3; nothing was changed on any target");
    expect(r.stderr).toMatch(/✓ build/);
    expect(r.stderr).not.toMatch(/push/);
    expect(writes(registry.requests().slice(before))).toEqual([]);
    expect(await registry.manifestDigest("team/hello", "5.0.0")).toBeUndefined();
    expect(existsSync(join(proj, ".togo", "docker", "hello", "releases.json"))).toBe(false);
  });

  test("post_deploy and post_rollback fire once the stack is applied, with the docker facts", async () => {
    // The kreuzwerker/docker provider cannot run on this machine: the stand-in takes the place of the
    // terraform apply only, and reads what the provider would get (the synthesized stack).
    const pinned: string[] = [];
    const applyStack: StackApply = async (spec, stacks) => {
      const json = JSON.parse(readFileSync(join(stackDir(spec, stacks[0].name), "cdk.tf.json"), "utf8")) as { resource: { docker_image: { image: { name: string } } } };
      pinned.push(json.resource.docker_image.image.name);
      return [{ stack: stacks[0].name, applied: true, outputs: { url: "http://127.0.0.1:8080" } }];
    };
    const proj = tempDir("togo-docker-posthooks-");
    const out = tempDir("togo-docker-hook-env-");
    const dump = (name: string) => `env | grep '^TOGO_' | sort > ${join(out, `${name}.env`)}`;
    const yaml = [
      "app: hello",
      "deploy:",
      "  provider: docker",
      `  image: ${registry.address}/team/hooked`,
      `  options: { source: 'oci:${join(dir, "build", "image")}', insecure_registry: true, docker_host: 'tcp://127.0.0.1:2375' }`,
      "hooks:",
      ...["pre_deploy", "post_deploy", "post_rollback", "on_failure"].map((h) => `  ${h}: ${JSON.stringify(dump(h))}`),
      "",
    ].join("\n");
    const spec = parseConfig(yaml, join(proj, "togo.yaml"), {});
    const read = (name: string) => Object.fromEntries(readFileSync(join(out, `${name}.env`), "utf8").trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
    const driver = (version?: string) => new DockerDriver({ log: createReporter({ quiet: true }), opts: { force: false, yes: false, lockWait: 0, json: false, version } }, applyStack);

    const first = await driver("6.0.0").deploy(spec);
    expect(first.message).toMatch(/^deployed hello 6\.0\.0 \(sha256:.*, pushed\)$/);
    expect(first.url).toBe("http://127.0.0.1:8080");
    const facts = { TOGO_APP: "hello", TOGO_DRIVER: "docker", TOGO_HOSTS: "tcp://127.0.0.1:2375" };
    expect(read("post_deploy")).toMatchObject({ ...facts, TOGO_COMMAND: "deploy", TOGO_VERSION: "6.0.0", TOGO_PREVIOUS_VERSION: "" });
    expect(Number(read("post_deploy").TOGO_RUNTIME)).toBeGreaterThanOrEqual(0);
    expect(await registry.manifestDigest("team/hooked", "6.0.0")).toBe(digestB);

    await driver("7.0.0").deploy(spec);
    expect(read("post_deploy")).toMatchObject({ ...facts, TOGO_VERSION: "7.0.0", TOGO_PREVIOUS_VERSION: "6.0.0" });
    expect(read("pre_deploy")).toMatchObject({ TOGO_VERSION: "7.0.0", TOGO_PREVIOUS_VERSION: "6.0.0" });

    const back = await driver().rollback(spec, "6.0.0");
    expect(back.message).toBe(`rolled hello back to 6.0.0 (${digestB})`);
    expect(read("post_rollback")).toMatchObject({ ...facts, TOGO_COMMAND: "rollback", TOGO_VERSION: "6.0.0", TOGO_PREVIOUS_VERSION: "7.0.0" });
    expect(existsSync(join(out, "on_failure.env"))).toBe(false);
    expect(pinned).toEqual([`${registry.address}/team/hooked@${digestB}`, `${registry.address}/team/hooked@${digestB}`, `${registry.address}/team/hooked@${digestB}`]);
  });
});
