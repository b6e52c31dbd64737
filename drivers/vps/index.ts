// The `vps` driver: any Linux host reachable over SSH. Provision = a stack of Terraform built-ins
// whose remote-exec bootstraps the host; Deploy = the release engine over the SSH transport (one
// multiplexed connection per command run), with a systemd user unit when the host runs systemd,
// else togo's process manager, and a Caddy site when `domain` is set; Status = outputs + live probe
// through the same connection.
//
// The aws driver reuses this class for everything after its instance exists:
// `new VpsDriver(ctx).deploy({ ...spec, host, user })` (and status/rollback/releases/logs/exec), so
// nothing here may depend on the vps stack having been applied.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, join } from "node:path";
import { applySiteScript, DEFAULT_CADDY_DIR, DEFAULT_CADDYFILE, DEFAULT_SITE_TEMPLATE, importLine, removeSiteScript, renderSite, siteValues } from "../../src/ship/caddy.js";
import type { ConfigProblem } from "../../src/core/errors.js";
import { OperationError, UsageError } from "../../src/core/errors.js";
import { registerDriver, type DriverContext } from "../../src/core/registry.js";
import { deployRelease, listReleases, liveStatus, processManager, rollbackRelease, type EngineContext, type ServiceManager } from "../../src/ship/engine.js";
import * as S from "../../src/ship/scripts.js";
import { removeUnitScript, systemdManager, unitValues } from "../../src/ship/service/systemd.js";
import { q, qpath, script } from "../../src/core/shell.js";
import type { Driver, LogOptions, Release, Result, Spec, StackSource, Status } from "../../src/core/spec.js";
import { readTemplate, unknownPlaceholders } from "../../src/core/template.js";
import { closest } from "../../src/config/suggest.js";
import { apply, destroy, outputs } from "../../src/infra/runner.js";
import { knownHostKeys, SshTransport, type HostFacts, type HostKeyChecking, type SshTarget } from "../../src/exec/ssh.js";
import type { VpsStackProps } from "../../stacks/vps.js";
import { backendProps } from "../../src/infra/backend.js";

export function vpsStackName(spec: Spec): string {
  return `${spec.app}-vps`;
}

// --- options (deploy.options) ---

export interface VpsOptions {
  /** auto: systemd when the host runs it (and the user manager answers), else the process manager. */
  service: "auto" | "systemd" | "process";
  installCaddy: boolean;
  caddyDir: string;
  caddyfile: string;
  /** false: the Caddy site serves plain HTTP (TLS ends in front of it). */
  https: boolean;
  unitTemplate?: string;
  caddyTemplate?: string;
  hostKeyChecking: HostKeyChecking;
  upload: "auto" | "rsync" | "scp";
  bwlimit: number;
}

const SAFE_PATH = /^(~\/|\/)[A-Za-z0-9._/-]+$/;

/** `deploy.options` keys the vps shipping reads (the aws driver accepts them too). */
export const VPS_OPTION_KEYS = ["service", "install_caddy", "caddy_dir", "caddyfile", "https", "unit_template", "caddy_template", "host_key_checking", "upload", "bwlimit"];

/** Options nobody reads are typos: name each with the closest known key. */
export function unknownOptionProblems(spec: Spec, known: string[], driver: string): ConfigProblem[] {
  return Object.keys(spec.options)
    .filter((k) => !known.includes(k))
    .map((k) => {
      const guess = closest(k, known);
      return { path: `deploy.options.${k}`, expected: `unknown option for the ${driver} driver${guess ? `; did you mean "${guess}"?` : ""} (known: ${known.join(", ")})` };
    });
}

/** deploy.options as the vps driver reads them, with every problem named. Unknown keys are left to other drivers sharing the options. */
export function readVpsOptions(spec: Spec): { options: VpsOptions; problems: ConfigProblem[] } {
  const o = spec.options;
  const problems: ConfigProblem[] = [];
  const at = (k: string) => `deploy.options.${k}`;
  const oneOf = <T extends string>(k: string, allowed: T[], dflt: T): T => {
    const v = o[k];
    if (v === undefined) return dflt;
    if (typeof v === "string" && (allowed as string[]).includes(v)) return v as T;
    problems.push({ path: at(k), value: v, expected: `expected one of ${allowed.join(", ")}` });
    return dflt;
  };
  const bool = (k: string, dflt: boolean): boolean => {
    const v = o[k];
    if (v === undefined) return dflt;
    if (typeof v === "boolean") return v;
    problems.push({ path: at(k), value: v, expected: "expected true or false" });
    return dflt;
  };
  const path = (k: string, dflt: string): string => {
    const v = o[k];
    if (v === undefined) return dflt;
    if (typeof v === "string" && SAFE_PATH.test(v)) return v.replace(/\/+$/, "") || "/";
    problems.push({ path: at(k), value: v, expected: "expected an absolute path on the host (or ~/…) of letters, digits, . _ / -" });
    return dflt;
  };
  const template = (k: string, known: string[]): string | undefined => {
    const v = o[k];
    if (v === undefined) return undefined;
    if (typeof v !== "string" || v === "") {
      problems.push({ path: at(k), value: v, expected: "expected a path to a template file in the project" });
      return undefined;
    }
    const file = isAbsolute(v) ? v : join(spec.dir, v);
    if (!existsSync(file)) {
      problems.push({ path: at(k), value: v, expected: `no such file (${file}); point it at a template in the project or remove the key` });
      return undefined;
    }
    const unknown = unknownPlaceholders(readFileSync(file, "utf8"), known);
    if (unknown.length > 0) problems.push({ path: at(k), value: v, expected: `unknown placeholder ${unknown.map((u) => `{{${u}}}`).join(", ")}; known: ${known.map((x) => `{{${x}}}`).join(" ")}` });
    return v;
  };
  let bwlimit = 0;
  if (o.bwlimit !== undefined) {
    if (typeof o.bwlimit === "number" && Number.isInteger(o.bwlimit) && o.bwlimit >= 0) bwlimit = o.bwlimit;
    else problems.push({ path: at("bwlimit"), value: o.bwlimit, expected: "expected the upload limit in KiB/s, a whole number (0 = none)" });
  }
  const unitKeys = Object.keys(unitValues({ app: "a", appDir: "/a", run: "r", port: 1, version: "1" }));
  const siteKeys = Object.keys(siteValues({ app: "a", domain: "a.b", port: 1, https: true, healthPath: "/" }));
  const options: VpsOptions = {
    service: oneOf("service", ["auto", "systemd", "process"], "auto"),
    installCaddy: bool("install_caddy", false),
    caddyDir: path("caddy_dir", DEFAULT_CADDY_DIR),
    caddyfile: path("caddyfile", DEFAULT_CADDYFILE),
    https: bool("https", true),
    unitTemplate: template("unit_template", unitKeys),
    caddyTemplate: template("caddy_template", siteKeys),
    hostKeyChecking: oneOf("host_key_checking", ["accept-new", "yes"], "accept-new"),
    upload: oneOf("upload", ["auto", "rsync", "scp"], "auto"),
    bwlimit,
  };
  return { options, problems };
}

export function sshTargetOf(spec: Spec, o: VpsOptions): SshTarget {
  if (!spec.host || !spec.user) throw new UsageError(`deploy.host and deploy.user are required for the ${spec.provider} driver`);
  return {
    host: spec.host,
    user: spec.user,
    port: spec.sshPort,
    identityFile: spec.identityFile,
    knownHosts: spec.knownHosts,
    sshConfig: spec.sshConfig,
    hostKeyChecking: o.hostKeyChecking,
    upload: o.upload,
    bwlimit: o.bwlimit,
  };
}

/** Where users reach the app. */
export function appUrl(spec: Spec, o: VpsOptions): string {
  if (spec.domain) return `${o.https ? "https" : "http"}://${spec.domain}`;
  const host = spec.host?.includes(":") ? `[${spec.host}]` : spec.host;
  return `http://${host}:${spec.appPort}`;
}

/** systemd or the process manager, from the option and what the host has. */
export function chooseService(mode: VpsOptions["service"], facts: Pick<HostFacts, "systemd" | "userSystemd">, target: string): "systemd" | "process" {
  if (mode === "process") return "process";
  const usable = facts.systemd && facts.userSystemd;
  if (mode === "systemd" && !usable) {
    throw new OperationError(
      facts.systemd
        ? `options.service is systemd but the user systemd manager on ${target} does not answer; enable lingering as root (loginctl enable-linger USER) or run togo provision`
        : `options.service is systemd but ${target} does not run systemd; use service: auto or process`,
    );
  }
  return usable ? "systemd" : "process";
}

// --- the bootstrap (run by terraform's remote-exec as the deploy user) ---

export interface BootstrapInput {
  appDir: string;
  installCaddy: boolean;
  caddyDir: string;
  caddyfile: string;
}

/**
 * Idempotent host setup: the app layout; systemd (lingering for the user unit); Caddy (installed
 * with the host's package manager only when asked) and its site directory + import line. Steps
 * needing root run as root, with `sudo -n`, or are reported with the command to run.
 */
export function bootstrapScript(b: BootstrapInput): string {
  const dir = qpath(b.appDir);
  const cdir = qpath(b.caddyDir);
  const cfile = qpath(b.caddyfile);
  const imp = q(importLine(b.caddyDir));
  return script(
    `set -eu`,
    `echo "togo bootstrap on $(uname -n) as $(id -un)"`,
    S.layoutScript(b.appDir),
    `echo "app_dir ready: $(cd ${dir} && pwd)"`,
    `if [ "$(id -u)" = 0 ]; then as_root() { "$@"; }`,
    `elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then as_root() { sudo -n "$@"; }`,
    `else as_root() { return 1; }; fi`,
    `me=$(id -un)`,
    `if [ -d /run/systemd/system ]; then`,
    `  echo "systemd: yes (releases run as a user unit)"`,
    `  if ! loginctl show-user "$me" -p Linger 2>/dev/null | grep -q '=yes'; then`,
    `    loginctl enable-linger "$me" 2>/dev/null || as_root loginctl enable-linger "$me" 2>/dev/null || echo "WARNING: lingering is off for $me, so its services stop at logout; as root run: loginctl enable-linger $me"`,
    `  fi`,
    `else`,
    `  echo "systemd: no (PID 1 is $(cat /proc/1/comm 2>/dev/null || echo unknown)); releases run under togo's process manager"`,
    `fi`,
    `if ! command -v caddy >/dev/null 2>&1; then`,
    b.installCaddy
      ? script(
          `  echo "installing Caddy"`,
          `  if command -v apt-get >/dev/null 2>&1; then as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q caddy || { as_root apt-get update -q && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q caddy; }`,
          `  elif command -v dnf >/dev/null 2>&1; then as_root dnf install -y caddy`,
          `  elif command -v apk >/dev/null 2>&1; then as_root apk add --no-cache caddy`,
          `  elif command -v pacman >/dev/null 2>&1; then as_root pacman -S --noconfirm caddy`,
          `  elif command -v zypper >/dev/null 2>&1; then as_root zypper --non-interactive install caddy`,
          `  else echo "no known package manager to install Caddy with" >&2; false; fi || { echo "installing Caddy failed: it needs root (or passwordless sudo for $me)" >&2; exit 1; }`,
        )
      : `  echo "caddy: not installed (set deploy.options.install_caddy: true to install it)"`,
    `fi`,
    `if command -v caddy >/dev/null 2>&1; then`,
    `  echo "caddy: $(caddy version 2>/dev/null | head -n 1)"`,
    `  if [ ! -w ${cdir} ]; then as_root mkdir -p ${cdir} && as_root chown "$me" ${cdir} || echo "WARNING: cannot create ${b.caddyDir} for $me; as root run: mkdir -p ${b.caddyDir} && chown $me ${b.caddyDir}"; fi`,
    `  if [ -f ${cfile} ] && ! grep -qxF ${imp} ${cfile}; then`,
    `    printf '\\n%s\\n' ${imp} | as_root tee -a ${cfile} >/dev/null || echo "WARNING: cannot add the import line to ${b.caddyfile}; as root append: ${importLine(b.caddyDir)}"`,
    `  fi`,
    `fi`,
    `echo "togo bootstrap done"`,
  );
}

// --- facts recorded by provision, so synth/diff see the same stack without connecting ---

interface HostRecord {
  hostKey?: string;
  hasSystemd: string;
  hasCaddy: string;
}

function recordFile(spec: Spec): string {
  return join(spec.dir, ".togo", "hosts", `${vpsStackName(spec)}.json`);
}

function readRecord(spec: Spec): HostRecord | undefined {
  try {
    return JSON.parse(readFileSync(recordFile(spec), "utf8")) as HostRecord;
  } catch {
    return undefined;
  }
}

/**
 * The key to pin in terraform's connection. Terraform's Go SSH client prefers ECDSA, then RSA, then
 * Ed25519 host keys, so the pin follows that order among the keys known_hosts has for the host.
 */
export function pinHostKey(knownHostsText: string, host: string, port: number): string | undefined {
  const keys = knownHostKeys(knownHostsText, host, port);
  const order = ["ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa", "ssh-ed25519"];
  return [...keys].sort((a, b) => rank(a) - rank(b))[0];
  function rank(k: string): number {
    const i = order.indexOf(k.split(" ")[0]);
    return i < 0 ? order.length : i;
  }
}

export class VpsDriver implements Driver {
  readonly name: string = "vps";
  constructor(protected readonly ctx: DriverContext) {}

  validate(spec: Spec): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    const need = (ok: unknown, path: string, expected: string) => {
      if (!ok) problems.push({ path, expected });
    };
    need(spec.host, "deploy.host", "is required for the vps driver: the server's name or IP address");
    need(spec.user, "deploy.user", "is required for the vps driver: the (non-root) user togo logs in as, e.g. deploy");
    need(spec.run, "deploy.run", "is required for the vps driver: the command that starts the app on $PORT, e.g. node server.js");
    need(spec.binary, "deploy.binary", "is required for the vps driver: the file or directory to ship, e.g. dist/server.js");
    if (!SAFE_PATH.test(spec.appDir)) problems.push({ path: "deploy.app_dir", value: spec.appDir, expected: "expected an absolute path on the host or one starting with ~/" });
    if (spec.run && /[\n\r]/.test(spec.run)) problems.push({ path: "deploy.run", value: spec.run, expected: "expected one line (put longer start logic in a script in the artifact)" });
    for (const [key, p] of [["identity_file", spec.identityFile], ["known_hosts", spec.knownHosts], ["ssh_config", spec.sshConfig]] as const) {
      if (p !== undefined && /["'\n]/.test(p)) problems.push({ path: `deploy.${key}`, value: p, expected: "the path may not contain quotes or newlines" });
    }
    if (spec.identityFile && !existsSync(spec.identityFile)) problems.push({ path: "deploy.identity_file", value: spec.identityFile, expected: "no such file; point it at the private key, or remove the key to use ssh-agent" });
    if (spec.sshConfig && !existsSync(spec.sshConfig)) problems.push({ path: "deploy.ssh_config", value: spec.sshConfig, expected: "no such file" });
    // The aws driver ships through this one with options of its own; it checks the union itself.
    if (spec.provider === "vps") problems.push(...unknownOptionProblems(spec, VPS_OPTION_KEYS, "vps"));
    problems.push(...readVpsOptions(spec).problems);
    return problems;
  }

  protected options(spec: Spec): VpsOptions {
    return readVpsOptions(spec).options;
  }

  /** A transport for one command run; callers close it. */
  protected transport(spec: Spec): SshTransport {
    return new SshTransport(sshTargetOf(spec, this.options(spec)));
  }

  bootstrap(spec: Spec): string {
    const o = this.options(spec);
    return bootstrapScript({ appDir: spec.appDir, installCaddy: o.installCaddy, caddyDir: o.caddyDir, caddyfile: o.caddyfile });
  }

  stacks(spec: Spec): StackSource[] {
    const o = this.options(spec);
    const target = sshTargetOf(spec, o);
    const rec = readRecord(spec);
    const bootstrap = this.bootstrap(spec);
    const name = vpsStackName(spec);
    const props: VpsStackProps = {
      ...backendProps(spec),
      app: spec.app,
      host: target.host,
      user: target.user,
      port: target.port,
      appDir: spec.appDir,
      identityFile: spec.identityFile,
      hostKey: rec?.hostKey ?? this.knownHostKey(target),
      bootstrap,
      bootstrapSha256: createHash("sha256").update(bootstrap).digest("hex"),
      url: appUrl(spec, o),
      hasSystemd: rec?.hasSystemd ?? "unknown",
      hasCaddy: rec?.hasCaddy ?? (o.installCaddy ? "true" : "unknown"),
    };
    return [
      {
        name,
        props: props as unknown as Record<string, unknown>,
        define: async (app) => (await import("../../stacks/vps.js")).defineVpsStack(app, name, props),
      },
    ];
  }

  private knownHostKey(t: SshTarget): string | undefined {
    const file = t.knownHosts ?? join(homedir(), ".ssh", "known_hosts");
    return existsSync(file) ? pinHostKey(readFileSync(file, "utf8"), t.host, t.port) : undefined;
  }

  /** The service manager for this host. */
  protected service(spec: Spec, facts: HostFacts, target: string): ServiceManager {
    const o = this.options(spec);
    if (chooseService(o.service, facts, target) === "process") return processManager(spec);
    return systemdManager({
      app: spec.app,
      appDir: spec.appDir,
      run: spec.run!,
      port: spec.appPort,
      template: o.unitTemplate ? readTemplate(spec.dir, o.unitTemplate, "unit_template") : undefined,
      templateSource: o.unitTemplate,
    });
  }

  /** An engine context whose service is chosen once the host has been probed (beforeLock). */
  private engine(spec: Spec, t: SshTransport): EngineContext & { ready(): Promise<void> } {
    const o = this.options(spec);
    let chosen: ServiceManager | undefined;
    const current = () => {
      if (!chosen) throw new Error("the host was not probed before its service manager was used");
      return chosen;
    };
    const ready = async () => {
      chosen ??= this.service(spec, await t.facts(), t.target);
    };
    return {
      spec,
      transport: t,
      log: this.ctx.log,
      opts: this.ctx.opts,
      url: appUrl(spec, o),
      ready,
      beforeLock: ready,
      beforeSwitch: spec.domain ? () => this.ctx.log.stage("caddy", () => this.caddy(spec, t)) : undefined,
      service: {
        get kind() {
          return current().kind;
        },
        prepareScript: () => current().prepareScript(),
        restartScript: (v) => current().restartScript(v),
        stopScript: () => current().stopScript(),
        statusScript: () => current().statusScript(),
      },
    };
  }

  /** Writes the Caddy site (when changed) and reloads Caddy; a host without Caddy gets a warning. */
  private async caddy(spec: Spec, t: SshTransport): Promise<void> {
    const o = this.options(spec);
    const site = renderSite(
      { app: spec.app, domain: spec.domain!, port: spec.appPort, https: o.https, healthPath: spec.healthcheck.path },
      o.caddyTemplate ? readTemplate(spec.dir, o.caddyTemplate, "caddy_template") : DEFAULT_SITE_TEMPLATE,
      o.caddyTemplate ?? "the default Caddy site template",
    );
    const r = await t.run(applySiteScript(spec.app, site, o.caddyDir, o.caddyfile), { check: false, what: "writing the Caddy site" });
    const said = r.stdout.trim();
    if (r.code === 0 && said === "no-caddy") {
      this.ctx.log.warn(`domain ${spec.domain} is set but Caddy is not installed on ${t.target}; set deploy.options.install_caddy: true and run togo provision`);
    } else if (r.code === 3) {
      this.ctx.log.warn(`${r.stderr.trim()}; run togo provision as a user with sudo (or create it as root) so the site can be served`);
    } else if (r.code !== 0) {
      throw new OperationError(`Caddy rejected the site for ${spec.domain} (the previous site file was restored; the old release keeps serving):\n${(r.stderr || r.stdout).trim().split("\n").slice(-10).join("\n")}`);
    }
  }

  /** Runs fn with a fresh transport, always closing the connection. */
  protected async withTransport<T>(spec: Spec, fn: (t: SshTransport) => Promise<T>): Promise<T> {
    const t = this.transport(spec);
    try {
      return await fn(t);
    } finally {
      await t.close();
    }
  }

  async provision(spec: Spec): Promise<Result> {
    const o = this.options(spec);
    const target = sshTargetOf(spec, o);
    // Connect first: OpenSSH verifies (or, with accept-new, records) the host key that terraform then pins.
    const facts = await this.ctx.log.stage("connect", () => this.withTransport(spec, (t) => t.facts()));
    const hostKey = this.knownHostKey(target);
    if (!hostKey) {
      throw new OperationError(`the host key of ${target.host}:${target.port} is not in ${target.knownHosts ?? "~/.ssh/known_hosts"} after connecting; set deploy.known_hosts to the file your ssh uses`);
    }
    const rec: HostRecord = { hostKey, hasSystemd: String(facts.systemd), hasCaddy: String(facts.caddy || o.installCaddy) };
    mkdirSync(join(spec.dir, ".togo", "hosts"), { recursive: true });
    writeFileSync(recordFile(spec), `${JSON.stringify(rec, null, 2)}\n`);
    const [r] = await apply(spec, this.stacks(spec), this.ctx.log, this.ctx.opts.force);
    return { url: appUrl(spec, o), message: r.applied ? `provisioned ${r.stack} (${target.user}@${target.host})` : `${r.stack} is up to date`, raw: { ...r, facts } };
  }

  async deploy(spec: Spec): Promise<Result> {
    return this.withTransport(spec, async (t) => {
      const result = await deployRelease(this.engine(spec, t));
      const raw = { ...(result.raw as object), ssh: { ...t.stats } };
      return { ...result, raw };
    });
  }

  async status(spec: Spec): Promise<Status> {
    const o = this.options(spec);
    const out = spec.provider === "vps" ? await outputs(spec, vpsStackName(spec)) : {};
    try {
      return await this.withTransport(spec, async (t) => {
        const e = this.engine(spec, t);
        await e.ready();
        const live = await liveStatus(spec, t, e.service);
        return { ...live, url: (out.url as string | undefined) ?? appUrl(spec, o), outputs: out };
      });
    } catch (err) {
      if (!(err instanceof OperationError)) throw err;
      return { state: "failed", healthy: false, url: appUrl(spec, o), outputs: out, message: err.message };
    }
  }

  async destroy(spec: Spec): Promise<void> {
    const o = this.options(spec);
    await this.withTransport(spec, async (t) => {
      const e = this.engine(spec, t);
      await this.ctx.log.stage("stop", async () => {
        await e.ready();
        await t.run(e.service.stopScript(), { check: false });
        await t.run(S.processStopScript(spec.appDir, "candidate"), { check: false });
        if (e.service.kind === "systemd") await t.run(removeUnitScript(spec.app), { check: false });
        if (spec.domain) await t.run(removeSiteScript(spec.app, o.caddyDir, o.caddyfile), { check: false });
      });
      if (spec.provider === "vps") await destroy(spec, this.stacks(spec), this.ctx.log);
      await this.ctx.log.stage("clean", () => t.run(S.removeAppDirScript(spec.appDir), { what: "removing the app directory" }));
    });
  }

  async rollback(spec: Spec, version?: string): Promise<Result> {
    return this.withTransport(spec, async (t) => {
      const e = this.engine(spec, t);
      await e.ready();
      return rollbackRelease(e, version);
    });
  }

  async releases(spec: Spec): Promise<Release[]> {
    return this.withTransport(spec, (t) => listReleases(t, spec.appDir));
  }

  async logs(spec: Spec, opts: LogOptions): Promise<void> {
    await this.withTransport(spec, async (t) => {
      const version = (await t.run(S.currentVersionScript(spec.appDir))).stdout.trim();
      if (!version) throw new OperationError(`${spec.app} has no current release on ${t.target}; nothing to show`);
      await t.run(S.tailLogScript(spec.appDir, version, opts.lines, opts.follow), { inherit: true, check: false });
    });
  }

  async exec(spec: Spec, command: string[]): Promise<number> {
    return this.withTransport(spec, (t) => t.interactive(S.execInReleaseScript(spec.appDir, command, spec.appPort)));
  }

  async releaseLock(spec: Spec): Promise<Result> {
    return this.withTransport(spec, async (t) => {
      const held = (await t.run(`cat ${S.paths(spec.appDir).lock}/info 2>/dev/null || true`)).stdout.trim();
      await t.run(S.lockReleaseScript(spec.appDir), { what: "releasing the lock" });
      return { message: held ? `released the deploy lock of ${spec.app} on ${t.target} (was: ${held})` : `no deploy lock of ${spec.app} was held on ${t.target}`, raw: { held } };
    });
  }
}

registerDriver("vps", (ctx) => new VpsDriver(ctx));
