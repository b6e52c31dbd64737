// The deploy of the versioned-release strategy, as a list of named stages:
//   secrets → connect → build → lock → upload → install → release → verify → caddy → switch → record → prune
// Per-deploy work (secrets, build, version, hooks) runs once; per-host stages run on every host of
// the fleet at once (at most `parallel`), and a stage ends only when it ended on every host. So every
// host's new release is verified (and settled) before ANY host switches; a failure on one host means
// no host switches. The switch goes in batches (`rolling`); if a host fails its switch, every host
// switched so far goes back. Each stage that leaves something behind registers how to clean it up, so
// a failure or an interrupt at any point leaves the previous release serving and the locks released.
//
// How a release goes live (the strategy, per host): restart — verified on a spare port, then
// restarted on app_port (ship/switch.ts, shared with rollback); blue-green — the verified instance
// keeps running on its own port, Caddy is pointed at it gracefully, and the old one gets `drain`
// seconds for what it is still serving before it stops.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { OperationError, UsageError } from "../core/errors.js";
import type { Reporter } from "../core/log.js";
import type { Result, RunOptions, Spec } from "../core/spec.js";
import { resolveSecrets } from "../config/secrets.js";
import type { PipelineRun, Stage } from "../pipeline/pipeline.js";
import { workspaceOf } from "../core/workspace.js";
import { artifactName, defaultVersion, gitVersion, hashArtifact, type ArtifactDigest } from "./artifact.js";
import { formatDotenv } from "./dotenv.js";
import { runBatch } from "../exec/batch.js";
import { eachHost, inBatches, onEveryHost, type HostWork } from "./fleet.js";
import { waitSettled } from "./settle.js";
import { lockEveryHost } from "./lock.js";
import { parseHostPlatform, uploadBases, VERSION } from "./scripts.js";
import { script } from "../core/shell.js";
import { frontSwitch, goLive, revertLive, switchRelease, type Front, type LiveInput } from "./switch.js";
import { requireRun, type OpenTarget } from "./target.js";

/** Where a new release is verified: below Linux's ephemeral range, so it never meets a client port. */
export const CANDIDATE_PORTS: [number, number] = [20000, 29999];
/** Seconds a deploy waits for a host's first boot (cloud-init installs packages: minutes at most). */
export const FIRST_BOOT_TIMEOUT = 600;

/** What one host did in a deploy (per host in `deploy --json`). */
export interface HostReport {
  host: string;
  previous?: string;
  strategy?: "blue-green" | "restart";
  /** Blue-green: the port the new release serves on behind Caddy. */
  port?: number;
  uploaded: boolean;
  /** Bytes and regular files sent to the target (0 when the artifact was there already). */
  bytes: number;
  files: number;
  /** The earlier upload a directory was built from (its unchanged files hard-linked, not sent). */
  base?: string;
  pruned: string[];
  /** Remote commands run (each one round trip over the host's one connection). */
  roundTrips?: number;
  /** Of those, the ones that started an ssh client and an sshd session of their own (the rest ran over the command channel). */
  sessions?: number;
}

export interface DeployReport {
  version: string;
  sha256: string;
  uploaded: boolean;
  bytes: number;
  files: number;
  base?: string;
  /** The artifact's regular files and bytes, how many of them were read to hash it, and the ms it took. */
  artifact?: Omit<ArtifactDigest, "sha256">;
  previous?: string;
  pruned: string[];
  hosts: HostReport[];
  /** deploy.artifact: store — where the artifact came from (the proxy's URL or the store) and what it is a build of. */
  store?: { from: string; remote: string; owner: string; repo: string; commit: string; os: string; arch: string };
}

/** One host of the deploy, and what the stages learnt about it. */
export interface HostDeploy extends HostWork {
  t: OpenTarget;
  report: HostReport;
  previous?: string;
  strategy?: "blue-green" | "restart";
  /** Blue-green: the port of the new release, and of what served before (undefined: restart-style on app_port, or nothing). */
  port?: number;
  livePort?: number;
  /** The sha256 of the release folder of this deploy's version already on the host ("" when there is none). */
  installed?: string;
  /** Switched and settled, not yet final (blue-green: the old one still runs). */
  switched?: boolean;
  live?: LiveInput;
}

export interface DeployContext {
  spec: Spec;
  log: Reporter;
  opts: RunOptions;
  url: string;
  hosts: HostDeploy[];
  /** Where `env:` secrets are read from. */
  env?: Record<string, string | undefined>;
  /** What routes users to a host's live release (a Caddy site, the app's own Caddy), when the strategy has one. */
  front?: Front;
  /** The hosts set themselves up at first boot (cloud-init): connect waits until that is done. */
  firstBoot?: boolean;
  // Learnt by the stages:
  secrets: Record<string, string>;
  /** The artifact's digest when it was begun early (see the connect stage). */
  digest?: Promise<ArtifactDigest>;
  /** deploy.artifact: store — the file fetched from the store and its name in the release (else deploy.binary). */
  fetched?: { file: string; name: string; unpack: boolean };
  sha256: string;
  version?: string;
  report: DeployReport;
}

export function newDeployContext(base: Omit<DeployContext, "secrets" | "sha256" | "report" | "hosts"> & { targets: OpenTarget[] }): DeployContext {
  const { targets, ...rest } = base;
  const hosts = targets.map((t): HostDeploy => ({ t, name: t.name, report: { host: t.target.host ?? "local", uploaded: false, bytes: 0, files: 0, pruned: [] } }));
  // A --version is known before the build (the hooks see it); otherwise the build decides it.
  return {
    ...rest,
    hosts,
    version: base.opts.version,
    secrets: {},
    sha256: "",
    report: { version: "", sha256: "", uploaded: false, bytes: 0, files: 0, pruned: [], hosts: hosts.map((h) => h.report) },
  };
}

export function checkVersion(version: string, source = "--version"): void {
  if (!VERSION.test(version)) {
    throw new UsageError(`${source} "${version}" is not a valid version: letters, digits, . _ + -, starting with a letter or digit, at most 64`);
  }
}

/** The file or directory this deploy ships: the store's artifact once fetched, else deploy.binary. */
function shipped(ctx: DeployContext): { source: string; name: string } {
  if (ctx.fetched) return { source: ctx.fetched.file, name: ctx.fetched.name };
  const source = artifactPath(ctx.spec);
  return { source, name: artifactName(source) };
}

export function artifactPath(spec: Spec): string {
  if (!spec.binary) throw new UsageError(`deploy.binary is required for the ${spec.provider} driver: the file or directory to ship`);
  return join(spec.dir, spec.binary);
}

/** Runs build_cmd in the project, showing its last lines if it fails. */
export async function runBuildCmd(spec: Spec, signal?: AbortSignal): Promise<void> {
  if (!spec.buildCmd) return;
  const r = await execa("sh", ["-c", spec.buildCmd], { cwd: spec.dir, reject: false, all: true, env: { TOGO_APP: spec.app, TOGO_STAGE: spec.stage ?? "" }, ...(signal ? { cancelSignal: signal } : {}) });
  if (r.exitCode !== 0) {
    const tail = String(r.all ?? "").trim().split("\n").slice(-20).join("\n");
    throw new OperationError(`build_cmd failed (exit ${r.exitCode ?? r.signal}): ${spec.buildCmd}\n${tail}`);
  }
}

export async function lastLogLines(t: OpenTarget, version: string, n = 20): Promise<string> {
  const r = await t.transport.run(t.dir.tailLog(version, n), { check: false });
  const text = r.stdout.trim();
  return text ? `\n--- last ${n} lines of logs/${version}.log ---\n${text}` : " (the app wrote no log output)";
}

const stoppingCandidate = (t: OpenTarget) => `stopping the unverified release on ${t.name}`;
const serving = (h: HostDeploy) => (h.previous ? `${h.previous} keeps serving` : "nothing was switched");
const FAILED_RECORD = "recording the failed release";
const LIVE_RECORD = "recording the live release";
const UNDO_SWITCH = "switching back";

/** Runs `fn` on every host (see fleet.ts); `what` names the stage in per-host lines of a fleet. */
const onHosts = (ctx: DeployContext, run: PipelineRun, what: string, fn: (h: HostDeploy) => Promise<void>) => onEveryHost(ctx, run.signal, what, fn);

/** blue-green or restart for this host: what the user asked for, or (auto) blue-green where Caddy fronts the app. */
export async function chooseStrategy(spec: Spec, front: Front | undefined, t: OpenTarget): Promise<"blue-green" | "restart"> {
  const why = front ? await front.available(t) : "no Caddy fronts the app (set deploy.domain on a host with Caddy)";
  if (spec.strategy === "restart") return "restart";
  if (spec.strategy === "blue-green") {
    if (why !== true) throw new OperationError(`deploy.strategy is blue-green but on ${t.name} ${why}; use strategy: restart or auto`);
    return "blue-green";
  }
  return why === true ? "blue-green" : "restart";
}

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
        // stage: it is hashed while the connections open (the build stage takes the result).
        if (ctx.spec.artifact === "build" && ctx.spec.binary && !ctx.spec.buildCmd && !ctx.spec.hooks.pre_build && existsSync(artifactPath(ctx.spec))) {
          ctx.digest = hashOf(ctx, run.signal);
          ctx.digest.catch(() => undefined); // the build stage reports a failure, if it gets that far
        }
        await onHosts(ctx, run, "connect", async (h) => {
          if (ctx.firstBoot) {
            const waited = Number((await h.t.transport.run(h.t.dir.firstBootWait(FIRST_BOOT_TIMEOUT), { signal: run.signal })).stdout.trim());
            if (waited > 0) ctx.log.info(`${h.t.name}: waited ${waited}s for its first boot (cloud-init) to finish`);
          }
          await h.t.service();
          // What serves is read again under the lock; read here only for hooks that run before it.
          if (Object.keys(ctx.spec.hooks).length > 0) h.previous = (await h.t.transport.run(h.t.dir.current(), { signal: run.signal })).stdout.trim() || undefined;
          if (run.signal.aborted) return;
          h.strategy = h.report.strategy = await chooseStrategy(ctx.spec, ctx.front, h.t);
        });
        const strategies = [...new Set(ctx.hosts.map((h) => h.strategy))];
        const why = strategies[0] === "blue-green" ? `Caddy fronts the app; the old release gets ${ctx.spec.drain}s to drain` : "a restart in place on app_port";
        ctx.log.info(`strategy: ${strategies.join(" and ")}${ctx.spec.strategy === "auto" ? " (auto)" : ""}: ${strategies.length === 1 ? why : "per host"}`);
      },
    },
    {
      name: "build",
      run: async (ctx, run) => {
        if (ctx.spec.artifact === "store") return fetchFromStore(ctx, run);
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
      // Every host or none (see lockEveryHost): a lock held anywhere refuses the whole deploy before anything changed.
      name: "lock",
      touchesTarget: true,
      run: async (ctx, run) => {
        await lockEveryHost(
          ctx.hosts,
          {
            app: workspaceOf(ctx.spec).qualifiedApp,
            version: ctx.version!,
            waitSeconds: ctx.opts.lockWait,
            parallel: ctx.spec.parallel,
            log: ctx.log,
            before: (t) => [t.dir.layout()],
            // Under the lock no other deploy runs: a candidate still there was left by a dead one.
            // And what serves is settled: read it again.
            after: async (t) => {
              const stale = t.dir.candidateStop();
              return [{ ...stale, script: script(stale.script, (await t.service()).stopStale().script) }, t.dir.current()];
            },
            locked: (h, [, current]) => {
              h.previous = h.report.previous = current.stdout.trim() || undefined;
            },
          },
          run,
        );
        ctx.report.previous = ctx.hosts[0]?.previous;
      },
    },
    {
      name: "upload",
      run: (ctx, run) =>
        onHosts(ctx, run, "upload", async (h) => {
          const { t, report } = h;
          const { sha256 } = ctx;
          const version = ctx.version!;
          const [, has, installed] = await runBatch(
            t.transport,
            [t.dir.writeEnvNext(formatDotenv({ ...ctx.spec.env, ...ctx.secrets })), t.dir.hasUpload(sha256), t.dir.releaseSha(version)],
            { signal: run.signal },
          );
          h.installed = installed.stdout.trim();
          if (h.installed !== "" && h.installed !== sha256 && version === h.previous) {
            throw new UsageError(
              `release ${version} is live with a different artifact; deploy the change under a new version (--version, or commit it so git describe changes)`,
            );
          }
          const answer = has.stdout;
          if (answer.split("\n")[0].trim() !== "yes") {
            const { source } = shipped(ctx);
            // A directory is built from the previous release's upload: only what changed is sent.
            const bases = statSync(source).isDirectory() ? uploadBases(answer) : [];
            // Beside the final name, then renamed: a cut-off upload is never taken for the artifact.
            const dest = `${t.target.appDir.replace(/\/+$/, "")}/.uploads/${sha256}.partial`;
            const sent = await t.transport.upload(source, dest, { signal: run.signal, linkDest: bases.map((b) => `../${b}`) });
            report.bytes = sent.bytes;
            report.files = sent.files;
            if (sent.linked) report.base = bases[0];
            report.uploaded = true;
          }
        }),
    },
    {
      name: "install",
      run: (ctx, run) =>
        onHosts(ctx, run, "install", async (h) => {
          const { t } = h;
          const { sha256 } = ctx;
          const version = ctx.version!;
          await runBatch(
            t.transport,
            [
              // Sent beside its final name: stored (the store's artifact checked by the host too: what it
              // stores is what the store built), then installed, in one round trip.
              ...(h.report.uploaded ? [ctx.fetched ? t.dir.storeVerifiedUpload(sha256, ctx.fetched.unpack) : t.dir.storeUpload(sha256)] : []),
              ...(h.installed !== sha256 ? [t.dir.install(version, sha256, shipped(ctx).name)] : []),
            ],
            { signal: run.signal },
          );
          // From here on, a release that does not go live is recorded as failed (kept for inspection).
          run.onFailure(`${FAILED_RECORD} on ${t.name}`, () => t.transport.run(t.dir.recordFailed(version), { check: false }));
        }),
    },
    {
      // Once a deploy, on the first host (a migration must not run once a host).
      name: "release",
      skip: (ctx) => !ctx.spec.releaseCmd,
      run: async (ctx, run) => {
        const h = ctx.hosts[0];
        const r = await h.t.transport.run(h.t.dir.releaseCmd(ctx.version!, ctx.spec.releaseCmd!, ctx.spec.appPort), { check: false, signal: run.signal });
        if (r.code !== 0) {
          const out = (r.stdout + r.stderr).trim().split("\n").slice(-20).join("\n");
          throw new OperationError(`release_cmd failed (exit ${r.code}) in release ${ctx.version}${ctx.hosts.length > 1 ? ` on ${h.t.name}` : ""}; ${serving(h)}\n${out}`);
        }
      },
    },
    {
      // The new release on a spare port, with its own env, while the old one keeps serving. Blue-green
      // keeps it running to become the live one; restart stops it once it passed.
      name: "verify",
      run: (ctx, run) =>
        onHosts(ctx, run, "verify", async (h) => {
          const { t } = h;
          const { spec } = ctx;
          const version = ctx.version!;
          const [from, to] = CANDIDATE_PORTS;
          const start = from + Math.floor(Math.random() * (to - from));
          const port = Number((await t.transport.run(t.dir.freePort(from, to, start), { signal: run.signal })).stdout.trim());
          const service = await t.service();
          const blueGreen = h.strategy === "blue-green";
          const stopCandidate = blueGreen ? service.stopSlot(port) : t.dir.candidateStop();
          const stopping = stoppingCandidate(t);
          run.onFailure(stopping, () => t.transport.run(stopCandidate, { check: false }));
          await t.transport.run(blueGreen ? service.startSlot(version, port, "envNext") : t.dir.candidateStart(version, requireRun(spec), port), { signal: run.signal });
          const health = await waitSettled({
            transport: t.transport,
            port,
            check: spec.healthcheck,
            status: blueGreen ? service.slotStatus(port) : t.dir.candidateStatus(),
            owner: blueGreen ? service.slotOwns(port) : t.dir.candidateOwns(port),
            signal: run.signal,
          });
          // Blue-green keeps it as the new live instance; restart-style stops it in the switch's own command.
          if (blueGreen) h.port = h.report.port = port;
          if (run.signal.aborted) return;
          if (!health.ok) {
            throw new OperationError(
              `release ${version} failed its health check${ctx.hosts.length > 1 ? ` on ${t.name}` : ""} (GET ${spec.healthcheck.path}: ${health.detail} after ${health.attempts} tries in ${(health.ms / 1000).toFixed(1)}s); ` +
                `${serving(h)}${ctx.hosts.length > 1 ? " on every host (no host switched)" : ""}; the release is kept in ${t.target.appDir}/v${version} for inspection.` +
                (await lastLogLines(t, version)),
            );
          }
        }),
    },
    {
      // Restart-style: the site points at app_port before the restart. Blue-green points it at the new
      // instance as its switch.
      name: "caddy",
      skip: (ctx) => !ctx.front || ctx.hosts.every((h) => h.strategy === "blue-green"),
      run: (ctx, run) =>
        onHosts(ctx, run, "caddy", async (h) => {
          if (h.strategy === "restart") await ctx.front!.forRestart(h.t, ctx.log);
        }),
    },
    {
      name: "switch",
      run: async (ctx, run) => {
        const version = ctx.version!;
        const fleet = ctx.hosts.length > 1;
        // Every host switched so far goes back if a later one fails (newest first), before the failure is reported.
        run.onFailure(UNDO_SWITCH, async () => {
          const back = ctx.hosts.filter((h) => h.switched);
          await eachHost(back, { parallel: ctx.spec.parallel, log: ctx.log, what: "switch back" }, (h) => revertLive(liveInput(ctx, h)));
          if (back.length > 0 && fleet) ctx.log.info(`switched ${back.map((h) => h.name).join(", ")} back to what served before`);
        });
        await inBatches(ctx.hosts, ctx.spec.rolling, ctx.log, async (batch) =>
          eachHost(batch, { parallel: ctx.spec.parallel, log: ctx.log, what: "switch", signal: run.signal }, async (h) => {
            const outcome =
              h.strategy === "blue-green"
                ? await frontSwitch(liveInput(ctx, h))
                : await switchRelease({ spec: ctx.spec, t: h.t, version, previous: h.previous, takeNextEnv: true, stopFirst: h.t.dir.candidateStop(), signal: run.signal }).finally(() =>
                    run.forget(stoppingCandidate(h.t)),
                  );
            if (!outcome.ok) {
              const port = h.strategy === "blue-green" ? `port ${h.port} behind Caddy` : `port ${ctx.spec.appPort}`;
              throw new OperationError(
                `release ${version} passed verification but failed${fleet ? ` on ${h.t.name}` : ""} on ${port} (${outcome.detail}); ` +
                  `${h.previous ? `switched back to ${h.previous}` : "nothing is serving"}${fleet ? "; every host switched so far goes back too" : ""}.` +
                  (await lastLogLines(h.t, version)),
              );
            }
            h.switched = true;
          }),
        );
        // Every host serves the new release: the old ones get their drain and stop; nothing goes back now.
        await onHosts(ctx, run, "live", async (h) => {
          if (h.strategy === "blue-green") await goLive(liveInput(ctx, h));
          h.switched = false;
        });
        run.forget(UNDO_SWITCH);
        // It is live: from here on a failure must not call it failed, and it must be on record.
        for (const h of ctx.hosts) {
          run.forget(`${FAILED_RECORD} on ${h.t.name}`);
          // Blue-green: the verified instance is the live one now; an interrupt must not stop it.
          run.forget(stoppingCandidate(h.t));
          run.onFailure(`${LIVE_RECORD} on ${h.t.name}`, () => h.t.transport.run(h.t.dir.record(version), { check: false }));
        }
      },
    },
    {
      name: "record",
      run: (ctx, run) =>
        onHosts(ctx, run, "record", async (h) => {
          await h.t.transport.run(h.t.dir.record(ctx.version!));
          run.forget(`${LIVE_RECORD} on ${h.t.name}`);
        }),
    },
    {
      name: "prune",
      run: (ctx, run) =>
        onHosts(ctx, run, "prune", async (h) => {
          const [r] = await runBatch(h.t.transport, [h.t.dir.prune(ctx.spec.versionsToKeep), h.t.dir.pruneUploads()]);
          h.report.pruned = r.stdout.split("\n").filter(Boolean);
        }),
    },
  ];
}

/**
 * deploy.artifact: store — the build stage fetches the store's artifact of the current commit for
 * the hosts' os/arch (the proxy builds it when it has none); build_cmd never runs here.
 */
async function fetchFromStore(ctx: DeployContext, run: PipelineRun): Promise<void> {
  const platforms = new Map<string, string[]>();
  await onHosts(ctx, run, "platform", async (h) => {
    const out = (await h.t.transport.run(h.t.dir.platform(), { signal: run.signal })).stdout;
    const p = parseHostPlatform(out);
    if (!p) throw new OperationError(`${h.t.name} runs an os/architecture togo has no build name for (${out.trim().replace(/\n/g, ", ")}); deploy.artifact: store needs linux, darwin or a BSD on amd64, arm64, 386, arm, riscv64, ppc64le or s390x`);
    const k = `${p.os}/${p.arch}`;
    platforms.set(k, [...(platforms.get(k) ?? []), h.t.name]);
  });
  if (run.signal.aborted) return;
  if (platforms.size !== 1) {
    throw new UsageError(`deploy.artifact: store ships one build a deploy, but the hosts differ: ${[...platforms].map(([k, hs]) => `${k} (${hs.join(", ")})`).join("; ")}; deploy each kind as its own stage`);
  }
  const [os, arch] = [...platforms.keys()][0].split("/");
  const { fetchStoreArtifact } = await import("./store-artifact.js");
  const got = await fetchStoreArtifact({ spec: ctx.spec, platform: { os, arch }, log: ctx.log, signal: run.signal });
  // A directory artifact comes tarred (dist → dist.tar.gz): the host unpacks it to the name deploy.binary gives.
  const dirName = ctx.spec.binary?.replace(/\/+$/, "").split("/").pop();
  const unpack = dirName !== undefined && got.name === `${dirName}.tar.gz`;
  ctx.fetched = { file: got.file, name: unpack ? dirName : got.name, unpack };
  ctx.sha256 = got.sha256;
  ctx.report.artifact = { files: 1, bytes: got.size, hashedFiles: 1, hashedBytes: got.size, ms: 0 };
  const version = ctx.opts.version ?? (await gitVersion(ctx.spec.dir, got.sha256)) ?? got.coordinates.version.slice(0, 12);
  checkVersion(version);
  ctx.version = version;
  ctx.report.version = version;
  ctx.report.sha256 = got.sha256;
  const c = got.coordinates;
  ctx.report.store = { from: got.from, remote: c.remote, owner: c.owner, repo: c.repo, commit: c.version, os: c.os, arch: c.arch };
}

/** The host's switch, kept on the host: the switch learns the old port that an undo needs. */
function liveInput(ctx: DeployContext, h: HostDeploy): LiveInput {
  h.live ??= { spec: ctx.spec, t: h.t, log: ctx.log, front: ctx.front!, strategy: h.strategy, version: ctx.version!, port: h.port!, previous: h.previous, takeNextEnv: true };
  return h.live;
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
  const first = r.hosts[0];
  // The one-host fields stay where scripts read them; a fleet adds up.
  r.uploaded = r.hosts.some((h) => h.uploaded);
  r.bytes = r.hosts.reduce((n, h) => n + h.bytes, 0);
  r.files = first?.files ?? 0;
  r.base = first?.base;
  r.pruned = first?.pruned ?? [];
  const total = r.artifact && r.artifact.files > 1 ? `, ${r.files} of ${r.artifact.files} files` : "";
  const sent = r.uploaded ? `${r.bytes} bytes uploaded${r.hosts.length > 1 ? "" : total}` : "artifact already on the target, 0 bytes uploaded";
  const where = r.hosts.length > 1 ? ` to ${r.hosts.length} hosts` : "";
  return { url: ctx.url, message: `deployed ${ctx.spec.app} ${r.version}${where} (${sent})`, raw: r };
}
