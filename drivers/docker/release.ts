// A docker release as named stages, run by the pipeline like every other driver's:
//   deploy:   secrets → build → push (resolve, for source: registry) → record → synth → apply <stack>
//   rollback: resolve (a version the history lacks) or verify (one it has) → secrets → synth → apply
// The registry is the first thing a deploy changes, so the user's pre_deploy hook runs right before
// the push. The release is recorded before the apply: an apply that fails (e.g. no provider) leaves
// the pushed digest in the history, and a later deploy or rollback finds it there.
import { createHmac, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { execa } from "execa";
import { OperationError, UsageError } from "../../src/core/errors.js";
import type { Reporter } from "../../src/core/log.js";
import type { RunOptions, Spec, StackSource } from "../../src/core/spec.js";
import { workspaceOf } from "../../src/core/workspace.js";
import { resolveSecrets } from "../../src/config/secrets.js";
import { apply, stackDir, synth, type ApplyOutcome } from "../../src/infra/runner.js";
import type { Stage, StageHooks } from "../../src/pipeline/pipeline.js";
import { runBuildCmd } from "../../src/ship/deploy.js";
import { VERSION } from "../../src/ship/scripts.js";
import * as C from "./image/commands.js";
import { entryName, entryProblem, HistoryError, markApplied, readHistory, recordPush, rollbackTarget, writeHistory, type History, type ImageRelease } from "./image/history.js";
import type { DockerOptions } from "./image/options.js";
import { providerProblem } from "./image/provider.js";
import { dockerBuildToLayout, localDigest, pushImage, remoteDigest } from "./image/push.js";
import { versionTag, withDigest, withTag } from "./image/ref.js";

/** How a stack is applied: terraform through the runner (a test may stand in for the provider). */
export type StackApply = typeof apply;

/** What the deploy and rollback stages share. */
export interface DockerRun {
  spec: Spec;
  log: Reporter;
  opts: RunOptions;
  o: DockerOptions;
  /** `registry/path` the images go to. */
  repository: string;
  historyFile: string;
  /** The stack for a release (none: the network only). */
  stack: (release?: ImageRelease) => StackSource;
  applyStack: StackApply;
  /** The version the stack was applied with before this run. */
  previous?: string;
  // Learnt by the stages:
  secrets: Record<string, string>;
  release?: ImageRelease;
  outcome?: ApplyOutcome;
}

export interface DockerDeployContext extends DockerRun {
  /** The local image to push (skopeo reference) and its digest; none for source: registry. */
  built?: { src: string; digest: string };
  version?: string;
  digest?: string;
  pushed: boolean;
}

export interface DockerRollbackContext extends DockerRun {
  /** Asked for by the user (default: the release before the current one). */
  wanted?: string;
  /** The target found in the history (null: not there, look in the registry). */
  fromHistory?: ImageRelease | null;
}

export function checkVersion(version: string): void {
  if (!VERSION.test(version)) {
    throw new UsageError(`--version "${version}" is not a valid version: letters, digits, . _ + -, starting with a letter or digit, at most 64`);
  }
}

/** The release version: --version, else `git describe --always --dirty`, else the digest. */
async function imageVersion(dir: string, digest: string): Promise<string> {
  const r = await execa("git", ["describe", "--always", "--dirty"], { cwd: dir, reject: false });
  const described = r.exitCode === 0 ? String(r.stdout).trim() : "";
  if (described && /^[A-Za-z0-9][A-Za-z0-9._+-]{0,50}$/.test(described)) {
    return described.endsWith("-dirty") ? `${described}.${digest.slice(7, 15)}` : described;
  }
  return `sha-${digest.slice(7, 19)}`;
}

/**
 * A keyed fingerprint of the resolved secrets: a changed secret re-applies the stack even when the
 * image is the same. The key is random and local (.togo/docker/<app>/secrets.key, 0600), so the
 * fingerprint says nothing about the values.
 */
function secretsFingerprint(spec: Spec, secrets: Record<string, string>): string {
  const keyFile = join(workspaceOf(spec).driverDir("docker"), "secrets.key");
  if (!existsSync(keyFile)) {
    mkdirSync(dirname(keyFile), { recursive: true });
    writeFileSync(keyFile, randomBytes(32).toString("hex"), { mode: 0o600 });
  }
  chmodSync(keyFile, 0o600);
  const h = createHmac("sha256", readFileSync(keyFile, "utf8").trim());
  for (const k of Object.keys(secrets).sort()) h.update(`${k}\0${secrets[k]}\0`);
  return h.digest("hex");
}

/** How secrets reach the stack (never its JSON): TF_VAR_secret_<NAME> in terraform's environment. */
export function secretVars(secrets: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(secrets).map(([k, v]) => [`TF_VAR_secret_${k}`, v]));
}

/**
 * Applies the stack for `release` (none: the network only) and records it as current. It must have
 * been synthesized: the provider check reads the stack folder, and says what would be applied.
 */
export async function applyRelease(run: DockerRun, release: ImageRelease | undefined, log: Reporter): Promise<ApplyOutcome> {
  const { spec } = run;
  const stack = run.stack(release);
  const problem = providerProblem(spec, stackDir(spec, stack.name));
  if (problem) {
    throw new OperationError(
      `${problem}.${release ? ` Version ${release.version} (${release.digest}) is pushed and recorded; the stack pinned to it is in ${stackDir(spec, stack.name)}/cdk.tf.json.` : ""}`,
    );
  }
  const h = readHistory(run.historyFile);
  const fingerprint = secretsFingerprint(spec, run.secrets);
  const force = run.opts.force || (h.appliedSecrets !== undefined && h.appliedSecrets !== fingerprint);
  const [r] = await run.applyStack(spec, [stack], log, force, secretVars(run.secrets));
  const after: History = release ? markApplied(h, release.version, new Date().toISOString()) : { ...h };
  writeHistory(run.historyFile, { ...after, appliedSecrets: fingerprint });
  return r;
}

/** The runner's own stage lines folded into the pipeline's `apply` stage; its notes still show. */
function inStage(log: Reporter): Reporter {
  return { stages: log.stages, stage: (_name, fn) => fn(), info: (m) => log.info(m), warn: (m) => log.warn(m) };
}

const secretsStage = <C extends DockerRun>(): Stage<C> => ({
  name: "secrets",
  run: async (ctx) => {
    ctx.secrets = await resolveSecrets(ctx.spec.secrets, ctx.spec.dir);
  },
});

const synthStage = <C extends DockerRun>(): Stage<C> => ({
  name: "synth",
  run: async (ctx) => {
    await synth(ctx.spec, [ctx.stack(ctx.release)]);
  },
});

const applyStage = <C extends DockerRun>(stackName: string): Stage<C> => ({
  name: `apply ${stackName}`,
  run: async (ctx) => {
    ctx.outcome = await applyRelease(ctx, ctx.release, inStage(ctx.log));
  },
});

/** Builds (or finds) the image; sets the release version. */
async function build(ctx: DockerDeployContext, signal: AbortSignal): Promise<void> {
  const { spec } = ctx;
  await runBuildCmd(spec, signal);
  const s = ctx.o.source;
  if (s.kind !== "registry") {
    let src: string;
    if (s.kind === "dockerfile") src = await dockerBuildToLayout(s, join(workspaceOf(spec).driverDir("docker"), "build"), spec.app, signal);
    else {
      if (!existsSync(s.path)) throw new OperationError(`the image source ${s.path} (deploy.options.source) does not exist after build_cmd`);
      src = C.sourceRef(s);
    }
    ctx.built = { src, digest: await localDigest(src, signal) };
  }
  const version = ctx.opts.version ?? (await imageVersion(spec.dir, ctx.built?.digest ?? "sha256:"));
  checkVersion(version);
  ctx.version = version;
}

export function dockerDeployStages(stackName: string): Stage<DockerDeployContext>[] {
  const fromRegistry = (ctx: DockerDeployContext) => ctx.o.source.kind === "registry";
  return [
    secretsStage(),
    { name: "build", run: (ctx, run) => build(ctx, run.signal) },
    {
      name: "push",
      touchesTarget: true,
      skip: fromRegistry,
      run: async (ctx, run) => {
        const { src, digest } = ctx.built!;
        const version = ctx.version!;
        // A version this checkout pushed as another image is refused before anything is sent.
        recordPush(readHistory(ctx.historyFile), { version, digest, repository: ctx.repository, pushedAt: "" }, ctx.spec.versionsToKeep);
        const outcome = await pushImage(src, digest, withTag(ctx.repository, versionTag(version, ctx.spec.stage)), !ctx.o.insecureRegistry, run.signal);
        ctx.digest = digest;
        ctx.pushed = outcome.pushed;
      },
    },
    {
      // Reads only, but it stands where the push would: the pre_deploy hook runs before it too.
      name: "resolve",
      touchesTarget: true,
      skip: (ctx) => !fromRegistry(ctx),
      run: async (ctx, run) => {
        const ref = withTag(ctx.repository, versionTag(ctx.version!, ctx.spec.stage));
        const found = await remoteDigest(ref, !ctx.o.insecureRegistry, run.signal);
        if (!found) {
          throw new OperationError(
            `${ref} is not in the registry; push it first (deploy.options.source is registry), or point options.source at the image to push (oci:PATH, docker-archive:PATH, dockerfile)`,
          );
        }
        ctx.digest = found;
      },
    },
    {
      name: "record",
      run: async (ctx) => {
        const release: ImageRelease = { version: ctx.version!, digest: ctx.digest!, repository: ctx.repository, pushedAt: new Date().toISOString() };
        writeHistory(ctx.historyFile, recordPush(readHistory(ctx.historyFile), release, ctx.spec.versionsToKeep));
        ctx.release = release;
      },
    },
    synthStage(),
    applyStage(stackName),
  ];
}

/** Said after the push stage's line, as the registry answered. */
export const dockerDeployHooks: StageHooks<DockerDeployContext> = {
  after: {
    push: [
      async (ctx) => {
        const dest = withTag(ctx.repository, versionTag(ctx.version!, ctx.spec.stage));
        ctx.log.info(ctx.pushed ? `pushed ${dest} (${ctx.digest})` : `${dest} is already in the registry as ${ctx.digest}; nothing sent`);
      },
    ],
  },
};

/**
 * The rollback's target from the history, looked up once (a missing history entry is null). The file
 * is only a record on this machine: an entry is pinned only if it is what a push records, of this
 * app's repository (the verify stage then asks the registry for it).
 */
function fromHistory(ctx: DockerRollbackContext): ImageRelease | null {
  if (ctx.fromHistory !== undefined) return ctx.fromHistory;
  const h = readHistory(ctx.historyFile);
  const found = rollbackTarget(h, ctx.wanted, ctx.historyFile) ?? null;
  if (found) {
    const problem = entryProblem(found);
    if (problem) {
      throw new HistoryError(
        `${ctx.historyFile}: ${entryName(h, found)} ${problem}; nothing was applied. ` +
          "Fix or remove that entry (togo rollback VERSION finds a version the history lacks by its registry tag)",
      );
    }
    if (found.repository !== ctx.repository) {
      throw new OperationError(
        `${ctx.historyFile}: ${entryName(h, found)} was pushed to ${found.repository}, not to ${ctx.repository} (deploy.image); nothing was applied. ` +
          "Roll back to a version pushed there (togo releases), or, if deploy.image moved on purpose, move the history away so versions are looked up in the new registry",
      );
    }
  }
  ctx.fromHistory = found;
  return found;
}

export function dockerRollbackStages(stackName: string): Stage<DockerRollbackContext>[] {
  return [
    {
      // Not in this checkout's history: the registry's tag is the record.
      name: "resolve",
      // The history is read here, inside the pipeline, so a rollback it refuses reaches on_failure.
      skip: (ctx) => {
        const found = fromHistory(ctx);
        if (found) ctx.release = found;
        return found !== null;
      },
      run: async (ctx, run) => {
        const version = ctx.wanted!;
        checkVersion(version);
        const ref = withTag(ctx.repository, versionTag(version, ctx.spec.stage));
        const digest = await remoteDigest(ref, !ctx.o.insecureRegistry, run.signal);
        if (!digest) throw new OperationError(`version ${version} is neither in the release history (togo releases) nor in the registry as ${ref}`);
        const target: ImageRelease = { version, digest, repository: ctx.repository, pushedAt: new Date().toISOString() };
        writeHistory(ctx.historyFile, recordPush(readHistory(ctx.historyFile), target, ctx.spec.versionsToKeep));
        ctx.release = target;
      },
    },
    {
      // From the history: the registry must still serve that exact digest, or the apply would fail
      // half-way (or pull something else under a reused name).
      name: "verify",
      skip: (ctx) => ctx.fromHistory === null,
      run: async (ctx, run) => {
        const r = ctx.release!;
        const ref = withDigest(r.repository, r.digest);
        const served = await remoteDigest(ref, !ctx.o.insecureRegistry, run.signal);
        if (served !== r.digest) {
          throw new OperationError(
            `version ${r.version} (${ctx.historyFile}) is ${ref}, which the registry ${served ? `serves as ${served}` : "no longer has"}; nothing was applied. ` +
              "Roll back to another version (togo releases), or deploy this one again",
          );
        }
      },
    },
    secretsStage(),
    synthStage(),
    applyStage(stackName),
  ];
}
