// togo dev's `sync` reloader on a REAL systemd host (a booted Debian bookworm container, see
// test/helpers/systemd-hosts.ts): the live release runs as a systemd user unit (deployed with the
// CLI); the development copy runs beside it under togo's process manager, an edit is served
// through the forward on dev.port, and the abort removes the copy. The unit's MainPID, its
// `current` and its answer never change.
import { afterAll, beforeAll, expect, test } from "@jest/globals";
import { readFileSync, writeFileSync } from "node:fs";
import { get } from "node:http";
import { join } from "node:path";
import { parseConfig } from "../../src/config/load.js";
import { createReporter } from "../../src/core/log.js";
import { workspaceOf } from "../../src/core/workspace.js";
import { newReloader, type DevConfig } from "../../src/dev/reloader.js";
import "../../src/dev/sync.js";
import { cleanupTempDirs, freePort, helloProject, togo } from "../helpers/index.js";
import { startSystemdHost, type SystemdHost } from "../helpers/systemd-hosts.js";

const UNIT = "togo-hello.service";
const APP_DIR = "/home/deploy/apps/hello";
let host: SystemdHost;
let dir: string;
let devPort: number;

const sh = async (cmd: string) => (await host.exec(cmd)).stdout.trim();
const userctl = (args: string) => sh(`runuser -u deploy -- env XDG_RUNTIME_DIR=/run/user/1000 systemctl --user ${args}`);
const liveBody = () => sh("curl -s http://127.0.0.1:3000/");

function fetchText(url: string): Promise<string> {
  return new Promise((resolve) => {
    const req = get(url, { timeout: 5000 }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve(body));
    });
    req.on("error", () => resolve(""));
    req.on("timeout", () => req.destroy());
  });
}

async function until(what: string, fn: () => Promise<string>, want: string, diag: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  let last = await fn();
  while (last !== want) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}\n${diag()}`);
    await new Promise((r) => setTimeout(r, 50));
    last = await fn();
  }
}

const yaml = () => `app: hello
deploy:
${host.deployKeys}
  binary: server.js
  run: node server.js
  app_port: 3000
  strategy: restart
  healthcheck: { path: /up, timeout: 30, interval: 0.2, settle: 0 }
  env: { GREETING: live }
  options: { service: systemd }
dev:
  type: sync
  port: ${devPort}
  env: { GREETING: dev }
`;

beforeAll(async () => {
  host = await startSystemdHost();
  devPort = await freePort();
  // What provision's bootstrap does for a systemd deploy (tested in vps-systemd.test.ts).
  await host.exec("loginctl enable-linger deploy && until systemctl is-active -q user@1000.service; do sleep 0.1; done", { timeoutMs: 60_000 });
  dir = helloProject(yaml());
  const r = await togo(["deploy", "--version", "1"], { cwd: dir, timeout: 180_000 });
  if (r.exitCode !== 0) throw new Error(`togo deploy failed (${r.exitCode})\n${r.stdout}\n${r.stderr}`);
}, 15 * 60_000);

afterAll(async () => {
  await host?.stop();
  cleanupTempDirs();
}, 120_000);

test("the copy runs beside the systemd unit: an edit is served through dev.port, exit removes the copy, the unit never moves", async () => {
  expect(await userctl(`is-active ${UNIT}`)).toBe("active");
  const mainPid = await userctl(`show -p MainPID --value ${UNIT}`);
  expect(await liveBody()).toBe("live from 1");

  const spec = parseConfig(yaml(), join(dir, "togo.yaml"), {});
  const lines: string[] = [];
  const config: DevConfig = {
    spec,
    log: createReporter({ stream: { write: (s: string) => (lines.push(s), true) }, progress: false, color: false }),
    stateFile: workspaceOf(spec).devStateFile,
    env: { ...spec.env, ...spec.dev.env },
  };
  const diag = () => `--- togo dev output\n${lines.join("")}`;
  const manager = await newReloader("sync");
  const stop = new AbortController();
  const running = manager.run(config, stop.signal);
  try {
    const url = `http://127.0.0.1:${devPort}/`;
    await until("the copy through dev.port", () => fetchText(url), "dev from dev\n", diag);
    expect(await sh(`test -d ${APP_DIR}-dev/vdev && echo present`)).toBe("present");
    writeFileSync(join(dir, "server.js"), readFileSync(join(dir, "server.js"), "utf8").replace("${greeting} from", "${greeting} edited from"));
    await until("the edit through dev.port", () => fetchText(url), "dev edited from dev\n", diag);
    // The live unit serves the release it served, from the same process.
    expect(await liveBody()).toBe("live from 1");
    expect(await userctl(`show -p MainPID --value ${UNIT}`)).toBe(mainPid);
  } finally {
    stop.abort();
    await running;
  }
  expect(await sh(`test -e ${APP_DIR}-dev && echo present || echo gone`)).toBe("gone");
  // No process of deploy runs from the copy any more.
  expect(await sh(`for p in $(pgrep -u deploy); do readlink /proc/$p/cwd; done | grep -c -- -dev/ || true`)).toBe("0");
  expect(await userctl(`is-active ${UNIT}`)).toBe("active");
  expect(await userctl(`show -p MainPID --value ${UNIT}`)).toBe(mainPid);
  expect(await sh(`readlink ${APP_DIR}/current`)).toBe("v1");
  expect(await liveBody()).toBe("live from 1");
}, 240_000);
