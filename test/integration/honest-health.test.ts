// Deploys that never lie, on the local driver with real processes: a release that answers its
// health check and then dies is not deployed (the previous one keeps serving), and a release whose
// port is already held by another server is not deployed though that server answers 2xx.
import { copyFileSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "@jest/globals";
import { cleanupTempDirs, EXAMPLE, freePort, killPidFile, ROOT, tempDir, togo, type CliResult } from "../helpers/index.js";

let dir: string;
let port: number;
const appDir = () => join(dir, ".togo", "honest");
const yaml = (binary: string, extra = "", app = "honest", p = port) => `app: ${app}
deploy:
  provider: local
  binary: ${binary}
  run: node ${binary}
  app_port: ${p}
  healthcheck: { path: /up, timeout: 10, interval: 0.1${extra} }
  env: { CRASH_AFTER_MS: "500" }
terraform: { engine: terraform }
`;
function ok(r: CliResult): CliResult {
  if (r.exitCode !== 0) throw new Error(`togo exited ${r.exitCode}\n--- stderr ---\n${r.stderr}\n--- stdout ---\n${r.stdout}`);
  return r;
}
const body = async (p = port) => (await fetch(`http://127.0.0.1:${p}/`)).text();

beforeAll(async () => {
  port = await freePort();
  dir = tempDir("togo-honest-");
  copyFileSync(join(EXAMPLE, "server.js"), join(dir, "server.js"));
  copyFileSync(join(ROOT, "test", "fixtures", "crashy.js"), join(dir, "crashy.js"));
  writeFileSync(join(dir, "togo.yaml"), yaml("server.js"));
  ok(await togo(["provision", "--yes"], { cwd: dir }));
  ok(await togo(["deploy", "--version", "1"], { cwd: dir }));
});

afterAll(async () => {
  for (const name of ["app", "candidate"]) await killPidFile(join(appDir(), "run", `${name}.pid`));
  await togo(["destroy", "--yes"], { cwd: dir });
  cleanupTempDirs();
});

test("a release that exits 0.5 s after its first 2xx fails within the default 2 s settle window; the previous keeps serving", async () => {
  writeFileSync(join(dir, "crash.yaml"), yaml("crashy.js"));
  const r = await togo(["deploy", "-c", "crash.yaml", "--version", "2"], { cwd: dir });
  expect({ exit: r.exitCode, stderr: r.stderr }).toMatchObject({ exit: 1 });
  expect(r.stderr).toMatch(/release 2 failed its health check \(GET \/up: it answered, then (connection refused|ECONNRESET)[^)]*settle window/);
  expect(r.stderr).toContain("1 keeps serving");
  expect(readlinkSync(join(appDir(), "current"))).toBe("v1");
  expect(await body()).toBe("hello from 1\n");
  expect(readFileSync(join(appDir(), ".failed"), "utf8")).toBe("2\n");
  const s = await togo(["status", "--json"], { cwd: dir });
  expect(JSON.parse(s.stdout)).toMatchObject({ state: "ready", version: "1" });
});

test("a release that exits 3 s after its first 2xx fails with settle: 4", async () => {
  writeFileSync(join(dir, "slow.yaml"), yaml("crashy.js", ", settle: 4").replace('"500"', '"3000"'));
  const r = await togo(["deploy", "-c", "slow.yaml", "--version", "3"], { cwd: dir });
  expect({ exit: r.exitCode, stderr: r.stderr }).toMatchObject({ exit: 1 });
  expect(r.stderr).toContain("settle window");
  expect(await body()).toBe("hello from 1\n");
});

test.each(["restart", "blue-green"])("%s: a port already held by another server that answers 2xx: not deployed, and the message names the holder", async (strategy) => {
  const other = await freePort();
  const squatter: Server = createServer((_q, s) => (s.writeHead(200), s.end("someone else\n")));
  await new Promise<void>((r) => squatter.listen(other, "127.0.0.1", r));
  try {
    writeFileSync(join(dir, "taken.yaml"), yaml("server.js", "", "taken", other).replace("deploy:\n", `deploy:\n  strategy: ${strategy}\n`));
    ok(await togo(["provision", "-c", "taken.yaml", "--yes"], { cwd: dir }));
    const r = await togo(["deploy", "-c", "taken.yaml", "--version", "1"], { cwd: dir });
    expect({ exit: r.exitCode, stderr: r.stderr }).toMatchObject({ exit: 1 });
    // restart: the app itself cannot bind app_port; blue-green: the app's own Caddy cannot.
    const holder = `port ${other} is held by another process \\(pid ${process.pid}, node\\)`;
    expect(r.stderr).toMatch(
      strategy === "restart"
        ? new RegExp(`release 1 passed verification but failed on port ${other} \\(${holder}, not by this release`)
        : new RegExp(`${holder}, so the app's own Caddy cannot listen there`),
    );
    expect(r.stderr).toContain("nothing is serving");
    expect(await body(other)).toBe("someone else\n");
    const s = await togo(["status", "-c", "taken.yaml", "--json"], { cwd: dir });
    expect(JSON.parse(s.stdout).state).not.toBe("ready");
    await togo(["destroy", "-c", "taken.yaml", "--yes"], { cwd: dir });
  } finally {
    squatter.closeAllConnections();
    squatter.close();
  }
});
