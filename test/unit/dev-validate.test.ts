// Each reloader's validate runs before anything does: paths that a build, a clone or a generator
// makes later are not problems (the reloader reports them when it needs them).
import { join } from "node:path";
import { parseConfig } from "../../src/config/load.js";
import { createReporter } from "../../src/core/log.js";
import { workspaceOf } from "../../src/core/workspace.js";
import { registerBuiltinReloaders } from "../../src/dev/index.js";
import { newReloader } from "../../src/dev/reloader.js";
import { cleanupTempDirs, tempDir } from "../helpers/index.js";

afterAll(() => cleanupTempDirs());
beforeAll(() => registerBuiltinReloaders());

function config(yaml: string) {
  // An empty project folder: nothing the config names exists in it.
  const dir = tempDir("togo-dev-validate-");
  const spec = parseConfig(yaml, join(dir, "togo.yaml"), {});
  return { spec, log: createReporter({ quiet: true }), stateFile: workspaceOf(spec).devStateFile, env: {} };
}

test("sync: deploy.binary that does not exist yet (build_cmd makes it) is no problem", async () => {
  const c = config("app: a\ndeploy:\n  provider: vps\n  host: 10.0.0.1\n  user: deploy\n  build_cmd: make\n  binary: dist/server.js\n  run: node server.js\ndev: { type: sync }\n");
  expect((await newReloader("sync")).validate(c)).toEqual([]);
});

test("process: a dev.watch path that does not exist yet is no problem", async () => {
  const c = config("app: a\ndeploy:\n  provider: local\n  binary: server.js\n  run: node server.js\n  app_port: 4000\ndev: { watch: [gen, generated/**/*.js] }\n");
  expect((await newReloader("process")).validate(c)).toEqual([]);
});

test("docker: a Dockerfile that does not exist yet is no problem when build_cmd is set, a problem without", async () => {
  const saved = process.env.DOCKER_HOST;
  delete process.env.DOCKER_HOST;
  try {
    const base = "app: a\ndeploy:\n  provider: docker\n  app_port: 3000\n";
    expect((await newReloader("docker")).validate(config(`${base}  build_cmd: ./gen-dockerfile.sh\ndev: { type: docker }\n`))).toEqual([]);
    expect((await newReloader("docker")).validate(config(`${base}dev: { type: docker }\n`)).map((p) => p.path)).toEqual(["dev.type"]);
  } finally {
    if (saved !== undefined) process.env.DOCKER_HOST = saved;
  }
});
