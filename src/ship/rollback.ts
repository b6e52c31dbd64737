// Rollback as stages: connect (read the releases, pick the target) → lock → verify (blue-green: the
// old release started beside the live one) → switch → record, on every host of the fleet. The
// switch is the deploy's own (ship/switch.ts): same health check, same undo. Rollback deletes nothing.
import { OperationError, UsageError } from "../core/errors.js";
import type { Reporter } from "../core/log.js";
import type { Release, Result, RunOptions, Spec } from "../core/spec.js";
import type { PipelineRun, Stage } from "../pipeline/pipeline.js";
import { CANDIDATE_PORTS, lastLogLines } from "./deploy.js";
import { eachHost, inBatches, onEveryHost } from "./fleet.js";
import { lockEveryHost } from "./lock.js";
import { waitSettled } from "./settle.js";
import { frontSwitch, goLive, revertLive, switchRelease, type Front, type LiveInput } from "./switch.js";
import type { OpenTarget } from "./target.js";
import { workspaceOf } from "../core/workspace.js";

export interface RollbackHost {
  t: OpenTarget;
  name: string;
  version?: string;
  previous?: string;
  strategy?: "blue-green" | "restart";
  port?: number;
  switched?: boolean;
  live?: LiveInput;
}

export interface RollbackContext {
  spec: Spec;
  log: Reporter;
  opts: RunOptions;
  url: string;
  hosts: RollbackHost[];
  front?: Front;
  /** Asked for by the user (default: the release before the current one). */
  wanted?: string;
  // Learnt by the stages (the first host's, for messages and hooks):
  version?: string;
  previous?: string;
}

export function newRollbackContext(base: Omit<RollbackContext, "hosts"> & { targets: OpenTarget[] }): RollbackContext {
  const { targets, ...rest } = base;
  return { ...rest, hosts: targets.map((t) => ({ t, name: t.name })) };
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

const onHosts = (ctx: RollbackContext, run: PipelineRun, what: string, fn: (h: RollbackHost) => Promise<void>) => onEveryHost(ctx, run.signal, what, fn);

function liveInput(ctx: RollbackContext, h: RollbackHost): LiveInput {
  h.live ??= { spec: ctx.spec, t: h.t, log: ctx.log, front: ctx.front!, strategy: h.strategy, version: h.version!, port: h.port!, previous: h.previous, takeNextEnv: false };
  return h.live;
}

const UNDO_SWITCH = "switching back";

export function rollbackStages(): Stage<RollbackContext>[] {
  return [
    {
      name: "connect",
      run: async (ctx, run) => {
        const { spec } = ctx;
        await onHosts(ctx, run, "connect", async (h) => {
          const { t } = h;
          await t.service();
          const releases = await listReleases(t);
          const idx = releases.findIndex((r) => r.current);
          const target = ctx.wanted ?? (idx >= 0 ? releases[idx + 1]?.version : releases[0]?.version);
          const known = releases.map((r) => r.version).join(", ") || "none";
          if (!target) throw new OperationError(`no earlier release of ${spec.app} to roll back to on ${t.name} (releases: ${known})`);
          if (!releases.some((r) => r.version === target)) throw new UsageError(`release ${target} is not on ${t.name}; known releases: ${known} (see togo releases)`);
          h.version = target;
          h.previous = releases[idx]?.version;
          const why = ctx.front ? await ctx.front.available(t) : "no Caddy fronts the app";
          h.strategy = spec.strategy === "restart" || why !== true ? "restart" : "blue-green";
          if (spec.strategy === "blue-green" && why !== true) throw new OperationError(`deploy.strategy is blue-green but on ${t.name} ${why}; use strategy: restart or auto`);
        });
        const versions = [...new Set(ctx.hosts.map((h) => h.version))];
        if (versions.length > 1) {
          throw new OperationError(`the hosts would roll back to different releases (${ctx.hosts.map((h) => `${h.name}: ${h.version}`).join(", ")}); name one: togo rollback VERSION`);
        }
        ctx.version = ctx.hosts[0].version;
        ctx.previous = ctx.hosts[0].previous;
      },
    },
    {
      name: "lock",
      touchesTarget: true,
      run: (ctx, run) => lockEveryHost(ctx.hosts, { app: workspaceOf(ctx.spec).qualifiedApp, version: ctx.version!, waitSeconds: ctx.opts.lockWait, parallel: ctx.spec.parallel, log: ctx.log }, run),
    },
    {
      // Blue-green: the release to go back to starts beside the live one, with the live env, and must settle.
      name: "verify",
      skip: (ctx) => ctx.hosts.every((h) => h.strategy !== "blue-green"),
      run: (ctx, run) =>
        onHosts(ctx, run, "verify", async (h) => {
          if (h.strategy !== "blue-green") return;
          const { t } = h;
          const service = await t.service();
          const [from, to] = CANDIDATE_PORTS;
          const port = Number((await t.transport.run(t.dir.freePort(from, to, from + Math.floor(Math.random() * (to - from))), { signal: run.signal })).stdout.trim());
          run.onFailure(`stopping release ${h.version} on ${t.name}`, () => t.transport.run(service.stopSlot(port), { check: false }));
          await t.transport.run(service.startSlot(h.version!, port, "env"), { signal: run.signal });
          h.port = port;
          const health = await waitSettled({ transport: t.transport, port, check: ctx.spec.healthcheck, status: service.slotStatus(port), owner: service.slotOwns(port), signal: run.signal });
          if (!health.ok && !run.signal.aborted) {
            throw new OperationError(`release ${h.version} failed its health check on ${t.name} (${health.detail}); ${h.previous ?? "nothing"} keeps serving.` + (await lastLogLines(t, h.version!)));
          }
        }),
    },
    {
      name: "switch",
      run: async (ctx, run) => {
        run.onFailure(UNDO_SWITCH, () => eachHost(ctx.hosts.filter((h) => h.switched), { log: ctx.log, what: "switch back" }, (h) => revertLive(liveInput(ctx, h))));
        await inBatches(ctx.hosts, ctx.spec.rolling, ctx.log, (batch) =>
          eachHost(batch, { parallel: ctx.spec.parallel, log: ctx.log, what: "switch", signal: run.signal }, async (h) => {
            const outcome =
              h.strategy === "blue-green"
                ? await frontSwitch({ ...liveInput(ctx, h), signal: run.signal })
                : await switchRelease({ spec: ctx.spec, t: h.t, version: h.version!, previous: h.previous, takeNextEnv: false, signal: run.signal });
            if (!outcome.ok) {
              throw new OperationError(
                `release ${h.version} failed its health check after the rollback${ctx.hosts.length > 1 ? ` on ${h.t.name}` : ""} (${outcome.detail}); ${h.previous ? `switched back to ${h.previous}` : "nothing is serving"}.` +
                  (await lastLogLines(h.t, h.version!)),
              );
            }
            h.switched = true;
          }),
        );
        await onHosts(ctx, run, "live", async (h) => {
          if (h.strategy === "blue-green") await goLive(liveInput(ctx, h));
          h.switched = false;
        });
        run.forget(UNDO_SWITCH);
      },
    },
    {
      name: "record",
      run: (ctx, run) =>
        onHosts(ctx, run, "record", async (h) => {
          await h.t.transport.run(h.t.dir.record(h.version!));
        }),
    },
  ];
}

export function rollbackResult(ctx: RollbackContext): Result {
  const where = ctx.hosts.length > 1 ? ` on ${ctx.hosts.length} hosts` : "";
  return {
    url: ctx.url,
    message: `rolled back ${ctx.spec.app} from ${ctx.previous ?? "nothing"} to ${ctx.version}${where}; no release was deleted`,
    raw: { from: ctx.previous, to: ctx.version, ...(ctx.hosts.length > 1 ? { hosts: ctx.hosts.map((h) => ({ host: h.t.target.host ?? "local", from: h.previous, to: h.version })) } : {}) },
  };
}
