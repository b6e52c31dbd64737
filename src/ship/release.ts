// The versioned-release strategy: release folders on a target (this machine or a host over SSH),
// `current` switched atomically, a service manager (systemd user unit or togo's process manager),
// Caddy in front where asked. The local, vps and aws drivers ship with it; they differ only in the
// targets they hand in.
import { OperationError, UsageError } from "../core/errors.js";
import type { DriverContext } from "../core/registry.js";
import type { LiveStatus, LogOptions, Release, Result, Shipping, Spec, Target } from "../core/spec.js";
import { readTemplate } from "../core/template.js";
import { runPipeline, type Stage } from "../pipeline/pipeline.js";
import { applySiteScript, DEFAULT_SITE_TEMPLATE, removeSiteScript, renderSite, siteFileName } from "./caddy.js";
import { eachHost } from "./fleet.js";
import type { Front } from "./switch.js";
import { checkVersion, deployResult, deployStages, newDeployContext } from "./deploy.js";
import { probe } from "./health.js";
import { command } from "../exec/transport.js";
import { q, qpath, script } from "../core/shell.js";
import { paths, readFileScript } from "./scripts.js";
import { planDeploy } from "./plan.js";
import type { ShippingOptions } from "./options.js";
import { listReleases, newRollbackContext, rollbackResult, rollbackStages } from "./rollback.js";
import { openTarget, type OpenOptions, type OpenTarget } from "./target.js";
import { workspaceOf } from "../core/workspace.js";

export interface VersionedReleaseConfig {
  driver: string;
  ctx: DriverContext;
  options: ShippingOptions;
  /**
   * What fronts the app: `site` — a Caddy site on the host for `domain` (remote hosts); `own` — the
   * app's own Caddy on app_port when `caddy` is on PATH (this machine). Blue-green switches through it.
   */
  front: "site" | "own";
  /** The targets set themselves up at first boot (cloud-init): a deploy waits until that is done. */
  firstBoot?: boolean;
  open?: OpenOptions;
  /** Where `env:` secrets are read from (default: this process's environment). */
  env?: Record<string, string | undefined>;
}

/** The targets a command works on: all of them, or the one `--host` names. */
export function pickTargets(targets: Target[], host: string | undefined): Target[] {
  if (host === undefined) return targets;
  const picked = targets.filter((t) => (t.host ?? "local") === host);
  if (picked.length === 0) throw new UsageError(`--host ${host} is not one of this app's hosts: ${targets.map((t) => t.host ?? "local").join(", ")}`);
  return picked;
}

export function versionedRelease(cfg: VersionedReleaseConfig): Shipping {
  const { ctx, options: o } = cfg;
  /** Opens every target (closing all of them however fn ends). */
  const open = async <T>(spec: Spec, targets: Target[], fn: (ts: OpenTarget[]) => Promise<T>) => {
    const opened = pickTargets(targets, ctx.opts.host).map((target) => openTarget(spec, target, o, cfg.open ?? {}));
    try {
      return await fn(opened);
    } finally {
      await Promise.all(opened.map((t) => t.close()));
    }
  };
  const front = (spec: Spec): Front | undefined => (cfg.front === "own" ? ownCaddy(spec) : spec.domain ? caddySiteFront(spec, o) : undefined);
  /** Runs a deploy or rollback pipeline; a failure says what serves on each host now. */
  const run = <C extends { hosts: { t: OpenTarget }[]; version?: string; report?: { previous?: string } }>(
    command: "deploy" | "rollback",
    stages: Stage<C>[],
    c: C,
    spec: Spec,
    previous: (c: C) => string | undefined,
  ) =>
    runPipeline(stages, c, {
      command,
      spec,
      driver: cfg.driver,
      log: ctx.log,
      signal: ctx.signal,
      facts: (x) => ({ version: x.version, previous: previous(x), hosts: x.hosts.map((h) => h.t.target.host ?? "local") }),
    }).catch((err: unknown) => afterFailure(c.hosts.map((h) => h.t), err, ctx.log));

  return {
    deploy: (spec, targets) => {
      // A bad --version is a usage error before anything runs (hooks included).
      if (ctx.opts.version !== undefined) checkVersion(ctx.opts.version);
      return open(spec, targets, async (ts) => {
        const dc = newDeployContext({ spec, log: ctx.log, opts: ctx.opts, targets: ts, url: ts[0].target.url, env: cfg.env, front: front(spec), firstBoot: cfg.firstBoot });
        await run("deploy", deployStages(), dc, spec, (x) => x.hosts[0]?.previous);
        const result = deployResult(dc);
        // Counted after the locks were given back: every command of the deploy.
        for (const h of dc.hosts) {
          h.report.roundTrips = h.t.transport.stats.commands;
          h.report.sessions = h.t.transport.stats.sessions;
        }
        const ssh = ts.length === 1 && ts[0].target.host ? { ssh: { ...ts[0].transport.stats } } : {};
        return { ...result, raw: { ...(result.raw as object), ...ssh } };
      });
    },

    rollback: (spec, targets, version) =>
      open(spec, targets, async (ts) => {
        const rc = newRollbackContext({ spec, log: ctx.log, opts: ctx.opts, targets: ts, url: ts[0].target.url, wanted: version, front: front(spec) });
        await run("rollback", rollbackStages(), rc, spec, (x) => x.hosts[0]?.previous);
        return rollbackResult(rc);
      }),

    releases: (spec, targets) =>
      open(spec, targets, async (ts) => {
        const all = await Promise.all(ts.map(async (t) => (await listReleases(t)).map((r) => (ts.length > 1 ? { ...r, host: t.target.host ?? "local" } : r))));
        return all.flat();
      }),

    live: (spec, targets) => open(spec, targets, (ts) => fleetStatus(spec, ts)),

    logs: (spec, targets, opts: LogOptions) =>
      open(spec, targets, async (ts) => {
        if (ts.length > 1 && opts.follow) throw new UsageError(`logs --follow reads one host; pick it with --host (one of ${ts.map((t) => t.target.host).join(", ")})`);
        for (const t of ts) {
          const version = (await t.transport.run(t.dir.current())).stdout.trim();
          if (ts.length > 1) process.stdout.write(`==> ${t.name} <==\n`);
          if (!version) {
            if (ts.length === 1) throw new OperationError(`${spec.app} has no current release on ${t.name}; nothing to show`);
            process.stdout.write("(no current release)\n");
            continue;
          }
          await t.transport.run(t.dir.tailLog(version, opts.lines, opts.follow), { inherit: true, check: false });
        }
      }),

    exec: (spec, targets, argv) =>
      open(spec, targets, async (ts) => {
        let code = 0;
        for (const t of ts) {
          if (ts.length > 1) process.stderr.write(`==> ${t.name} <==\n`);
          const c = await t.transport.interactive(t.dir.exec(argv, spec.appPort));
          if (code === 0) code = c;
        }
        return code;
      }),

    releaseLock: (spec, targets) =>
      open(spec, targets, async (ts): Promise<Result> => {
        const said: string[] = [];
        const raw: { host: string; held: string }[] = [];
        for (const t of ts) {
          const held = (await t.transport.run(t.dir.lockInfo())).stdout.trim();
          await t.transport.run(t.dir.lockRelease());
          said.push(held ? `released the deploy lock of ${spec.app} on ${t.name} (was: ${held})` : `no deploy lock of ${spec.app} was held on ${t.name}`);
          raw.push({ host: t.target.host ?? "local", held });
        }
        return { message: said.join("\n"), raw: ts.length === 1 ? { held: raw[0].held } : { hosts: raw } };
      }),

    plan: (spec, targets) =>
      open(spec, targets, (ts) => {
        const app = workspaceOf(spec).qualifiedApp;
        const file = `${o.caddyDir.replace(/\/+$/, "")}/${siteFileName(app)}`;
        const site =
          cfg.front === "site" && spec.domain
            ? { path: file, text: (port: number) => siteText(spec, o, port), read: command("plan.site", readFileScript(`${qpath(o.caddyDir)}/${q(siteFileName(app))}`), { what: "reading the Caddy site" }) }
            : undefined;
        return planDeploy(spec, ts, { driver: cfg.driver, front: front(spec), site, env: cfg.env, version: ctx.opts.version });
      }),

    remove: (spec, targets) =>
      open(spec, targets, async (ts) => {
        await ctx.log.stage("stop", () =>
          eachHost(ts.map((t) => ({ t, name: t.name })), { log: ctx.log, what: "stop" }, async ({ t }) => {
            const service = await t.service();
            await t.transport.run(service.remove(), { check: false });
            await t.transport.run(t.dir.candidateStop(), { check: false });
            await t.transport.run(t.dir.ownCaddyStop(), { check: false });
            if (cfg.front === "site" && spec.domain) await t.transport.run(command("caddy.remove", removeSiteScript(workspaceOf(spec).qualifiedApp, o.caddyDir, o.caddyfile)), { check: false });
          }),
        );
        await ctx.log.stage("clean", () => Promise.all(ts.map((t) => t.transport.run(t.dir.remove()))));
      }),
  };
}

/**
 * After a failed or interrupted deploy/rollback: says what an interrupt stopped on the target and
 * what serves there now (read back, not assumed), then rethrows.
 */
async function afterFailure(ts: OpenTarget[], err: unknown, log: DriverContext["log"]): Promise<never> {
  for (const t of ts) {
    if (t.transport.stopped.length > 0) log.info(`stopped on ${t.name}: ${t.transport.stopped.join(", ")} (with everything it started)`);
    const r = await t.transport.run(t.dir.current(), { check: false }).catch(() => undefined);
    if (r && r.code === 0) log.info(`serving on ${t.name}: ${r.stdout.trim() ? `release ${r.stdout.trim()}` : "nothing"}`);
  }
  throw err;
}

/** `status` of every host; the fleet is ready when every host is, and its version is theirs when they agree. */
async function fleetStatus(spec: Spec, ts: OpenTarget[]): Promise<LiveStatus> {
  const each = await Promise.all(
    ts.map(async (t) => {
      try {
        return { host: t.target.host ?? "local", ...(await liveStatus(spec, t)) };
      } catch (err) {
        if (!(err instanceof OperationError)) throw err;
        return { host: t.target.host ?? "local", state: "failed" as const, healthy: false, message: err.message };
      }
    }),
  );
  if (each.length === 1) {
    const { host: _host, ...one } = each[0];
    return one;
  }
  const order: LiveStatus["state"][] = ["failed", "not-ready", "not-deployed", "ready"];
  const state = order.find((s) => each.some((h) => h.state === s)) ?? "ready";
  const versions = [...new Set(each.map((h) => h.version))];
  const ready = each.filter((h) => h.state === "ready").length;
  const version = versions.length === 1 ? versions[0] : undefined;
  const message =
    state === "ready"
      ? `release ${version ?? versions.join("/")} is serving on all ${each.length} hosts`
      : `${ready} of ${each.length} hosts ready; ${each.filter((h) => h.state !== "ready").map((h) => `${h.host}: ${h.message}`).join("; ")}`;
  return { state, version, healthy: state === "ready", message, hosts: each.map((h) => ({ host: h.host, state: h.state, version: h.version ?? null, healthy: h.healthy, message: h.message })) };
}

/** The live part of `status`: the current release, whether its process runs, and a probe. */
export async function liveStatus(spec: Spec, t: OpenTarget): Promise<LiveStatus> {
  const service = await t.service();
  const dir = paths(t.target.appDir).dir;
  const text = script(
    `(${t.dir.current().script})`,
    `echo "#"`,
    // `current` must lead somewhere: a link to a removed release serves nothing.
    `if cd ${dir} 2>/dev/null && [ -L current ] && [ ! -d current/ ]; then echo dangling; fi`,
    `echo "#"`,
    service.status().script,
  );
  const r = await t.transport.run(command("status", text, { what: "reading the release state" }), { check: false });
  const [versionPart, danglingPart = "", servicePart = ""] = r.stdout.split("#\n");
  const version = versionPart.trim() || undefined;
  if (!version) return { state: "not-deployed", healthy: false, message: "no release has been deployed" };
  if (danglingPart.trim() === "dangling") {
    return { state: "failed", version, healthy: false, message: `current points to release ${version}, whose folder is gone; deploy again or togo rollback` };
  }
  if (!servicePart.trim().startsWith("running")) {
    return { state: "failed", version, healthy: false, message: `release ${version} is current but its process is not running (togo logs shows why)` };
  }
  // `running <pid> <port>`: blue-green instances serve on their own port.
  const port = Number(servicePart.trim().split(/\s+/)[2]) || spec.appPort;
  const p = await probe(`${await t.transport.reach(port)}${spec.healthcheck.path}`, 2000);
  return p.ok
    ? { state: "ready", version, healthy: true, message: `release ${version} is serving` }
    : { state: "not-ready", version, healthy: false, message: `release ${version} runs but ${spec.healthcheck.path} answers ${p.detail}` };
}

/**
 * A Caddy site on the host for `domain`, written when changed, then a graceful `caddy reload`. For a
 * restart-style deploy a host without Caddy gets a warning; a blue-green switch must go through.
 */
/** The Caddy site a deploy writes for `domain`, pointing at `port`. */
function siteText(spec: Spec, o: ShippingOptions, port: number): string {
  return renderSite(
    { app: workspaceOf(spec).qualifiedApp, domain: spec.domain!, port, https: o.https, healthPath: spec.healthcheck.path },
    o.caddyTemplate ? readTemplate(spec.dir, o.caddyTemplate, "caddy_template") : DEFAULT_SITE_TEMPLATE,
    o.caddyTemplate ?? "the default Caddy site template",
  );
}

function caddySiteFront(spec: Spec, o: ShippingOptions): Front {
  const write = async (t: OpenTarget, port: number, log: DriverContext["log"], strict: boolean) => {
    const site = siteText(spec, o, port);
    const r = await t.transport.run(command("caddy.site", applySiteScript(workspaceOf(spec).qualifiedApp, site, o.caddyDir, o.caddyfile), { what: "writing the Caddy site" }), { check: false });
    const said = r.stdout.trim();
    const problem =
      r.code === 0 && said === "no-caddy"
        ? `domain ${spec.domain} is set but Caddy is not installed on ${t.name}; set deploy.options.install_caddy: true and run togo provision`
        : r.code === 3
          ? `${r.stderr.trim()}; run togo provision as a user with sudo (or create it as root) so the site can be served`
          : undefined;
    if (problem && strict) throw new OperationError(problem);
    if (problem) log.warn(problem);
    else if (r.code !== 0) {
      throw new OperationError(
        `Caddy rejected the site for ${spec.domain} (the previous site file was restored; the old release keeps serving):\n${(r.stderr || r.stdout).trim().split("\n").slice(-10).join("\n")}`,
      );
    }
  };
  return {
    // Caddy fronts the app only where togo can point it: installed, and its site directory writable.
    available: async (t) => {
      if (!(await t.transport.facts()).caddy) return "Caddy is not installed (set deploy.options.install_caddy: true and run togo provision)";
      const dir = qpath(o.caddyDir);
      const r = await t.transport.run(command("caddy.dir", `[ -d ${dir} ] && [ -w ${dir} ]`, { what: "checking the Caddy site directory" }), { check: false });
      return r.code === 0 ? true : `the Caddy site directory ${o.caddyDir} is missing or not writable (run togo provision)`;
    },
    site: (t, port, log) => write(t, port, log, true),
    forRestart: (t, log) => write(t, spec.appPort, log, false),
  };
}

/** The app's own Caddy on app_port (this machine, `caddy` on PATH), its admin API on a unix socket in app_dir. */
function ownCaddy(spec: Spec): Front {
  return {
    available: async (t) => ((await t.transport.facts()).caddy ? true : "caddy is not on PATH (install Caddy to get blue-green deploys here)"),
    site: async (t, port, log) => {
      const r = await t.transport.run(t.dir.ownCaddyRoute(spec.appPort, port), { check: false });
      if (r.code !== 0) throw new OperationError(`the app's own Caddy could not be pointed at port ${port}: ${r.stderr.trim()}`);
      if (r.stdout.trim() === "took-over") log.warn(`Caddy took app_port ${spec.appPort} over from the restart-style release (a one-time gap while the strategy changes)`);
    },
    forRestart: async (t) => {
      await t.transport.run(t.dir.ownCaddyStop(), { check: false });
    },
  };
}

export type { Release };
