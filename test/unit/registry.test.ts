// The driver registry and the Service's choice of driver.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createReporter } from "../../src/core/log.js";
import { createDriver, drivers, registerDriver, unregisterDriver, type DriverContext } from "../../src/core/registry.js";
import { registerBuiltinDrivers } from "../../drivers/index.js";
import { openService } from "../../src/cli/service.js";
import type { Driver } from "../../src/core/spec.js";
import { UnknownDriverError, UnsupportedOperationError } from "../../src/core/errors.js";
import { cleanupTempDirs, tempDir, togo, writeFiles } from "../helpers/index.js";

afterAll(cleanupTempDirs);

const quiet = createReporter({ quiet: true });
function fakeDriver(name: string): Driver {
  const unsupported = (op: string) => async (): Promise<never> => {
    throw new UnsupportedOperationError(name, op);
  };
  return { name, stacks: () => [], provision: unsupported("provision"), deploy: unsupported("deploy"), destroy: unsupported("destroy"), status: unsupported("status") };
}

test("drivers() lists registered names sorted, built-ins included", async () => {
  registerBuiltinDrivers();
  registerDriver("zeta-test", () => fakeDriver("zeta-test"));
  registerDriver("alpha-test", () => fakeDriver("alpha-test"));
  try {
    const names = drivers();
    expect(names).toEqual([...names].sort());
    expect(names).toEqual(expect.arrayContaining(["alpha-test", "local", "zeta-test"]));
  } finally {
    unregisterDriver("zeta-test");
    unregisterDriver("alpha-test");
  }
});

test("an unknown driver is a usage error that lists the known ones", async () => {
  registerBuiltinDrivers();
  const ctx = { log: quiet, opts: { force: false, yes: false, lockWait: 0, json: false } } as DriverContext;
  await expect(createDriver("nope", ctx)).rejects.toThrow(UnknownDriverError);
  await expect(createDriver("nope", ctx)).rejects.toThrow(/known drivers: aws, docker, local, vps/);
  await expect(createDriver("nope", ctx)).rejects.toMatchObject({ exitCode: 2 });
});

test("built-in drivers are known by name before their modules load, and load when asked for", async () => {
  registerBuiltinDrivers();
  expect(drivers()).toEqual(expect.arrayContaining(["aws", "docker", "local", "vps"]));
  const ctx = { log: quiet, opts: { force: false, yes: false, lockWait: 0, json: false } } as DriverContext;
  expect((await createDriver("local", ctx)).name).toBe("local");
});

test("a driver name must be a plain name", () => {
  expect(() => registerDriver("Bad Name", () => fakeDriver("x"))).toThrow(/must match/);
});

describe("the Service picks the driver: DEPLOY_PROVIDER wins over deploy.provider", () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir();
    writeFiles(dir, { "togo.yaml": "app: pick\ndeploy:\n  provider: local\n  binary: server.js\n  run: node server.js\n", "server.js": "" });
    registerDriver("picked-test", () => fakeDriver("picked-test"));
  });
  afterAll(() => unregisterDriver("picked-test"));

  test("deploy.provider when DEPLOY_PROVIDER is unset", async () => {
    const { driver, spec } = await openService(join(dir, "togo.yaml"), quiet, {}, {});
    expect(driver.name).toBe("local");
    expect(spec.provider).toBe("local");
  });

  test("DEPLOY_PROVIDER when set", async () => {
    const { driver, spec } = await openService(join(dir, "togo.yaml"), quiet, {}, { DEPLOY_PROVIDER: "picked-test" });
    expect(driver.name).toBe("picked-test");
    expect(spec.provider).toBe("picked-test");
  });

  test("an unknown DEPLOY_PROVIDER names where it came from", async () => {
    await expect(openService(join(dir, "togo.yaml"), quiet, {}, { DEPLOY_PROVIDER: "nosuch" })).rejects.toThrow(/unknown driver "nosuch" \(from DEPLOY_PROVIDER\)/);
  });

  test("an unsupported operation is a typed, clearly worded error", async () => {
    const { driver, spec } = await openService(join(dir, "togo.yaml"), quiet, {}, { DEPLOY_PROVIDER: "picked-test" });
    await expect(driver.deploy(spec)).rejects.toThrow('the picked-test driver does not support "deploy"');
  });

  test("the CLI: togo drivers, and DEPLOY_PROVIDER through the environment", async () => {
    const list = await togo(["drivers", "--json"], { cwd: dir });
    expect(JSON.parse(list.stdout)).toEqual(expect.arrayContaining(["local"]));
    const r = await togo(["status"], { cwd: dir, env: { DEPLOY_PROVIDER: "nosuch" } });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('unknown driver "nosuch" (from DEPLOY_PROVIDER)');
  });
});

test("plugins: an npm package named under plugins: registers its driver", async () => {
  const dir = tempDir();
  const pkg = join(dir, "node_modules", "togo-driver-echo");
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: "togo-driver-echo", type: "module", main: "index.js" }));
  writeFileSync(
    join(pkg, "index.js"),
    `export default function register({ registerDriver }) {
  registerDriver("echo", () => ({ name: "echo", stacks: () => [], provision: async () => ({ message: "p", raw: {} }), deploy: async (s) => ({ message: "echo " + s.app, raw: {} }), destroy: async () => {}, status: async () => ({ state: "ready", healthy: true, outputs: {}, message: "echo" }) }));
}\n`,
  );
  writeFiles(dir, { "togo.yaml": "app: plug\nplugins: [togo-driver-echo]\ndeploy:\n  provider: echo\n" });
  const r = await togo(["status", "--json"], { cwd: dir });
  expect({ exit: r.exitCode, err: r.stderr }).toMatchObject({ exit: 0 });
  expect(JSON.parse(r.stdout)).toMatchObject({ app: "plug", driver: "echo", state: "ready" });

  writeFiles(dir, { "togo.yaml": "app: plug\nplugins: [togo-driver-missing]\ndeploy:\n  provider: echo\n" });
  const missing = await togo(["status"], { cwd: dir });
  expect(missing.exitCode).toBe(2);
  expect(missing.stderr).toContain("npm install togo-driver-missing");
});
