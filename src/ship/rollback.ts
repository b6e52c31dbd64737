// Rollback as stages: connect (read the releases, pick the target) → lock → switch → record. The
// switch is the deploy's own (ship/switch.ts): same restart, same health check, same undo. Rollback
// deletes nothing.
import { OperationError, UsageError } from "../core/errors.js";
import type { Reporter } from "../core/log.js";
import type { Release, Result, RunOptions, Spec } from "../core/spec.js";
import type { Stage } from "../pipeline/pipeline.js";
import { acquireLock, releaseLock } from "./lock.js";
import { switchRelease } from "./switch.js";
import type { OpenTarget } from "./target.js";

export interface RollbackContext {
  spec: Spec;
  log: Reporter;
  opts: RunOptions;
  t: OpenTarget;
  url: string;
  /** Asked for by the user (default: the release before the current one). */
  wanted?: string;
  // Learnt by the stages:
  version?: string;
  previous?: string;
}

export async function listReleases(t: OpenTarget): Promise<Release[]> {
  const out = (await t.transport.run(t.dir.releases())).stdout;
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

async function lastLogLines(t: OpenTarget, version: string, n = 20): Promise<string> {
  const r = await t.transport.run(t.dir.tailLog(version, n), { check: false });
  const text = r.stdout.trim();
  return text ? `\n--- last ${n} lines of logs/${version}.log ---\n${text}` : " (the app wrote no log output)";
}

export function rollbackStages(): Stage<RollbackContext>[] {
  return [
    {
      name: "connect",
      run: async (ctx) => {
        const { t, spec } = ctx;
        await t.service();
        const releases = await listReleases(t);
        const idx = releases.findIndex((r) => r.current);
        const target = ctx.wanted ?? (idx >= 0 ? releases[idx + 1]?.version : releases[0]?.version);
        const known = releases.map((r) => r.version).join(", ") || "none";
        if (!target) throw new OperationError(`no earlier release of ${spec.app} to roll back to (releases: ${known})`);
        if (!releases.some((r) => r.version === target)) throw new UsageError(`release ${target} is not on ${t.name}; known releases: ${known} (see togo releases)`);
        ctx.version = target;
        ctx.previous = releases[idx]?.version;
      },
    },
    {
      name: "lock",
      touchesTarget: true,
      run: async (ctx, run) => {
        const lock = await acquireLock(ctx.t, ctx.spec.app, ctx.version!, ctx.opts.lockWait, run.signal);
        run.finally("releasing the lock", () => releaseLock(ctx.t, lock));
      },
    },
    {
      name: "switch",
      run: async (ctx, run) => {
        const outcome = await switchRelease({ spec: ctx.spec, t: ctx.t, version: ctx.version!, previous: ctx.previous, takeNextEnv: false, signal: run.signal });
        if (!outcome.ok) {
          throw new OperationError(
            `release ${ctx.version} failed its health check after the rollback (${outcome.detail}); ${ctx.previous ? `switched back to ${ctx.previous}` : "nothing is serving"}.` +
              (await lastLogLines(ctx.t, ctx.version!)),
          );
        }
      },
    },
    {
      name: "record",
      run: async (ctx) => {
        await ctx.t.transport.run(ctx.t.dir.record(ctx.version!));
      },
    },
  ];
}

export function rollbackResult(ctx: RollbackContext): Result {
  return {
    url: ctx.url,
    message: `rolled back ${ctx.spec.app} from ${ctx.previous ?? "nothing"} to ${ctx.version}; no release was deleted`,
    raw: { from: ctx.previous, to: ctx.version },
  };
}
