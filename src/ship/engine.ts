// The release engine: a deploy as a sequence of named stages (Capistrano), each printed with its
// duration. The remote work is the scripts of ./scripts.ts, run by whichever transport the driver
// hands in, so the local and the SSH drivers share every step.
import { existsSync } from "node:fs";
import { hostname, userInfo } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { artifactName, artifactSha256, defaultVersion } from "./artifact.js";
import { LockHeldError, OperationError, UsageError } from "../core/errors.js";
import { probe, waitHealthy } from "./health.js";
import type { Reporter } from "../core/log.js";
import { resolveSecrets } from "../config/secrets.js";
import type { Release, Result, RunOptions, Spec } from "../core/spec.js";
import type { Transport } from "../exec/transport.js";
import { formatDotenv } from "./dotenv.js";
import * as S from "./scripts.js";

/** How the serving release runs on the target: systemd, or togo's own process manager. */
export interface ServiceManager {
  readonly kind: string;
  /** Script run once per deploy before the cutover (e.g. writing a unit file); may be empty. */
  prepareScript(): string;
  /** Stops whatever serves and starts release `version` on app_port with the live `.env`. */
  restartScript(version: string): string;
  stopScript(): string;
  /** Prints `running …` or `stopped`. */
  statusScript(): string;
}

export function processManager(spec: Spec): ServiceManager {
  const run = requireRun(spec);
  return {
    kind: "process",
    prepareScript: () => "",
    restartScript: (version) =>
      S.processStopScript(spec.appDir, "app") +
      "\n" +
      S.processStartScript({ appDir: spec.appDir, name: "app", version, run, port: spec.appPort, envFile: "env" }),
    stopScript: () => S.processStopScript(spec.appDir, "app"),
    statusScript: () => S.processStatusScript(spec.appDir, "app"),
  };
}

function requireRun(spec: Spec): string {
  if (!spec.run) throw new UsageError(`deploy.run is required for the ${spec.provider} driver: the command that starts the app on $PORT`);
  return spec.run;
}

export interface EngineContext {
  spec: Spec;
  transport: Transport;
  log: Reporter;
  service: ServiceManager;
  opts: RunOptions;
  /** Where users reach the app, printed at the end. */
  url: string;
  /** Runs after the switch and before the final check (e.g. a Caddy site + reload). */
  afterSwitch?: () => Promise<void>;
  /** Runs first in the lock stage, before anything on the target (e.g. opening the connection, probing the host). */
  beforeLock?: () => Promise<void>;
  /** Runs after verification and before the switch; a failure aborts with the old release serving (e.g. the Caddy site). */
  beforeSwitch?: () => Promise<void>;
  env?: Record<string, string | undefined>;
}

/** A lock stays valid this long; an older one is reported as stale with how to break it. */
export const LOCK_TTL_SECONDS = 30 * 60;
/** Where a new release is verified: below Linux's ephemeral range, so it never meets a client port. */
const CANDIDATE_PORTS: [number, number] = [20000, 29999];

interface LockInfo {
  token: string;
  text: string;
}

export async function acquireLock(ctx: EngineContext, version: string): Promise<LockInfo> {
  const { spec, transport, opts } = ctx;
  const token = `${userInfo().username}@${hostname()}:${process.pid}:${Date.now()}`;
  const text = `holder=${token} time=${new Date().toISOString()} version=${version} app=${spec.app}`;
  const deadline = Date.now() + opts.lockWait * 1000;
  for (;;) {
    const r = await transport.run(S.lockAcquireScript(spec.appDir, text), { check: false, what: "taking the deploy lock" });
    if (r.code === 0) return { token, text };
    if (r.code !== S.LOCK_HELD) throw new OperationError(`could not take the deploy lock on ${transport.target}: ${r.stderr.trim()}`);
    if (Date.now() >= deadline) {
      const held = r.stdout.trim();
      const time = /time=(\S+)/.exec(held)?.[1];
      const age = time ? (Date.now() - Date.parse(time)) / 1000 : 0;
      const stale = age > LOCK_TTL_SECONDS ? ` It is stale (${Math.round(age / 60)} min old); if no deploy is running, break it with: togo lock release` : " Wait for it (--lock-wait SECONDS), or if no deploy is running: togo lock release";
      throw new LockHeldError(`another deploy of ${spec.app} holds the lock on ${transport.target}: ${held}.${stale}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function releaseLock(ctx: EngineContext, lock: LockInfo): Promise<void> {
  await ctx.transport.run(S.lockReleaseScript(ctx.spec.appDir, lock.token), { check: false });
}

/**
 * Runs `cleanup` then exits 130/143 when the user interrupts; `dispose()` unhooks it. Without this a
 * Ctrl-C would leave the lock held until someone runs `togo lock release`.
 */
function onInterrupt(cleanup: () => Promise<void>): { dispose(): void } {
  let started = false;
  const handler = (signal: NodeJS.Signals) => {
    if (started) return; // a second Ctrl-C while cleaning up: keep cleaning up
    started = true;
    process.stderr.write(`\n${signal}: cleaning up (stopping the unverified release, releasing the lock)\n`);
    cleanup()
      .catch(() => undefined)
      .finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  };
  // `on`, not `once`: execa's child cleanup (signal-exit) re-raises a signal that no other listener
  // is left to handle, which would kill togo in the middle of this cleanup.
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return {
    dispose() {
      process.off("SIGINT", handler);
      process.off("SIGTERM", handler);
    },
  };
}

/** Runs build_cmd in the project, showing its last lines if it fails. */
export async function build(spec: Spec): Promise<void> {
  if (!spec.buildCmd) return;
  const r = await execa("sh", ["-c", spec.buildCmd], { cwd: spec.dir, reject: false, all: true, env: { TOGO_APP: spec.app } });
  if (r.exitCode !== 0) {
    const tail = String(r.all ?? "").trim().split("\n").slice(-20).join("\n");
    throw new OperationError(`build_cmd failed (exit ${r.exitCode}): ${spec.buildCmd}\n${tail}`);
  }
}

export function artifactPath(spec: Spec): string {
  if (!spec.binary) throw new UsageError(`deploy.binary is required for the ${spec.provider} driver: the file or directory to ship`);
  return join(spec.dir, spec.binary);
}

async function lastLogLines(ctx: EngineContext, version: string, n = 20): Promise<string> {
  const r = await ctx.transport.run(S.tailLogScript(ctx.spec.appDir, version, n), { check: false });
  const text = r.stdout.trim();
  return text ? `\n--- last ${n} lines of logs/${version}.log ---\n${text}` : " (the app wrote no log output)";
}

function checkVersion(version: string): void {
  if (!S.VERSION.test(version)) {
    throw new UsageError(`--version "${version}" is not a valid version: letters, digits, . _ + -, starting with a letter or digit, at most 64`);
  }
}

export interface DeployReport {
  version: string;
  sha256: string;
  uploaded: boolean;
  bytes: number;
  previous?: string;
  pruned: string[];
}

export async function deployRelease(ctx: EngineContext): Promise<Result> {
  const { spec, transport, log, service, opts } = ctx;
  const app = spec.appDir;
  const run = requireRun(spec);
  const source = artifactPath(spec);
  if (opts.version !== undefined) checkVersion(opts.version);

  const secrets = await log.stage("secrets", () => resolveSecrets(spec.secrets, spec.dir, ctx.env));
  await log.stage("build", () => build(spec));
  if (!existsSync(source)) {
    throw new OperationError(`the artifact ${spec.binary} does not exist after build_cmd; check deploy.binary and deploy.build_cmd`);
  }
  const sha256 = await artifactSha256(source);
  const version = opts.version ?? (await defaultVersion(spec.dir, sha256));
  checkVersion(version);

  const lock = await log.stage("lock", async () => {
    if (ctx.beforeLock) await ctx.beforeLock();
    await transport.run(S.layoutScript(app), { what: "creating the app directory" });
    return acquireLock(ctx, version);
  });
  // Ctrl-C mid-deploy: stop a half-verified release and give the lock back before exiting.
  const interrupted = onInterrupt(async () => {
    await transport.run(S.processStopScript(app, "candidate"), { check: false });
    await transport.run(S.recordFailedScript(app, version), { check: false });
    await releaseLock(ctx, lock);
  });
  try {
    const report: DeployReport = { version, sha256, uploaded: false, bytes: 0, pruned: [] };
    const previous = (await transport.run(S.currentVersionScript(app))).stdout.trim() || undefined;
    report.previous = previous;

    await log.stage("upload", async () => {
      const has = (await transport.run(S.hasUploadScript(app, sha256))).stdout.trim() === "yes";
      if (!has) {
        // Upload beside the final name and rename: an interrupted upload leaves only a .partial.
        const dest = `${app.replace(/\/+$/, "")}/.uploads/${sha256}`;
        report.bytes = await transport.upload(source, `${dest}.partial`);
        await transport.run(`mv -f ${S.paths(app).upload(sha256)}.partial ${S.paths(app).upload(sha256)}`, { what: "storing the upload" });
        report.uploaded = true;
      }
      await transport.run(S.writeEnvNextScript(app), { input: formatDotenv({ ...spec.env, ...secrets }), what: "writing .env" });
    });

    await log.stage("install", async () => {
      const installed = (await transport.run(S.releaseShaScript(app, version))).stdout.trim();
      if (installed === sha256) return; // same version, same bytes: reuse the folder
      if (installed !== "" && version === previous) {
        throw new UsageError(
          `release ${version} is live with a different artifact; deploy the change under a new version (--version, or commit it so git describe changes)`,
        );
      }
      await transport.run(S.installScript(app, version, sha256, artifactName(source)), { what: `installing release ${version}` });
    });

    if (spec.releaseCmd) {
      await log.stage("release", async () => {
        const r = await transport.run(S.releaseCmdScript(app, version, spec.releaseCmd!, spec.appPort), { check: false });
        if (r.code !== 0) {
          await transport.run(S.recordFailedScript(app, version), { check: false });
          const out = (r.stdout + r.stderr).trim().split("\n").slice(-20).join("\n");
          throw new OperationError(`release_cmd failed (exit ${r.code}) in release ${version}; ${previous ? `${previous} keeps serving` : "nothing was switched"}\n${out}`);
        }
      });
    }

    // Verify the new release on a spare port while the old one keeps serving.
    await log.stage("verify", async () => {
      const port = Number((await transport.run(S.freePortScript(...CANDIDATE_PORTS, CANDIDATE_PORTS[0] + Math.floor(Math.random() * (CANDIDATE_PORTS[1] - CANDIDATE_PORTS[0]))), { what: "finding a free port" })).stdout.trim());
      await transport.run(S.processStartScript({ appDir: app, name: "candidate", version, run, port, envFile: "envNext" }), { what: `starting release ${version}` });
      const base = await transport.reach(port);
      const health = await waitHealthy(`${base}${spec.healthcheck.path}`, {
        timeoutSeconds: spec.healthcheck.timeout,
        intervalSeconds: spec.healthcheck.interval,
        stillRunning: async () => (await transport.run(S.processStatusScript(app, "candidate"))).stdout.startsWith("running"),
      });
      await transport.run(S.processStopScript(app, "candidate"), { check: false });
      if (!health.ok) {
        await transport.run(S.recordFailedScript(app, version), { check: false });
        throw new OperationError(
          `release ${version} failed its health check (GET ${spec.healthcheck.path}: ${health.detail} after ${health.attempts} tries in ${(health.ms / 1000).toFixed(1)}s); ` +
            `${previous ? `${previous} keeps serving` : "nothing was switched"}; the release is kept in ${app}/v${version} for inspection.` +
            (await lastLogLines(ctx, version)),
        );
      }
    });

    if (ctx.beforeSwitch) await ctx.beforeSwitch();

    await log.stage("switch", async () => {
      const prepare = service.prepareScript();
      if (prepare) await transport.run(prepare, { what: "preparing the service" });
      await transport.run(S.switchScript(app, version), { what: "switching current" });
      const restarted = await transport.run(service.restartScript(version), { check: false });
      const health =
        restarted.code === 0
          ? await waitHealthy(`${await transport.reach(spec.appPort)}${spec.healthcheck.path}`, {
              timeoutSeconds: spec.healthcheck.timeout,
              intervalSeconds: spec.healthcheck.interval,
            })
          : { ok: false, detail: `the service did not start: ${restarted.stderr.trim()}` };
      if (!health.ok) {
        // Undo the cutover: the previous release and its env come back.
        await transport.run(S.restoreScript(app, previous), { check: false });
        if (previous) await transport.run(service.restartScript(previous), { check: false });
        else await transport.run(service.stopScript(), { check: false });
        await transport.run(S.recordFailedScript(app, version), { check: false });
        throw new OperationError(
          `release ${version} passed verification but failed on port ${spec.appPort} (${health.detail}); ` +
            `${previous ? `switched back to ${previous}` : "nothing is serving"}.` +
            (await lastLogLines(ctx, version)),
        );
      }
      if (ctx.afterSwitch) await ctx.afterSwitch();
    });

    await log.stage("record", () => transport.run(S.recordScript(app, version), { what: "recording the release" }));
    await log.stage("prune", async () => {
      const r = await transport.run(S.pruneScript(app, spec.versionsToKeep), { what: "pruning old releases" });
      report.pruned = r.stdout.split("\n").filter(Boolean);
      await transport.run(S.pruneUploadsScript(app), { what: "pruning the upload cache" });
    });
    const sent = report.uploaded ? `${report.bytes} bytes uploaded` : "artifact already on the target, 0 bytes uploaded";
    return { url: ctx.url, message: `deployed ${spec.app} ${version} (${sent})`, raw: report };
  } finally {
    interrupted.dispose();
    await releaseLock(ctx, lock).catch(() => undefined);
  }
}

export async function listReleases(transport: Transport, appDir: string): Promise<Release[]> {
  const out = (await transport.run(S.readReleasesScript(appDir))).stdout;
  const lines = out.split("\n").filter(Boolean);
  const current = lines.find((l) => l.startsWith("current="))?.slice("current=".length) ?? "";
  return lines
    .filter((l) => !l.startsWith("current="))
    .map((l) => {
      const [version, mtime] = l.split(" ");
      const secs = Number(mtime);
      return { version, current: version === current, createdAt: secs > 0 ? new Date(secs * 1000).toISOString() : undefined };
    });
}

/** Switches `current` to `version` (default: the release before the current one) and restarts. */
export async function rollbackRelease(ctx: EngineContext, version?: string): Promise<Result> {
  const { spec, transport, log, service } = ctx;
  const releases = await listReleases(transport, spec.appDir);
  const idx = releases.findIndex((r) => r.current);
  const target = version ?? (idx >= 0 ? releases[idx + 1]?.version : releases[0]?.version);
  if (!target) throw new OperationError(`no earlier release of ${spec.app} to roll back to (releases: ${releases.map((r) => r.version).join(", ") || "none"})`);
  if (!releases.some((r) => r.version === target)) {
    throw new UsageError(`release ${target} is not on ${transport.target}; known releases: ${releases.map((r) => r.version).join(", ") || "none"} (see togo releases)`);
  }
  const current = releases[idx]?.version;
  const lock = await log.stage("lock", () => acquireLock(ctx, target));
  try {
    await log.stage("switch", async () => {
      await transport.run(S.switchScript(spec.appDir, target, false), { what: "switching current" });
      const restarted = await transport.run(service.restartScript(target), { check: false });
      const health =
        restarted.code === 0
          ? await waitHealthy(`${await transport.reach(spec.appPort)}${spec.healthcheck.path}`, {
              timeoutSeconds: spec.healthcheck.timeout,
              intervalSeconds: spec.healthcheck.interval,
            })
          : { ok: false, detail: `the service did not start: ${restarted.stderr.trim()}` };
      if (!health.ok) {
        if (current) {
          await transport.run(S.switchScript(spec.appDir, current, false), { check: false });
          await transport.run(service.restartScript(current), { check: false });
        }
        throw new OperationError(
          `release ${target} failed its health check after the rollback (${health.detail}); ${current ? `switched back to ${current}` : "nothing is serving"}.` +
            (await lastLogLines(ctx, target)),
        );
      }
    });
    await log.stage("record", () => transport.run(S.rollbackRecordScript(spec.appDir, target), { what: "recording the rollback" }));
    return { url: ctx.url, message: `rolled back ${spec.app} from ${current ?? "nothing"} to ${target}; no release was deleted`, raw: { from: current, to: target } };
  } finally {
    await releaseLock(ctx, lock).catch(() => undefined);
  }
}

/** The live part of `status`: the current release, whether its process runs, and a probe. */
export async function liveStatus(
  spec: Spec,
  transport: Transport,
  service: ServiceManager,
): Promise<{ state: "ready" | "not-ready" | "not-deployed" | "failed"; version?: string; healthy: boolean; message: string }> {
  const r = await transport.run(
    `${S.currentVersionScript(spec.appDir)}\necho "#"\n${service.statusScript()}`,
    { check: false, what: "reading the release state" },
  );
  const [versionPart, servicePart = ""] = r.stdout.split("#\n");
  const version = versionPart.trim() || undefined;
  if (!version) return { state: "not-deployed", healthy: false, message: "no release has been deployed" };
  if (!servicePart.trim().startsWith("running")) {
    return { state: "failed", version, healthy: false, message: `release ${version} is current but its process is not running (togo logs shows why)` };
  }
  const p = await probe(`${await transport.reach(spec.appPort)}${spec.healthcheck.path}`, 2000);
  return p.ok
    ? { state: "ready", version, healthy: true, message: `release ${version} is serving` }
    : { state: "not-ready", version, healthy: false, message: `release ${version} runs but ${spec.healthcheck.path} answers ${p.detail}` };
}
