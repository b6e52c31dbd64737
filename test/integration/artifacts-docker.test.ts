// The build proxy with --isolation docker, for real: a private dockerd (its own network namespace,
// unix socket) and a build image made from this machine's sh, make and coreutils (no base image,
// no registry). The build must run inside the container: it reads a file only the image has, and
// make comes from the image; GOOS/GOARCH reach it; the container has no network.
import { chmodSync, copyFileSync, mkdirSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { cleanupTempDirs, tempDir } from "../helpers/index.js";
import { createNetns, startDockerd, type Dockerd, type Netns } from "../helpers/dockerd.js";
import { sharedLibraries } from "../helpers/oci.js";
import { GitFixture, startProxy, waitBuild, type Proxy } from "../helpers/artifacts.js";

let netns: Netns | undefined;
let dockerd: Dockerd | undefined;
let proxy: Proxy | undefined;

const TOOLS = ["/bin/sh", "/usr/bin/make", "/usr/bin/mkdir", "/usr/bin/cat", "/usr/bin/printf", "/usr/bin/id"];

function importBuildImage(host: string): void {
  const root = tempDir("togo-buildimg-");
  for (const file of new Set([...TOOLS, ...TOOLS.flatMap((t) => sharedLibraries(t))])) {
    const dest = join(root, file);
    mkdirSync(dirname(dest), { recursive: true });
    copyFileSync(file, dest);
    chmodSync(dest, 0o755);
  }
  mkdirSync(join(root, "etc"), { recursive: true });
  execFileSync("sh", ["-c", `printf 'inside the build image' > ${join(root, "etc", "togo-build-image")}; mkdir -p ${join(root, "tmp")}; chmod 1777 ${join(root, "tmp")}`]);
  const tar = execFileSync("tar", ["-C", root, "-cf", "-", "."], { maxBuffer: 1 << 30 });
  execFileSync("docker", ["import", "-c", 'ENV PATH=/usr/bin:/bin', "-", "togo-build:1"], { input: tar, env: { ...process.env, DOCKER_HOST: host }, maxBuffer: 1 << 20 });
}

beforeAll(async () => {
  netns = createNetns();
  dockerd = await startDockerd(netns, []);
  importBuildImage(dockerd.host);
}, 300_000);

afterAll(async () => {
  await proxy?.stop();
  await dockerd?.stop();
  netns?.remove();
  cleanupTempDirs();
});

test("isolation docker: build_cmd and make run in the image on the DOCKER_HOST daemon, with GOOS/GOARCH; the artifact comes back out", async () => {
  const root = tempDir("togo-proxy-docker-");
  const repos = new GitFixture(root);
  await repos.create("boxed", {
    "togo.yaml": `app: boxed\ndeploy:\n  build_cmd: "mkdir -p out; printf '%s %s/%s uid=%s' \\"$(cat /etc/togo-build-image)\\" \\"$GOOS\\" \\"$GOARCH\\" \\"$(id -u)\\" > out/app"\n  binary: out/app\n`,
  });
  await repos.create("made", { Makefile: "all:\n\tmkdir -p bin\n\tcat /etc/togo-build-image > bin/marker\n\tprintf '%s' \"$$TOGO_ARCH\" > bin/arch\n" });
  proxy = await startProxy(["--store", join(root, "store"), "--git-url", repos.gitUrl, "--work-dir", join(root, "work"), "--isolation", "docker", "--image", "togo-build:1"], {
    cwd: root,
    env: { DOCKER_HOST: dockerd!.host },
  });
  const boxed = `${proxy.url}/example.test/acme/boxed/linux/s390x/main`;
  const { build_id } = (await (await fetch(boxed, { method: "POST" })).json()) as { build_id: string };
  const done = await waitBuild(proxy.url, build_id);
  const log = await (await fetch(`${proxy.url}/builds/${build_id}/logs`)).text();
  expect({ state: done.state, log }).toMatchObject({ state: "succeeded" });
  expect(log).toContain("in togo-build:1");
  expect(await (await fetch(boxed)).text()).toBe(`inside the build image linux/s390x uid=${process.getuid!()}`);

  const made = `${proxy.url}/example.test/acme/made/linux/arm64/main`;
  const second = (await (await fetch(made, { method: "POST" })).json()) as { build_id: string };
  expect(await waitBuild(proxy.url, second.build_id)).toMatchObject({ state: "succeeded" });
  const tgz = join(root, "made.tar.gz");
  const { writeFileSync } = await import("node:fs");
  writeFileSync(tgz, Buffer.from(await (await fetch(made)).arrayBuffer()));
  expect(execFileSync("tar", ["-tzf", tgz], { encoding: "utf8" }).trim().split("\n")).toEqual(["bin/arch", "bin/marker"]);
  expect(execFileSync("tar", ["-xzOf", tgz, "bin/marker"], { encoding: "utf8" })).toBe("inside the build image");
  expect(execFileSync("tar", ["-xzOf", tgz, "bin/arch"], { encoding: "utf8" })).toBe("arm64");
}, 300_000);
