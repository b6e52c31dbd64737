// The versioned-release strategy: release folders on a target (this machine or a host over SSH),
// `current` switched atomically, a service manager (systemd user unit or togo's process manager),
// Caddy in front where asked. The local, vps and aws drivers ship with it; they differ only in the
// targets they hand in.
import { OperationError } from "../core/errors.js";
import type { DriverContext } from "../core/registry.js";
import type { LiveStatus, LogOptions, Release, Result, Shipping, Spec, Target } from "../core/spec.js";
import { readTemplate } from "../core/template.js";
import { runPipeline, type Stage } from "../pipeline/pipeline.js";
import { applySiteScript, DEFAULT_SITE_TEMPLATE, removeSiteScript, renderSite } from "./caddy.js";
import { checkVersion, deployResult, deployStages, newDeployContext, type DeployContext } from "./deploy.js";
import { probe } from "./health.js";
import { command } from "../exec/transport.js";
import { script } from "../core/shell.js";
import { paths } from "./scripts.js";
import type { ShippingOptions } from "./options.js";
import { listReleases, rollbackResult, rollbackStages, type RollbackContext } from "./rollback.js";
import { withTarget, type OpenOptions, type OpenTarget } from "./target.js";

export interface VersionedReleaseConfig {
  driver: string;
  ctx: DriverContext;
  options: ShippingOptions;
  /** Write a Caddy site for `domain` before the switch (remote hosts). */
  caddy: boolean;
  open?: OpenOptions;
  /** Where `env:` secrets are read from (default: this process's environment). */
  env?: Record<string, string | undefined>;
}

function only(targets: Target[]): Target {
  if (targets.length !== 1) throw new OperationError(`the versioned-release strategy ships to one target at a time (got ${targets.length})`);
  return targets[0];
}

export function versionedRelease(cfg: VersionedReleaseConfig): Shipping {
  const { ctx, options: o } = cfg;
  const open = <T>(spec: Spec, targets: Target[], fn: (t: OpenTarget) => Promise<T>) => withTarget(spec, only(targets), o, cfg.open ?? {}, fn);
  const hosts = (targets: Target[]) => targets.map((t) => t.host ?? "local");
  /** Runs a deploy or rollback pipeline on one target; a failure says what serves there now. */
  const run = <C extends { t: OpenTarget; version?: string; previous?: string }>(command: "deploy" | "rollback", stages: Stage<C>[], c: C, spec: Spec, targets: Target[]) =>
    runPipeline(stages, c, {
      command,
      spec,
      driver: cfg.driver,
      log: ctx.log,
      signal: ctx.signal,
      facts: (x) => ({ version: x.version, previous: x.previous, hosts: hosts(targets) }),
    }).catch((err: unknown) => afterFailure(c.t, err, ctx.log));

  return {
    deploy: (spec, targets) => {
      // A bad --version is a usage error before anything runs (hooks included).
      if (ctx.opts.version !== undefined) checkVersion(ctx.opts.version);
      return open(spec, targets, async (t) => {
        const dc = newDeployContext({ spec, log: ctx.log, opts: ctx.opts, t, url: t.target.url, env: cfg.env, proxy: cfg.caddy && spec.domain ? (c) => caddySite(c, o) : undefined });
        await run("deploy", deployStages(), dc, spec, targets);
        const result = deployResult(dc);
        return t.target.host ? { ...result, raw: { ...(result.raw as object), ssh: { ...t.transport.stats } } } : result;
      });
    },

    rollback: (spec, targets, version) =>
      open(spec, targets, async (t) => {
        const rc: RollbackContext = { spec, log: ctx.log, opts: ctx.opts, t, url: t.target.url, wanted: version };
        await run("rollback", rollbackStages(), rc, spec, targets);
        return rollbackResult(rc);
      }),

    releases: (spec, targets) => open(spec, targets, (t) => listReleases(t)),

    live: (spec, targets) => open(spec, targets, (t) => liveStatus(spec, t)),

    logs: (spec, targets, opts: LogOptions) =>
      open(spec, targets, async (t) => {
        const version = (await t.transport.run(t.dir.current())).stdout.trim();
        if (!version) throw new OperationError(`${spec.app} has no current release on ${t.name}; nothing to show`);
        await t.transport.run(t.dir.tailLog(version, opts.lines, opts.follow), { inherit: true, check: false });
      }),

    exec: (spec, targets, argv) => open(spec, targets, (t) => t.transport.interactive(t.dir.exec(argv, spec.appPort))),

    releaseLock: (spec, targets) =>
      open(spec, targets, async (t): Promise<Result> => {
        const held = (await t.transport.run(t.dir.lockInfo())).stdout.trim();
        await t.transport.run(t.dir.lockRelease());
        return { message: held ? `released the deploy lock of ${spec.app} on ${t.name} (was: ${held})` : `no deploy lock of ${spec.app} was held on ${t.name}`, raw: { held } };
      }),

    remove: (spec, targets) =>
      open(spec, targets, async (t) => {
        await ctx.log.stage("stop", async () => {
          const service = await t.service();
          await t.transport.run(service.remove(), { check: false });
          await t.transport.run(t.dir.candidateStop(), { check: false });
          if (cfg.caddy && spec.domain) await t.transport.run(command("caddy.remove", removeSiteScript(spec.app, o.caddyDir, o.caddyfile)), { check: false });
        });
        await ctx.log.stage("clean", () => t.transport.run(t.dir.remove()));
      }),
  };
}

/**
 * After a failed or interrupted deploy/rollback: says what an interrupt stopped on the target and
 * what serves there now (read back, not assumed), then rethrows.
 */
async function afterFailure(t: OpenTarget, err: unknown, log: DriverContext["log"]): Promise<never> {
  if (t.transport.stopped.length > 0) log.info(`stopped on ${t.name}: ${t.transport.stopped.join(", ")} (with everything it started)`);
  const r = await t.transport.run(t.dir.current(), { check: false }).catch(() => undefined);
  if (r && r.code === 0) log.info(`serving on ${t.name}: ${r.stdout.trim() ? `release ${r.stdout.trim()}` : "nothing"}`);
  throw err;
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
  const p = await probe(`${await t.transport.reach(spec.appPort)}${spec.healthcheck.path}`, 2000);
  return p.ok
    ? { state: "ready", version, healthy: true, message: `release ${version} is serving` }
    : { state: "not-ready", version, healthy: false, message: `release ${version} runs but ${spec.healthcheck.path} answers ${p.detail}` };
}

/** Writes the Caddy site (when changed) and reloads Caddy; a host without Caddy gets a warning. */
async function caddySite(c: DeployContext, o: ShippingOptions): Promise<void> {
  const { spec, t, log } = c;
  const site = renderSite(
    { app: spec.app, domain: spec.domain!, port: spec.appPort, https: o.https, healthPath: spec.healthcheck.path },
    o.caddyTemplate ? readTemplate(spec.dir, o.caddyTemplate, "caddy_template") : DEFAULT_SITE_TEMPLATE,
    o.caddyTemplate ?? "the default Caddy site template",
  );
  const r = await t.transport.run(command("caddy.site", applySiteScript(spec.app, site, o.caddyDir, o.caddyfile), { what: "writing the Caddy site" }), { check: false });
  const said = r.stdout.trim();
  if (r.code === 0 && said === "no-caddy") {
    log.warn(`domain ${spec.domain} is set but Caddy is not installed on ${t.name}; set deploy.options.install_caddy: true and run togo provision`);
  } else if (r.code === 3) {
    log.warn(`${r.stderr.trim()}; run togo provision as a user with sudo (or create it as root) so the site can be served`);
  } else if (r.code !== 0) {
    throw new OperationError(
      `Caddy rejected the site for ${spec.domain} (the previous site file was restored; the old release keeps serving):\n${(r.stderr || r.stdout).trim().split("\n").slice(-10).join("\n")}`,
    );
  }
}

export type { Release };
