// togo dev --type docker when no Docker daemon answers at DOCKER_HOST (a closed port on loopback):
// target not found, through the manager and through the built CLI, and nothing is left behind.
// Needs only the docker CLI (no daemon).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseConfig } from "../../src/config/load.js";
import { createReporter } from "../../src/core/log.js";
import { workspaceOf } from "../../src/core/workspace.js";
import { registerBuiltinReloaders } from "../../src/dev/index.js";
import { newReloader, ReloaderTargetNotFoundError } from "../../src/dev/reloader.js";
import { cleanupTempDirs, freePort, tempDir, togo, writeFiles } from "../helpers/index.js";

afterAll(() => cleanupTempDirs());

const YAML = `app: nodaemon
deploy:
  provider: docker
  image: 127.0.0.1:5000/nodaemon
  app_port: 3000
dev: { type: docker, port: 4199 }
`;

test("docker: no daemon at DOCKER_HOST is ReloaderTargetNotFoundError naming the address and what to do", async () => {
  registerBuiltinReloaders();
  const dir = tempDir("togo-dev-nodaemon-");
  writeFiles(dir, { "togo.yaml": YAML, Dockerfile: "FROM scratch\n" });
  const closed = await freePort();
  const saved = process.env.DOCKER_HOST;
  process.env.DOCKER_HOST = `tcp://127.0.0.1:${closed}`;
  const lines: string[] = [];
  try {
    const spec = parseConfig(YAML, join(dir, "togo.yaml"), {});
    const config = { spec, log: createReporter({ stream: { write: (s: string) => (lines.push(s), true) }, color: false }), stateFile: workspaceOf(spec).devStateFile, env: {} };
    const manager = await newReloader("docker");
    expect(manager.validate(config)).toEqual([]);
    const err = await manager.run(config, new AbortController().signal).then(() => undefined, (e: Error) => e);
    expect({ err: String(err), lines }).toMatchObject({ err: expect.stringContaining(`no Docker daemon answers at tcp://127.0.0.1:${closed}`) });
    expect(err).toBeInstanceOf(ReloaderTargetNotFoundError);
    expect(err!.message).toContain("start Docker or point DOCKER_HOST at the dev daemon");
    expect(existsSync(config.stateFile)).toBe(false);
  } finally {
    if (saved === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = saved;
  }
}, 60_000);

test("docker through the CLI: exit 1 with the address; togo dev status then says not-deployed (exit 3)", async () => {
  const dir = tempDir("togo-dev-nodaemon-cli-");
  writeFiles(dir, { "togo.yaml": YAML, Dockerfile: "FROM scratch\n" });
  const closed = await freePort();
  const env = { DOCKER_HOST: `tcp://127.0.0.1:${closed}` };
  const r = await togo(["dev"], { cwd: dir, env, timeout: 60_000 });
  expect({ code: r.exitCode, stderr: r.stderr }).toMatchObject({ code: 1, stderr: expect.stringContaining(`no Docker daemon answers at tcp://127.0.0.1:${closed}`) });
  const s = await togo(["dev", "status", "--json"], { cwd: dir, env });
  expect({ code: s.exitCode, out: s.stdout, err: s.stderr }).toMatchObject({ code: 3, out: expect.stringContaining('"state": "not-deployed"') });
}, 60_000);
