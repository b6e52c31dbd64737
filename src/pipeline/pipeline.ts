// A deploy, a rollback, a docker release: each is a list of named stages run by this one runner.
// Every stage is timed and printed; `before`/`after` hooks attach to stages by name; the user's
// hooks (togo.yaml `hooks:`) ride on the same mechanism. Cleanup is registered by the stage that
// makes it necessary (a taken lock, a started candidate) and runs however the pipeline ends. An
// interrupt (the signal) stops the stage at hand, runs that cleanup, and ends in InterruptedError:
// library code never exits the process.
import { InterruptedError, OperationError, TogoError } from "../core/errors.js";
import type { Reporter } from "../core/log.js";
import type { Spec } from "../core/spec.js";
import { hookEnv, runUserHook, type HookFacts } from "./hooks.js";

export interface Stage<C> {
  name: string;
  /** Changes something on a target: the `pre_deploy` hook runs before the first such stage. */
  touchesTarget?: boolean;
  /** Not run (and not printed) when this says so, e.g. release_cmd when none is set. */
  skip?: (ctx: C) => boolean;
  run(ctx: C, run: PipelineRun): Promise<void>;
}

/** What a stage gets from the runner besides its context. */
export interface PipelineRun {
  readonly signal: AbortSignal;
  /** Runs when the pipeline ends, however it ends (newest first): release a lock, close a tunnel. */
  finally(what: string, fn: () => Promise<unknown>): void;
  /** Runs only when the pipeline fails or is interrupted (newest first): undo, stop a candidate. */
  onFailure(what: string, fn: (err: unknown) => Promise<unknown>): void;
  /** Drops a cleanup registered earlier (its work was done, e.g. the candidate was stopped). */
  forget(what: string): void;
}

export type StageHook<C> = (ctx: C, run: PipelineRun) => Promise<void>;

export interface StageHooks<C> {
  before?: Record<string, StageHook<C>[]>;
  after?: Record<string, StageHook<C>[]>;
}

export interface PipelineOptions<C> {
  /** `deploy` or `rollback`: which user hooks apply, and TOGO_COMMAND. */
  command: "deploy" | "rollback";
  spec: Spec;
  driver: string;
  log: Reporter;
  signal?: AbortSignal;
  hooks?: StageHooks<C>;
  /** What the user hooks are told (version, previous, hosts); stages fill it in as they learn it. */
  facts: (ctx: C) => HookFacts;
}

interface Cleanup {
  what: string;
  fn: (err: unknown) => Promise<unknown>;
}

/** Runs the stages in order; see the file comment. Resolves when every stage (and post hook) passed. */
export async function runPipeline<C>(stages: Stage<C>[], ctx: C, opts: PipelineOptions<C>): Promise<void> {
  const signal = opts.signal ?? new AbortController().signal;
  const onFail: Cleanup[] = [];
  const always: Cleanup[] = [];
  const run: PipelineRun = {
    signal,
    finally: (what, fn) => void always.push({ what, fn }),
    onFailure: (what, fn) => void onFail.push({ what, fn }),
    forget: (what) => {
      for (const list of [onFail, always]) {
        const i = list.findIndex((c) => c.what === what);
        if (i >= 0) list.splice(i, 1);
      }
    },
  };
  const started = performance.now();
  const user = opts.spec.hooks;
  const facts = () => opts.facts(ctx);
  const env = (extra: Record<string, string> = {}) => hookEnv(opts.spec, opts.driver, opts.command, facts(), extra);
  const hooks = withUserHooks(stages, opts);
  let preDeployDone = false;
  let current = "";

  const interrupted = () => signal.aborted;
  try {
    for (const stage of stages) {
      if (interrupted()) break;
      if (stage.skip?.(ctx)) continue;
      if (opts.command === "deploy" && stage.touchesTarget && !preDeployDone) {
        preDeployDone = true;
        if (user.pre_deploy) await runUserHook("pre_deploy", user.pre_deploy, opts.spec.dir, env(), opts.log, signal);
      }
      for (const h of hooks.before[stage.name] ?? []) await h(ctx, run);
      if (interrupted()) break;
      current = stage.name;
      await opts.log.stage(stage.name, () => stage.run(ctx, run));
      for (const h of hooks.after[stage.name] ?? []) await h(ctx, run);
    }
    if (interrupted()) throw interruption(signal);
  } catch (err) {
    const error = interrupted() ? interruption(signal) : err;
    if (interrupted()) {
      const steps = [...onFail].reverse().concat([...always].reverse()).map((c) => c.what);
      opts.log.warn(`${String(signal.reason ?? "interrupted")}: cleaning up${current ? ` after ${current}` : ""} (${steps.join(", ") || "nothing to undo"})`);
    }
    for (const c of onFail.reverse()) await c.fn(error).catch((e: unknown) => opts.log.warn(`while ${c.what}: ${message(e)}`));
    for (const c of always.reverse()) await c.fn(error).catch((e: unknown) => opts.log.warn(`while ${c.what}: ${message(e)}`));
    if (user.on_failure) {
      await runUserHook("on_failure", user.on_failure, opts.spec.dir, env({ TOGO_ERROR: message(error), TOGO_RUNTIME: runtime(started) }), opts.log).catch((e: unknown) =>
        opts.log.warn(message(e)),
      );
    }
    throw error;
  }
  for (const c of always.reverse()) await c.fn(undefined).catch((e: unknown) => opts.log.warn(`while ${c.what}: ${message(e)}`));
  const post = opts.command === "deploy" ? user.post_deploy : user.post_rollback;
  if (post) {
    const name = opts.command === "deploy" ? "post_deploy" : "post_rollback";
    try {
      await runUserHook(name, post, opts.spec.dir, env({ TOGO_RUNTIME: runtime(started) }), opts.log);
    } catch (err) {
      throw new OperationError(`${message(err)}; the ${opts.command} itself stands (${facts().version ?? "the release"} is live)`);
    }
  }
}

/** The user's pre_build hook as a `before` hook of the build stage, beside the pipeline's own. */
function withUserHooks<C>(stages: Stage<C>[], opts: PipelineOptions<C>): Required<StageHooks<C>> {
  const before: Record<string, StageHook<C>[]> = { ...(opts.hooks?.before ?? {}) };
  const after: Record<string, StageHook<C>[]> = { ...(opts.hooks?.after ?? {}) };
  const preBuild = opts.spec.hooks.pre_build;
  if (opts.command === "deploy" && preBuild && stages.some((s) => s.name === "build")) {
    before.build = [
      async (ctx, run) => runUserHook("pre_build", preBuild, opts.spec.dir, hookEnv(opts.spec, opts.driver, opts.command, opts.facts(ctx)), opts.log, run.signal),
      ...(before.build ?? []),
    ];
  }
  return { before, after };
}

function interruption(signal: AbortSignal): InterruptedError {
  const reason = String(signal.reason ?? "SIGINT");
  return new InterruptedError(reason, `interrupted (${reason})`);
}

function runtime(started: number): string {
  return ((performance.now() - started) / 1000).toFixed(1);
}

function message(err: unknown): string {
  return err instanceof TogoError || err instanceof Error ? err.message : String(err);
}
