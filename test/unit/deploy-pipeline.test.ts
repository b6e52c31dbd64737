// Every branch of the deploy and rollback pipelines that protects a user, against a recording fake
// transport: the undo after a failed cutover (deploy and rollback), the same-version/different-bytes
// guard, the failure record after a failed release_cmd, the lock always given back, interrupts at
// every kind of stage, and the user hooks with their environment.
import { execa } from "execa";
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, test } from "@jest/globals";
import { parseConfig } from "../../src/config/load.js";
import { HookError, InterruptedError, LockHeldError, OperationError, UsageError } from "../../src/core/errors.js";
import { createReporter } from "../../src/core/log.js";
import type { RunOptions, Spec, Target } from "../../src/core/spec.js";
import { LocalTransport } from "../../src/exec/local.js";
import { defaultVersion } from "../../src/ship/artifact.js";
import { shippingOptions, shippingSchema } from "../../src/ship/options.js";
import { versionedRelease } from "../../src/ship/release.js";
import { LOCK_HELD, releaseDir } from "../../src/ship/scripts.js";
import { cleanupTempDirs, tempDir } from "../helpers/index.js";
import { FakeTransport } from "../helpers/fake-transport.js";

afterAll(cleanupTempDirs);
const fakes: FakeTransport[] = [];
afterEach(async () => {
  for (const f of fakes.splice(0)) await f.close();
});

const APP_PORT = 3999;
const CANDIDATE = 20001;

function project(extra = "", env: Record<string, string> = {}): Spec {
  const dir = tempDir("togo-pipeline-");
  writeFileSync(join(dir, "server.js"), "// the artifact\n");
  const yaml = `app: hello
deploy:
  provider: local
  binary: server.js
  run: node server.js
  app_port: ${APP_PORT}
  app_dir: /srv/hello
  healthcheck: { path: /up, timeout: 1, interval: 0.05, settle: 0.2 }
${extra}`;
  return parseConfig(yaml, join(dir, "togo.yaml"), env);
}

/** A host where release 1 serves and everything answers as a healthy host would. */
function host(): FakeTransport {
  const f = new FakeTransport();
  fakes.push(f);
  f.on("current", { stdout: "1\n" })
    .on("upload.has", { stdout: "no\n" })
    .on("release.sha", { stdout: "" })
    .on("port.free", { stdout: `${CANDIDATE}\n` })
    .on("candidate.status", { stdout: "running 42\n" })
    .on("candidate.owns", { stdout: "ours\n" })
    .on("service.status", { stdout: "running 43\n" })
    .on("service.owns", { stdout: "ours\n" })
    .on("releases", { stdout: "current=1\n1 0\n0.9 0\n" });
  return f;
}

function shipping(f: FakeTransport, opts: Partial<RunOptions> = {}, signal?: AbortSignal) {
  return versionedRelease({
    driver: "test",
    ctx: { log: createReporter({ quiet: true }), opts: { force: false, yes: false, lockWait: 0, json: false, version: "2", ...opts }, signal },
    options: shippingOptions(shippingSchema.parse({})),
    front: "own",
    open: { transport: f, serviceMode: "process" },
    env: { MY_SECRET: "from-the-test", ...process.env },
  });
}

const targets = (spec: Spec): Target[] => [{ appDir: spec.appDir, url: "http://app" }];
/** Versions the service was restarted on: by a switch (move + restart in one command) or an undo. */
const restartedTo = (f: FakeTransport) => f.calls.filter((c) => c.op === "switch" || c.op === "service.restart").map((c) => /TOGO_VERSION=(\S+);/.exec(c.script)?.[1]);

describe("deploy", () => {
  test("the stages run in order and the lock is given back last", async () => {
    const spec = project();
    const f = host();
    const r = await shipping(f).deploy(spec, targets(spec));
    expect(r.message).toBe("deployed hello 2 (10 bytes uploaded)");
    expect(f.ops()).toEqual([
      "host.facts",
      "layout",
      "lock.acquire",
      "candidate.stop",
      "current",
      "env.next",
      "upload.has",
      "release.sha",
      "upload",
      "upload.store",
      "release.install",
      "port.free",
      "candidate.start",
      "candidate.owns",
      "candidate.owns",
      "front.own.stop",
      "switch",
      "service.owns",
      "service.owns",
      "record",
      "prune",
      "prune.uploads",
      "lock.release",
    ]);
    expect(f.of("env.next")[0].input).toBe("");
    expect(restartedTo(f)).toEqual(["2"]);
    // The verified candidate is stopped in the switch's own command, before the restart.
    expect(f.of("switch")[0].script).toMatch(/candidate\.pid[\s\S]*ln -s v2/);
    // Adjacent small scripts share a round trip: 22 commands in 15.
    expect(f.batches).toEqual([
      ["layout", "lock.acquire", "candidate.stop", "current"],
      ["env.next", "upload.has", "release.sha"],
      ["upload.store", "release.install"],
      ["prune", "prune.uploads"],
    ]);
    expect((r.raw as { hosts: { roundTrips: number }[] }).hosts[0].roundTrips).toBe(15);
  });

  test("a failed cutover is undone: the previous release and its env come back, the new one is recorded as failed", async () => {
    const spec = project();
    const f = host();
    f.health = (port) => (port === APP_PORT ? 500 : 200);
    const err = await shipping(f).deploy(spec, targets(spec)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OperationError);
    expect((err as Error).message).toMatch(/release 2 passed verification but failed on port 3999 \(500\); switched back to 1/);
    const restore = f.of("switch.restore");
    expect(restore).toHaveLength(1);
    expect(restore[0].script).toContain("mv -f .env.prev .env");
    expect(restore[0].script).toContain(`ln -s v1 "$t" && mv -Tf "$t" current`);
    expect(restartedTo(f)).toEqual(["2", "1"]);
    expect(f.of("record.failed")[0].script).toContain("printf '%s\\n' 2");
    expect(f.ops()).not.toContain("record");
    expect(f.ops().slice(-2)).toEqual(["lock.release", "current"]);
  });

  test("a failed first cutover stops the service and leaves nothing current", async () => {
    const spec = project();
    const f = host().on("current", { stdout: "" });
    f.health = (port) => (port === APP_PORT ? 503 : 200);
    await expect(shipping(f).deploy(spec, targets(spec))).rejects.toThrow(/nothing is serving/);
    expect(f.of("switch.restore")[0].script).toContain("rm -f current .env .env.prev");
    expect(f.ops()).toContain("service.stop");
  });

  test("a switch that could not move current restarts nothing: the old release keeps serving and the error says why", async () => {
    const spec = project();
    const f = host().on("switch", { code: 97, stderr: "mv: cannot move '.current.1' to 'current': Read-only file system\n" });
    await expect(shipping(f).deploy(spec, targets(spec))).rejects.toThrow(/switching current failed on deploy@fake:22 \(exit 97\):\nmv: cannot move/);
    expect(f.ops()).not.toContain("service.restart");
    expect(f.ops()).not.toContain("record");
    expect(f.ops()).toContain("lock.release");
  });

  test("the same version with different bytes while it is live is refused before anything is installed", async () => {
    const spec = project();
    const f = host().on("release.sha", { stdout: "0".repeat(64) });
    const err = await shipping(f, { version: "1" }).deploy(spec, targets(spec)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/release 1 is live with a different artifact/);
    expect(f.ops()).not.toContain("release.install");
    expect(f.ops()).not.toContain("switch");
    expect(f.ops()).not.toContain("record.failed");
    expect(f.ops().slice(-2)).toEqual(["lock.release", "current"]);
  });

  test("the same version with the same bytes reuses its folder", async () => {
    const spec = project();
    const sha = (await import("../../src/ship/artifact.js")).artifactSha256;
    const f = host().on("release.sha", { stdout: `${await sha(join(spec.dir, "server.js"))}\n` });
    await shipping(f, { version: "1" }).deploy(spec, targets(spec));
    expect(f.ops()).not.toContain("release.install");
    expect(f.ops()).toContain("switch");
  });

  test("a failed release_cmd records the release as failed and switches nothing", async () => {
    const spec = project("  release_cmd: node migrate.js\n");
    const f = host().on("release.cmd", { code: 3, stderr: "migration 7 failed\n" });
    const err = await shipping(f).deploy(spec, targets(spec)).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/release_cmd failed \(exit 3\) in release 2; 1 keeps serving\nmigration 7 failed/);
    expect(f.of("record.failed")).toHaveLength(1);
    expect(f.of("record.failed")[0].script).toContain("printf '%s\\n' 2");
    expect(f.ops()).not.toContain("candidate.start");
    expect(f.ops()).not.toContain("switch");
    expect(f.ops().slice(-2)).toEqual(["lock.release", "current"]);
  });

  test("a failed health check on the spare port stops the candidate, records the failure, switches nothing", async () => {
    const spec = project();
    const f = host();
    f.health = (port) => (port === CANDIDATE ? 500 : 200);
    f.on("logs.tail", { stdout: "boom: cannot connect\n" });
    await expect(shipping(f).deploy(spec, targets(spec))).rejects.toThrow(/release 2 failed its health check \(GET \/up: 500 .*1 keeps serving.*boom: cannot connect/s);
    expect(f.ops()).toContain("candidate.stop");
    expect(f.ops()).toContain("record.failed");
    expect(f.ops()).not.toContain("switch");
  });

  test("a candidate that exits is given up on at once, not after the whole timeout", async () => {
    const spec = project();
    spec.healthcheck.timeout = 30;
    const f = host().on("candidate.status", { stdout: "stopped\n" });
    f.health = () => 502;
    const started = Date.now();
    await expect(shipping(f).deploy(spec, targets(spec))).rejects.toThrow(/the process exited/);
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  test("a release that answers, then dies within the settle window, is not deployed", async () => {
    const spec = project();
    spec.healthcheck.settle = 1;
    const f = host();
    let healthy = 3;
    f.health = (port) => (port === CANDIDATE && healthy-- > 0 ? 200 : 502);
    const err = await shipping(f).deploy(spec, targets(spec)).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/release 2 failed its health check \(GET \/up: it answered, then 502 [\d.]+s into the 1s settle window/);
    expect(f.ops()).not.toContain("switch");
    expect(f.ops()).toContain("record.failed");
  });

  test("a release whose port is held by another server is not deployed, though that server answers 2xx", async () => {
    const spec = project();
    const f = host().on("service.owns", { stdout: "other 999 nginx\n" });
    const err = await shipping(f).deploy(spec, targets(spec)).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/release 2 passed verification but failed on port 3999 \(port 3999 is held by another process \(pid 999, nginx\), not by this release\); switched back to 1/);
    expect(restartedTo(f)).toEqual(["2", "1"]);
  });

  test("a release that exits after the switch fails at once and is switched back", async () => {
    const spec = project();
    spec.healthcheck.timeout = 30;
    const f = host().on("service.status", { stdout: "stopped\n" });
    f.health = (port) => (port === APP_PORT ? 502 : 200);
    const started = Date.now();
    await expect(shipping(f).deploy(spec, targets(spec))).rejects.toThrow(/failed on port 3999 \(502; the process exited\); switched back to 1/);
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  test("a held lock refuses the deploy before anything is uploaded, naming the holder", async () => {
    const spec = project();
    const f = host().on("lock.acquire", { code: LOCK_HELD, stdout: `holder=ci@build:1 time=${new Date().toISOString()} version=9 app=hello\n` });
    const err = await shipping(f).deploy(spec, targets(spec)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockHeldError);
    expect((err as Error).message).toMatch(/holds the lock on deploy@fake:22: holder=ci@build:1 .*version=9/);
    expect(f.ops()).not.toContain("upload");
    expect(f.ops()).not.toContain("lock.release");
  });

  test("an interrupt during verify stops the candidate, records the failure and gives the lock back", async () => {
    const spec = project();
    const f = host();
    const ctl = new AbortController();
    f.health = (port) => (port === CANDIDATE ? 503 : 200);
    f.on("candidate.start", () => (setTimeout(() => ctl.abort("SIGINT"), 50), {}));
    spec.healthcheck.timeout = 30;
    const err = await shipping(f, {}, ctl.signal).deploy(spec, targets(spec)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InterruptedError);
    expect((err as InterruptedError).exitCode).toBe(130);
    expect(f.ops()).toContain("candidate.stop");
    expect(f.ops()).toContain("record.failed");
    expect(f.ops()).not.toContain("switch");
    expect(f.ops().slice(-2)).toEqual(["lock.release", "current"]);
  });

  test("an interrupt after the switch does not call the live release failed", async () => {
    const spec = project();
    const f = host();
    const ctl = new AbortController();
    f.on("record", () => (ctl.abort("SIGTERM"), {}));
    const err = await shipping(f, {}, ctl.signal).deploy(spec, targets(spec)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InterruptedError);
    expect((err as InterruptedError).exitCode).toBe(143);
    expect(f.ops()).toContain("switch");
    expect(f.ops()).not.toContain("record.failed");
    expect(f.ops()).not.toContain("switch.restore");
    expect(f.ops().slice(-2)).toEqual(["lock.release", "current"]);
  });

  test("an interrupt right after the switch records the live release, so .versions says what serves", async () => {
    const spec = project();
    const f = host();
    const ctl = new AbortController();
    f.on("service.owns", (_c, nth) => (nth === 1 && ctl.abort("SIGINT"), { stdout: "ours\n" }));
    await expect(shipping(f, {}, ctl.signal).deploy(spec, targets(spec))).rejects.toBeInstanceOf(InterruptedError);
    expect(f.ops()).not.toContain("record.failed");
    expect(f.ops()).not.toContain("prune");
    expect(f.of("record")).toHaveLength(1);
    expect(f.of("record")[0].script).toContain("printf '%s\\n' 2");
  });

  test("a stale candidate left by a dead deploy is stopped once the lock is held, before anything else", async () => {
    const spec = project();
    const f = host();
    await shipping(f).deploy(spec, targets(spec));
    expect(f.ops().slice(1, 4)).toEqual(["layout", "lock.acquire", "candidate.stop"]);
    // In the lock's own round trip, with what serves read again under the lock.
    expect(f.batches[0]).toEqual(["layout", "lock.acquire", "candidate.stop", "current"]);
  });

  describe("hosts that set themselves up at first boot (cloud-init)", () => {
    const firstBoot = (f: FakeTransport, said: { text: string }) =>
      versionedRelease({
        driver: "test",
        ctx: { log: createReporter({ stream: { write: (s: string) => ((said.text += s), true), isTTY: false } as unknown as NodeJS.WriteStream, color: false }), opts: { force: false, yes: false, lockWait: 0, json: false, version: "2" } },
        options: shippingOptions(shippingSchema.parse({})),
        front: "own",
        firstBoot: true,
        open: { transport: f, serviceMode: "process" },
        env: process.env,
      });

    test("connect waits for it before anything reads the host, and says how long it waited", async () => {
      const spec = project();
      const f = host().on("boot.wait", { stdout: "7\n" });
      const said = { text: "" };
      await firstBoot(f, said).deploy(spec, targets(spec));
      expect(f.ops().slice(0, 2)).toEqual(["boot.wait", "host.facts"]);
      expect(f.of("boot.wait")).toHaveLength(1);
      expect(f.of("boot.wait")[0].script).toContain("/var/lib/cloud/instance/boot-finished");
      expect(said.text).toContain("deploy@fake:22: waited 7s for its first boot (cloud-init) to finish");
    });

    test("a first boot that does not finish stops the deploy before the lock, with the host's words", async () => {
      const spec = project();
      const f = host().on("boot.wait", { code: 1, stderr: "the first boot (cloud-init) has not finished after 600 s: see /var/log/cloud-init-output.log on the host\n" });
      const err = await firstBoot(f, { text: "" }).deploy(spec, targets(spec)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OperationError);
      expect((err as Error).message).toContain("has not finished after 600 s");
      expect(f.ops()).not.toContain("lock.acquire");
      expect(f.ops()).not.toContain("upload");
    });

    test("without it (every driver but aws) nothing waits", async () => {
      const spec = project();
      const f = host();
      await shipping(f).deploy(spec, targets(spec));
      expect(f.ops()).not.toContain("boot.wait");
    });
  });

  test("an interrupt that cuts the lock's round trip short gives back the lock it may have taken, only if it is its own", async () => {
    const spec = project();
    const f = host();
    const ctl = new AbortController();
    // The remote command was stopped after mkdir of the lock, before its part could say so.
    f.on("lock.acquire", () => (ctl.abort("SIGINT"), { code: 130, stderr: "interrupted" }));
    const err = await shipping(f, {}, ctl.signal).deploy(spec, targets(spec)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InterruptedError);
    const release = f.of("lock.release");
    expect(release).toHaveLength(1);
    expect(release[0].script).toMatch(/^if grep -qF '?[^' ]+:\d+:\d+'? \S+\/\.lock\/info/);
    expect(f.ops()).not.toContain("upload.store");
  });

  test("an interrupt before the lock touches nothing on the target", async () => {
    const spec = project();
    const f = host();
    const ctl = new AbortController();
    f.on("host.facts", () => (ctl.abort("SIGINT"), {}));
    await expect(shipping(f, {}, ctl.signal).deploy(spec, targets(spec))).rejects.toBeInstanceOf(InterruptedError);
    // what serves is read (and said) after the failure; nothing else ran
    expect(f.ops()).toEqual(["host.facts", "current"]);
  });
});

describe("rollback", () => {
  test("switches to the release before the current one, keeping the live env, and records it", async () => {
    const spec = project();
    const f = host();
    const r = await shipping(f).rollback(spec, targets(spec));
    expect(r.message).toBe("rolled back hello from 1 to 0.9; no release was deleted");
    expect(f.of("switch")[0].script).not.toContain(".env.next");
    expect(restartedTo(f)).toEqual(["0.9"]);
    expect(f.ops().slice(-2)).toEqual(["record", "lock.release"]);
  });

  test("a rollback whose release fails its health check is undone: the current release serves again", async () => {
    const spec = project();
    const f = host();
    f.health = (port) => (port === APP_PORT ? 500 : 200);
    const err = await shipping(f).rollback(spec, targets(spec), "0.9").catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/release 0.9 failed its health check after the rollback \(500\); switched back to 1/);
    const restore = f.of("switch.restore");
    expect(restore).toHaveLength(1);
    expect(restore[0].script).toContain(`ln -s v1 "$t" && mv -Tf "$t" current`);
    expect(restore[0].script).not.toContain(".env.prev");
    expect(restartedTo(f)).toEqual(["0.9", "1"]);
    expect(f.ops()).not.toContain("record");
    expect(f.ops().slice(-2)).toEqual(["lock.release", "current"]);
  });

  test("an unknown version is refused before the lock", async () => {
    const spec = project();
    const f = host();
    await expect(shipping(f).rollback(spec, targets(spec), "7")).rejects.toThrow(/release 7 is not on deploy@fake:22; known releases: 1, 0.9/);
    expect(f.ops()).not.toContain("lock.acquire");
  });
});

describe("user hooks", () => {
  const dump = (dir: string, name: string) => `env | grep -E '^(TOGO_|MY_SECRET)' | sort > ${join(dir, `${name}.env`)}`;
  const read = (dir: string, name: string) =>
    Object.fromEntries(
      readFileSync(join(dir, `${name}.env`), "utf8")
        .trim()
        .split("\n")
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );

  function hooked(hooks: Record<string, string>, extra = "") {
    const out = tempDir("togo-hooks-");
    const lines = Object.entries(hooks).map(([k, v]) => `  ${k}: ${JSON.stringify(v.replaceAll("$OUT", out))}`);
    const spec = project(`  secrets: { S: "env:MY_SECRET" }\n${extra}hooks:\n${lines.join("\n")}\n`, {});
    return { spec, out };
  }

  test("pre_build, pre_deploy and post_deploy fire in their places with the documented env, and never see a secret", async () => {
    process.env.MY_SECRET = "hunter2-value";
    try {
      const { spec, out } = hooked({ pre_build: "dump pre_build", pre_deploy: "dump pre_deploy", post_deploy: "dump post_deploy" });
      for (const h of Object.keys(spec.hooks) as (keyof typeof spec.hooks)[]) spec.hooks[h] = dump(out, h);
      const f = host();
      let preDeployBeforeLayout = false;
      f.on("layout", () => ((preDeployBeforeLayout = existsSync(join(out, "pre_deploy.env"))), {}));
      await shipping(f).deploy(spec, targets(spec));
      expect(preDeployBeforeLayout).toBe(true);
      const pre = read(out, "pre_deploy");
      expect(pre).toMatchObject({ TOGO_APP: "hello", TOGO_VERSION: "2", TOGO_PREVIOUS_VERSION: "1", TOGO_DRIVER: "test", TOGO_HOSTS: "local", TOGO_COMMAND: "deploy" });
      expect(pre.TOGO_PERFORMER).toMatch(/.+@.+/);
      expect(pre.TOGO_RUNTIME).toBeUndefined();
      expect(read(out, "pre_build")).toMatchObject({ TOGO_APP: "hello", TOGO_COMMAND: "deploy" });
      const post = read(out, "post_deploy");
      expect(Number(post.TOGO_RUNTIME)).toBeGreaterThanOrEqual(0);
      expect(post.TOGO_VERSION).toBe("2");
      for (const name of ["pre_build", "pre_deploy", "post_deploy"]) expect(readFileSync(join(out, `${name}.env`), "utf8")).not.toContain("hunter2-value");
    } finally {
      delete process.env.MY_SECRET;
    }
  });

  test("with a stage selected (TOGO_STAGE) every hook is told its name, and runs with the stage's config", async () => {
    const out = tempDir("togo-hooks-");
    const hooks = ["pre_build", "pre_deploy", "post_deploy"].map((h) => `  ${h}: ${JSON.stringify(dump(out, h))}`).join("\n");
    const spec = project(`hooks:\n${hooks}\nstages:\n  staging:\n    deploy: { app_port: 3998 }\n`, { TOGO_STAGE: "staging" });
    expect({ stage: spec.stage, port: spec.appPort }).toEqual({ stage: "staging", port: 3998 });
    await shipping(host()).deploy(spec, targets(spec));
    for (const h of ["pre_build", "pre_deploy", "post_deploy"]) expect({ h, env: read(out, h) }).toMatchObject({ h, env: { TOGO_STAGE: "staging", TOGO_APP: "hello", TOGO_COMMAND: "deploy" } });
  });

  test("a failing pre_deploy stops the deploy before anything changes on the target; on_failure gets TOGO_ERROR", async () => {
    const { spec, out } = hooked({ pre_deploy: "echo not today >&2; exit 3", on_failure: "true" });
    spec.hooks.on_failure = dump(out, "on_failure");
    const f = host();
    const err = await shipping(f).deploy(spec, targets(spec)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HookError);
    expect((err as Error).message).toBe("the pre_deploy hook exited 3: echo not today >&2; exit 3; nothing was changed on any target");
    expect(f.ops()).toEqual(["current", "host.facts", "current"]); // reads only
    expect(read(out, "on_failure").TOGO_ERROR).toMatch(/pre_deploy hook exited 3/);
  });

  test("on_failure runs with TOGO_ERROR when the health check fails", async () => {
    const { spec, out } = hooked({ on_failure: "true" });
    spec.hooks.on_failure = dump(out, "on_failure");
    const f = host();
    f.health = (port) => (port === CANDIDATE ? 500 : 200);
    await expect(shipping(f).deploy(spec, targets(spec))).rejects.toThrow(/failed its health check/);
    const env = read(out, "on_failure");
    expect(env.TOGO_ERROR).toMatch(/^release 2 failed its health check/);
    expect(env.TOGO_COMMAND).toBe("deploy");
  });

  test("on_failure runs after an automatic switch-back, and TOGO_ERROR says it switched back", async () => {
    const { spec, out } = hooked({ on_failure: "true" });
    spec.hooks.on_failure = dump(out, "on_failure");
    const f = host();
    f.health = (port) => (port === APP_PORT ? 500 : 200);
    await expect(shipping(f).deploy(spec, targets(spec))).rejects.toThrow(/switched back to 1/);
    expect(f.ops()).toContain("switch.restore");
    const env = read(out, "on_failure");
    expect(env.TOGO_ERROR).toMatch(/^release 2 passed verification but failed on port 3999 \(500\); switched back to 1/);
    expect(env).toMatchObject({ TOGO_COMMAND: "deploy", TOGO_VERSION: "2", TOGO_PREVIOUS_VERSION: "1" });
  });

  test("a failing post_deploy fails the command but says the deploy stands", async () => {
    const { spec } = hooked({ post_deploy: "exit 1" });
    const f = host();
    await expect(shipping(f).deploy(spec, targets(spec))).rejects.toThrow(/the post_deploy hook exited 1: exit 1; the deploy itself stands \(2 is live\)/);
    expect(f.ops()).toContain("record");
    expect(f.ops()).not.toContain("switch.restore");
  });

  test("post_rollback fires after a rollback with TOGO_COMMAND=rollback", async () => {
    const { spec, out } = hooked({ post_rollback: "true" });
    spec.hooks.post_rollback = dump(out, "post_rollback");
    await shipping(host()).rollback(spec, targets(spec));
    expect(read(out, "post_rollback")).toMatchObject({ TOGO_COMMAND: "rollback", TOGO_VERSION: "0.9", TOGO_PREVIOUS_VERSION: "1" });
  });

  test("hook names are validated with the config", () => {
    expect(() => project("hooks:\n  pre_deplyo: ./x.sh\n")).toThrow(/hooks.pre_deplyo: unknown key; did you mean "pre_deploy"/);
  });
});

describe("the release folder's scripts under a real sh", () => {
  test("recording a release drops it from .failed and puts it first in .versions", async () => {
    const app = tempDir("togo-app-");
    writeFileSync(join(app, ".versions"), "1\n");
    writeFileSync(join(app, ".failed"), "2\n3\n");
    await new LocalTransport().run(releaseDir(app).record("2"));
    expect(readFileSync(join(app, ".versions"), "utf8")).toBe("2\n1\n");
    expect(readFileSync(join(app, ".failed"), "utf8")).toBe("3\n");
  });
});

describe("the version of a release", () => {
  test("a dirty tree's version carries the artifact's short hash, so two dirty builds never share one", async () => {
    const dir = tempDir("togo-git-");
    const git = (...args: string[]) => execa("git", ["-c", "user.email=t@t", "-c", "user.name=t", ...args], { cwd: dir });
    await git("init", "-q");
    writeFileSync(join(dir, "a"), "1");
    await git("add", "a");
    await git("commit", "-qm", "one");
    const clean = await defaultVersion(dir, "a".repeat(64));
    expect(clean).toMatch(/^[0-9a-f]{7,}$/);
    writeFileSync(join(dir, "a"), "2");
    expect(await defaultVersion(dir, "b".repeat(64))).toBe(`${clean}-dirty.bbbbbbbb`);
    expect(await defaultVersion(dir, "c".repeat(64))).toBe(`${clean}-dirty.cccccccc`);
  });
});

describe("a fleet of three hosts", () => {
  const names = ["h1", "h2", "h3"];
  const fleet = () => {
    const hosts = Object.fromEntries(
      names.map((n) => {
        const f = host();
        (f as { target: string }).target = `deploy@${n}:22`;
        return [n, f];
      }),
    ) as Record<string, FakeTransport>;
    return hosts;
  };
  const fleetShipping = (hosts: Record<string, FakeTransport>, opts: { lockWait?: number } = {}) =>
    versionedRelease({
      driver: "test",
      ctx: { log: createReporter({ quiet: true }), opts: { force: false, yes: false, lockWait: 0, json: false, version: "2", ...opts } },
      options: shippingOptions(shippingSchema.parse({})),
      front: "own",
      open: { transport: (t) => hosts[t.host!], serviceMode: "process" },
      env: process.env,
    });
  const fleetTargets = (spec: Spec): Target[] => names.map((host) => ({ host, user: "deploy", appDir: spec.appDir, url: "http://app" }));

  test("a deploy reaches every host, once each, and reports per host", async () => {
    const spec = project("  rolling: 0\n");
    const hosts = fleet();
    const r = await fleetShipping(hosts).deploy(spec, fleetTargets(spec));
    expect(r.message).toBe("deployed hello 2 to 3 hosts (30 bytes uploaded)");
    for (const f of Object.values(hosts)) expect(restartedTo(f)).toEqual(["2"]);
    expect((r.raw as { hosts: { host: string; roundTrips: number }[] }).hosts.map((h) => h.host)).toEqual(names);
  });

  test("a release that fails only on host 2: no host switches, every candidate stops, every lock is given back", async () => {
    const spec = project();
    const hosts = fleet();
    hosts.h2.health = (port) => (port === CANDIDATE ? 500 : 200);
    const err = await fleetShipping(hosts).deploy(spec, fleetTargets(spec)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OperationError);
    expect((err as Error).message).toContain("failed its health check on deploy@h2:22");
    expect((err as Error).message).toContain("no host switched");
    for (const f of Object.values(hosts)) {
      expect(f.ops()).not.toContain("switch");
      expect(f.ops()).not.toContain("service.restart");
      expect(f.ops().lastIndexOf("candidate.stop")).toBeGreaterThan(f.ops().indexOf("candidate.start"));
      expect(f.ops()).toContain("lock.release");
    }
  });

  test("a lock held on one host refuses the whole deploy before anything changes; the locks taken are given back", async () => {
    const spec = project();
    const hosts = fleet();
    hosts.h2.on("lock.acquire", { code: LOCK_HELD, stdout: `holder=ci@build:1 time=${new Date().toISOString()} version=9 app=hello\n` });
    const err = await fleetShipping(hosts).deploy(spec, fleetTargets(spec)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockHeldError);
    expect((err as Error).message).toMatch(/holds the lock on deploy@h2:22: holder=ci@build:1 /);
    // All at once first: h1 and h3 were taken and given back at once; then in the fixed order h1
    // again, and h2 refused before h3 was asked a second time.
    expect(hosts.h1.ops().filter((op) => op.startsWith("lock."))).toEqual(["lock.acquire", "lock.release", "lock.acquire", "lock.release"]);
    expect(hosts.h3.ops().filter((op) => op.startsWith("lock."))).toEqual(["lock.acquire", "lock.release"]);
    for (const f of Object.values(hosts)) for (const op of ["upload", "env.next", "release.install", "candidate.start", "switch", "candidate.stop"]) expect(f.ops()).not.toContain(op);
  });

  test("the locks of a fleet are taken at once; a lock held at first is waited for (--lock-wait) in the fixed order", async () => {
    const spec = project();
    const hosts = fleet();
    let asked = 0;
    const seen: string[] = [];
    for (const [name, f] of Object.entries(hosts)) {
      f.on("lock.acquire", () => {
        seen.push(name);
        // h3's lock is held for its first two asks (the attempt at once, then the first ask in order).
        return name === "h3" && ++asked <= 2 ? { code: LOCK_HELD, stdout: "holder=ci@build:1 time=2026-01-01T00:00:00Z version=9 app=hello\n" } : {};
      });
    }
    const r = await fleetShipping(hosts, { lockWait: 5 }).deploy(spec, fleetTargets(spec));
    expect(r.message).toBe("deployed hello 2 to 3 hosts (30 bytes uploaded)");
    expect(seen.slice(0, 3).sort()).toEqual(["h1", "h2", "h3"]);
    expect(seen.slice(3)).toEqual(["h1", "h2", "h3", "h3"]);
    for (const f of Object.values(hosts)) expect(restartedTo(f)).toEqual(["2"]);
  });

  test("the locks of a fleet with none held: one ask a host, no ordered pass", async () => {
    const spec = project();
    const hosts = fleet();
    await fleetShipping(hosts).deploy(spec, fleetTargets(spec));
    for (const f of Object.values(hosts)) expect(f.ops().filter((op) => op.startsWith("lock."))).toEqual(["lock.acquire", "lock.release"]);
  });

  test("a switch that fails on host 2 after host 1 switched: both go back (rolling: 1 switches host by host)", async () => {
    const spec = project("  rolling: 1\n");
    const hosts = fleet();
    hosts.h2.on("service.owns", { stdout: "other 99 squatter\n" });
    const err = await fleetShipping(hosts).deploy(spec, fleetTargets(spec)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OperationError);
    expect((err as Error).message).toContain("every host switched so far goes back");
    expect(restartedTo(hosts.h1)).toEqual(["2", "1"]);
    expect(restartedTo(hosts.h2)).toEqual(["2", "1"]);
    // rolling: 1 — h3 was never switched.
    expect(restartedTo(hosts.h3)).toEqual([]);
    for (const f of Object.values(hosts)) expect(f.ops()).not.toContain("record");
  });
});
