// The deploy of the versioned-release strategy, as a list of named stages:
//   secrets → connect → build → lock → upload → install → release → verify → caddy → switch → record → prune
// The new release is verified on a spare port while the old one keeps serving; only then is it
// switched to (ship/switch.ts, shared with rollback). Each stage that leaves something behind on
// the target registers how to clean it up, so a failure or an interrupt at any point leaves the
// previous release serving and the lock released.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { OperationError, UsageError } from "../core/errors.js";
import type { Reporter } from "../core/log.js";
import type { Result, RunOptions, Spec } from "../core/spec.js";
import { resolveSecrets } from "../config/secrets.js";
import type { Stage } from "../pipeline/pipeline.js";
import { workspaceOf } from "../core/workspace.js";
import { artifactName, defaultVersion, hashArtifact, type ArtifactDigest } from "./artifact.js";
import { formatDotenv } from "./dotenv.js";
import { waitSettled } from "./settle.js";
import { acquireLock, releaseLock } from "./lock.js";
import { uploadBases, VERSION } from "./scripts.js";
import { switchRelease } from "./switch.js";
import { requireRun, type OpenTarget } from "./target.js";

/** Where a new release is verified: below Linux's ephemeral range, so it never meets a client port. */
export const CANDIDATE_PORTS: [number, number] = [20000, 29999];

export interface DeployReport {
  version: string;
  sha256: string;
  uploaded: boolean;
  /** Bytes and regular files sent to the target (0 when the artifact was there already). */
  bytes: number;
  files: number;
  /** The earlier upload a directory was built from (its unchanged files hard-linked, not sent). */
  base?: string;
  /** The artifact's regular files and bytes, how many of them were read to hash it, and the ms it took. */
  artifact?: Omit<ArtifactDigest, "sha256">;
  previous?: string;
  pruned: string[];
}

export interface DeployContext {
  spec: Spec;
  log: Reporter;
  opts: RunOptions;
  t: OpenTarget;
  url: string;
  /** Where `env:` secrets are read from. */
  env?: Record<string, string | undefined>;
  /** The proxy stage (a Caddy site) when the strategy fronts the app; it runs before the switch. */
  proxy?: (ctx: DeployContext) => Promise<void>;
  // Learnt by the stages:
  secrets: Record<string, string>;
  /** The artifact's digest when it was begun early (see the connect stage). */
  digest?: Promise<ArtifactDigest>;
  sha256: string;
  version?: string;
  previous?: string;
  report: DeployReport;
}

export function newDeployContext(base: Omit<DeployContext, "secrets" | "sha256" | "report">): DeployContext {
  // A --version is known before the build (the hooks see it); otherwise the build decides it.
  return { ...base, version: base.opts.version, secrets: {}, sha256: "", report: { version: "", sha256: "", uploaded: false, bytes: 0, files: 0, pruned: [] } };
}

export function checkVersion(version: string, source = "--version"): void {
  if (!VERSION.test(version)) {
    throw new UsageError(`${source} "${version}" is not a valid version: letters, digits, . _ + -, starting with a letter or digit, at most 64`);
  }
}

export function artifactPath(spec: Spec): string {
  if (!spec.binary) throw new UsageError(`deploy.binary is required for the ${spec.provider} driver: the file or directory to ship`);
  return join(spec.dir, spec.binary);
}

/** Runs build_cmd in the project, showing its last lines if it fails. */
export async function runBuildCmd(spec: Spec, signal?: AbortSignal): Promise<void> {
  if (!spec.buildCmd) return;
  const r = await execa("sh", ["-c", spec.buildCmd], { cwd: spec.dir, reject: false, all: true, env: { TOGO_APP: spec.app }, ...(signal ? { cancelSignal: signal } : {}) });
  if (r.exitCode !== 0) {
    const tail = String(r.all ?? "").trim().split("\n").slice(-20).join("\n");
    throw new OperationError(`build_cmd failed (exit ${r.exitCode ?? r.signal}): ${spec.buildCmd}\n${tail}`);
  }
}

async function lastLogLines(ctx: DeployContext, version: string, n = 20): Promise<string> {
  const r = await ctx.t.transport.run(ctx.t.dir.tailLog(version, n), { check: false });
  const text = r.stdout.trim();
  return text ? `\n--- last ${n} lines of logs/${version}.log ---\n${text}` : " (the app wrote no log output)";
}

const serving = (ctx: DeployContext) => (ctx.previous ? `${ctx.previous} keeps serving` : "nothing was switched");
const FAILED_RECORD = "recording the failed release";
const LIVE_RECORD = "recording the live release";

export function deployStages(): Stage<DeployContext>[] {
  return [
    {
      name: "secrets",
      run: async (ctx) => {
        ctx.secrets = await resolveSecrets(ctx.spec.secrets, ctx.spec.dir, ctx.env);
      },
    },
    {
      // Reads only (what serves now, for the hooks' TOGO_PREVIOUS_VERSION); nothing changes before pre_deploy.
      name: "connect",
      run: async (ctx, run) => {
        // With no build_cmd and no pre_build hook nothing can change the artifact before the build
        // stage: it is hashed while the connection opens (the build stage takes the result).
        if (ctx.spec.binary && !ctx.spec.buildCmd && !ctx.spec.hooks.pre_build && existsSync(artifactPath(ctx.spec))) {
          ctx.digest = hashOf(ctx, run.signal);
          ctx.digest.catch(() => undefined); // the build stage reports a failure, if it gets that far
        }
        await ctx.t.service();
        ctx.previous = (await ctx.t.transport.run(ctx.t.dir.current(), { signal: run.signal })).stdout.trim() || undefined;
      },
    },
    {
      name: "build",
      run: async (ctx, run) => {
        const source = artifactPath(ctx.spec);
        await runBuildCmd(ctx.spec, run.signal);
        if (!existsSync(source)) {
          throw new OperationError(`the artifact ${ctx.spec.binary} does not exist after build_cmd; check deploy.binary and deploy.build_cmd`);
        }
        const { sha256, ...artifact } = await (ctx.digest ?? hashOf(ctx, run.signal));
        ctx.sha256 = sha256;
        ctx.report.artifact = artifact;
        const version = ctx.opts.version ?? (await defaultVersion(ctx.spec.dir, ctx.sha256));
        checkVersion(version);
        ctx.version = version;
        ctx.report.version = version;
        ctx.report.sha256 = ctx.sha256;
      },
    },
    {
      name: "lock",
      touchesTarget: true,
      run: async (ctx, run) => {
        const { t } = ctx;
        await t.transport.run(t.dir.layout(), { signal: run.signal });
        const lock = await acquireLock(t, ctx.spec.app, ctx.version!, ctx.opts.lockWait, run.signal);
        run.finally("releasing the lock", () => releaseLock(t, lock));
        // Under the lock no other deploy runs: a candidate still there was left by a dead one.
        await t.transport.run(t.dir.candidateStop(), { signal: run.signal });
        // Under the lock, what serves is settled: read it again.
        ctx.previous = (await t.transport.run(t.dir.current())).stdout.trim() || undefined;
        ctx.report.previous = ctx.previous;
      },
    },
    {
      name: "upload",
      run: async (ctx, run) => {
        const { t, sha256 } = ctx;
        const answer = (await t.transport.run(t.dir.hasUpload(sha256), { signal: run.signal })).stdout;
        if (answer.split("\n")[0].trim() !== "yes") {
          const source = artifactPath(ctx.spec);
          // A directory is built from the previous release's upload: only what changed is sent.
          const bases = statSync(source).isDirectory() ? uploadBases(answer) : [];
          // Beside the final name, then renamed: a cut-off upload is never taken for the artifact.
          const dest = `${t.target.appDir.replace(/\/+$/, "")}/.uploads/${sha256}.partial`;
          const sent = await t.transport.upload(source, dest, { signal: run.signal, linkDest: bases.map((b) => `../${b}`) });
          ctx.report.bytes = sent.bytes;
          ctx.report.files = sent.files;
          if (sent.linked) ctx.report.base = bases[0];
          await t.transport.run(t.dir.storeUpload(sha256), { signal: run.signal });
          ctx.report.uploaded = true;
        }
        await t.transport.run(t.dir.writeEnvNext(formatDotenv({ ...ctx.spec.env, ...ctx.secrets })), { signal: run.signal });
      },
    },
    {
      name: "install",
      run: async (ctx, run) => {
        const { t, sha256 } = ctx;
        const version = ctx.version!;
        const installed = (await t.transport.run(t.dir.releaseSha(version), { signal: run.signal })).stdout.trim();
        if (installed !== sha256) {
          if (installed !== "" && version === ctx.previous) {
            throw new UsageError(
              `release ${version} is live with a different artifact; deploy the change under a new version (--version, or commit it so git describe changes)`,
            );
          }
          await t.transport.run(t.dir.install(version, sha256, artifactName(artifactPath(ctx.spec))), { signal: run.signal });
        }
        // From here on, a release that does not go live is recorded as failed (kept for inspection).
        run.onFailure(FAILED_RECORD, () => t.transport.run(t.dir.recordFailed(version), { check: false }));
      },
    },
    {
      name: "release",
      skip: (ctx) => !ctx.spec.releaseCmd,
      run: async (ctx, run) => {
        const r = await ctx.t.transport.run(ctx.t.dir.releaseCmd(ctx.version!, ctx.spec.releaseCmd!, ctx.spec.appPort), { check: false, signal: run.signal });
        if (r.code !== 0) {
          const out = (r.stdout + r.stderr).trim().split("\n").slice(-20).join("\n");
          throw new OperationError(`release_cmd failed (exit ${r.code}) in release ${ctx.version}; ${serving(ctx)}\n${out}`);
        }
      },
    },
    {
      // The new release on a spare port, with its own env, while the old one keeps serving.
      name: "verify",
      run: async (ctx, run) => {
        const { t, spec } = ctx;
        const version = ctx.version!;
        const [from, to] = CANDIDATE_PORTS;
        const start = from + Math.floor(Math.random() * (to - from));
        const port = Number((await t.transport.run(t.dir.freePort(from, to, start), { signal: run.signal })).stdout.trim());
        run.onFailure("stopping the unverified release", () => t.transport.run(t.dir.candidateStop(), { check: false }));
        await t.transport.run(t.dir.candidateStart(version, requireRun(spec), port), { signal: run.signal });
        const health = await waitSettled({
          transport: t.transport,
          port,
          check: spec.healthcheck,
          status: t.dir.candidateStatus(),
          owner: t.dir.candidateOwns(port),
          signal: run.signal,
        });
        await t.transport.run(t.dir.candidateStop(), { check: false });
        run.forget("stopping the unverified release");
        if (run.signal.aborted) return;
        if (!health.ok) {
          throw new OperationError(
            `release ${version} failed its health check (GET ${spec.healthcheck.path}: ${health.detail} after ${health.attempts} tries in ${(health.ms / 1000).toFixed(1)}s); ` +
              `${serving(ctx)}; the release is kept in ${t.target.appDir}/v${version} for inspection.` +
              (await lastLogLines(ctx, version)),
          );
        }
      },
    },
    {
      name: "caddy",
      skip: (ctx) => !ctx.proxy,
      run: async (ctx) => ctx.proxy!(ctx),
    },
    {
      name: "switch",
      run: async (ctx, run) => {
        const version = ctx.version!;
        const outcome = await switchRelease({ spec: ctx.spec, t: ctx.t, version, previous: ctx.previous, takeNextEnv: true, signal: run.signal });
        if (!outcome.ok) {
          throw new OperationError(
            `release ${version} passed verification but failed on port ${ctx.spec.appPort} (${outcome.detail}); ` +
              `${ctx.previous ? `switched back to ${ctx.previous}` : "nothing is serving"}.` +
              (await lastLogLines(ctx, version)),
          );
        }
        // It is live: from here on a failure must not call it failed, and it must be on record.
        run.forget(FAILED_RECORD);
        run.onFailure(LIVE_RECORD, () => ctx.t.transport.run(ctx.t.dir.record(version), { check: false }));
      },
    },
    {
      name: "record",
      run: async (ctx, run) => {
        await ctx.t.transport.run(ctx.t.dir.record(ctx.version!));
        run.forget(LIVE_RECORD);
      },
    },
    {
      name: "prune",
      run: async (ctx) => {
        const r = await ctx.t.transport.run(ctx.t.dir.prune(ctx.spec.versionsToKeep));
        ctx.report.pruned = r.stdout.split("\n").filter(Boolean);
        await ctx.t.transport.run(ctx.t.dir.pruneUploads());
      },
    },
  ];
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

/** The artifact's digest, through the project's digest cache, with progress on long trees. */
function hashOf(ctx: DeployContext, signal: AbortSignal): Promise<ArtifactDigest> {
  const source = artifactPath(ctx.spec);
  return hashArtifact(source, {
    cache: workspaceOf(ctx.spec).digestCache(source),
    onProgress: (p) => ctx.log.progress?.(`hashing ${p.files}/${p.totalFiles} files, ${mib(p.bytes)}/${mib(p.totalBytes)} MiB`),
    signal,
  });
}

export function deployResult(ctx: DeployContext): Result {
  const r = ctx.report;
  const total = r.artifact && r.artifact.files > 1 ? `, ${r.files} of ${r.artifact.files} files` : "";
  const sent = r.uploaded ? `${r.bytes} bytes uploaded${total}` : "artifact already on the target, 0 bytes uploaded";
  return { url: ctx.url, message: `deployed ${ctx.spec.app} ${r.version} (${sent})`, raw: r };
}
