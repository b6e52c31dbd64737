// The `vps` driver: any Linux host reachable over SSH. Provision = a stack of Terraform built-ins
// whose remote-exec bootstraps the host; Deploy = the versioned-release strategy over SSH (one
// multiplexed connection per command run), a systemd user unit where the host runs systemd, else
// togo's process manager, and a Caddy site when `domain` is set; Status = outputs + live probe.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import * as z from "zod";
import { options, parseOptions } from "../../src/config/options.js";
import type { ConfigProblem } from "../../src/core/errors.js";
import { OperationError } from "../../src/core/errors.js";
import { registerDriver, type DriverContext } from "../../src/core/registry.js";
import type { DeployPlan, Driver, LogOptions, Release, Result, Spec, StackSource, Status, Target } from "../../src/core/spec.js";
import { workspaceOf } from "../../src/core/workspace.js";
import { knownHostKeys, knownHostsFile, SshTransport } from "../../src/exec/ssh.js";
import { backendProps } from "../../src/infra/backend.js";
import { apply, destroy, outputs } from "../../src/infra/runner.js";
import { inKeyOrder, shippingOptionShape, shippingOptions, targetProblems, templateProblems, type ShippingOptions } from "../../src/ship/options.js";
import { versionedRelease } from "../../src/ship/release.js";
import { transportFor } from "../../src/ship/target.js";
import type { VpsStackProps } from "../../stacks/vps.js";
import { bootstrapScript } from "./bootstrap.js";

export { bootstrapScript } from "./bootstrap.js";

/** `deploy.options` of the vps driver: the shipping strategy's, plus the bootstrap's. */
const { service, ...rest } = shippingOptionShape;
export const vpsOptionsSchema = options({
  service,
  install_caddy: z.boolean({ error: "expected true or false" }).default(false),
  ...rest,
});

export interface VpsOptions extends ShippingOptions {
  installCaddy: boolean;
}

export function readVpsOptions(spec: Spec): { options?: VpsOptions; problems: ConfigProblem[] } {
  const r = parseOptions(spec.options, vpsOptionsSchema, "vps");
  const problems = inKeyOrder([...r.problems, ...templateProblems(spec)], Object.keys(vpsOptionsSchema.shape));
  if (!r.options || problems.length > 0) return { problems };
  return { options: { ...shippingOptions(r.options), installCaddy: r.options.install_caddy }, problems };
}

function vpsOptions(spec: Spec): VpsOptions {
  const { options: o, problems } = readVpsOptions(spec);
  if (!o) throw new OperationError(`deploy.options are invalid: ${problems.map((p) => p.path).join(", ")}`);
  return o;
}

export function vpsStackName(spec: Spec): string {
  return workspaceOf(spec).stackName("vps");
}

/** Where users reach the app. */
export function appUrl(spec: Spec, o: Pick<ShippingOptions, "https">, host = spec.host ?? spec.hosts?.[0]): string {
  if (spec.domain) return `${o.https ? "https" : "http"}://${spec.domain}`;
  const h = host?.includes(":") ? `[${host}]` : host;
  return `http://${h}:${spec.appPort}`;
}

/** One target a host: `host`, or every one of a fleet's `hosts`. */
export function targetsOf(spec: Spec, o: Pick<ShippingOptions, "https">): Target[] {
  return (spec.hosts ?? [spec.host]).map((host) => targetOf({ ...spec, host }, o));
}

export function targetOf(spec: Spec, o: Pick<ShippingOptions, "https">): Target {
  return {
    host: spec.host,
    user: spec.user,
    port: spec.sshPort,
    identityFile: spec.identityFile,
    knownHosts: spec.knownHosts,
    sshConfig: spec.sshConfig,
    appDir: spec.appDir,
    url: appUrl(spec, o),
  };
}

// --- facts recorded by provision, so synth/diff see the same stack without connecting ---

interface HostRecord {
  hostKey?: string;
  hasSystemd: string;
  hasCaddy: string;
  /** A fleet's other hosts, by host. */
  more?: Record<string, Omit<HostRecord, "more">>;
}

function recordFile(spec: Spec): string {
  return workspaceOf(spec).hostRecord(vpsStackName(spec));
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

function knownHostKey(t: Target): string | undefined {
  const file = knownHostsFile({ knownHosts: t.knownHosts });
  return existsSync(file) ? pinHostKey(readFileSync(file, "utf8"), t.host!, t.port ?? 22) : undefined;
}

export class VpsDriver implements Driver {
  readonly name = "vps";
  constructor(private readonly ctx: DriverContext) {}

  validate(spec: Spec): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    const need = (ok: unknown, path: string, expected: string) => {
      if (!ok) problems.push({ path, expected });
    };
    need(spec.host ?? spec.hosts, "deploy.host", "is required for the vps driver: the server's name or IP address (or deploy.hosts: [a, b] for a fleet)");
    need(spec.user, "deploy.user", "is required for the vps driver: the (non-root) user togo logs in as, e.g. deploy");
    need(spec.run, "deploy.run", "is required for the vps driver: the command that starts the app on $PORT, e.g. node server.js");
    need(spec.binary, "deploy.binary", "is required for the vps driver: the file or directory to ship, e.g. dist/server.js");
    problems.push(...targetProblems(spec));
    problems.push(...readVpsOptions(spec).problems);
    return problems;
  }

  private shipping(spec: Spec) {
    return versionedRelease({ driver: this.name, ctx: this.ctx, options: vpsOptions(spec), front: "site" });
  }

  private targets(spec: Spec): Target[] {
    return targetsOf(spec, vpsOptions(spec));
  }

  bootstrap(spec: Spec): string {
    const o = vpsOptions(spec);
    return bootstrapScript({ appDir: spec.appDir, installCaddy: o.installCaddy, caddyDir: o.caddyDir, caddyfile: o.caddyfile });
  }

  stacks(spec: Spec): StackSource[] {
    const o = vpsOptions(spec);
    const [target, ...others] = this.targets(spec);
    const rec = readRecord(spec);
    const bootstrap = this.bootstrap(spec);
    const name = vpsStackName(spec);
    const props: VpsStackProps = {
      ...backendProps(spec),
      app: workspaceOf(spec).qualifiedApp,
      host: target.host!,
      user: target.user!,
      port: target.port ?? 22,
      appDir: spec.appDir,
      identityFile: spec.identityFile,
      hostKey: rec?.hostKey ?? knownHostKey(target),
      bootstrap,
      bootstrapSha256: createHash("sha256").update(bootstrap).digest("hex"),
      url: target.url,
      hasSystemd: rec?.hasSystemd ?? "unknown",
      hasCaddy: rec?.hasCaddy ?? (o.installCaddy ? "true" : "unknown"),
      ...(others.length > 0
        ? {
            more: others.map((t) => {
              const r = rec?.more?.[t.host!];
              return { host: t.host!, hostKey: r?.hostKey ?? knownHostKey(t), hasSystemd: r?.hasSystemd ?? "unknown", hasCaddy: r?.hasCaddy ?? (o.installCaddy ? "true" : "unknown") };
            }),
          }
        : {}),
    };
    return [
      {
        name,
        props: props as unknown as Record<string, unknown>,
        define: async (app) => (await import("../../stacks/vps.js")).defineVpsStack(app, name, props),
      },
    ];
  }

  async provision(spec: Spec): Promise<Result> {
    const o = vpsOptions(spec);
    const targets = this.targets(spec);
    // Connect first: OpenSSH verifies (or, with accept-new, records) the host key that terraform then pins.
    const facts = await this.ctx.log.stage("connect", () =>
      Promise.all(
        targets.map(async (target) => {
          const t = transportFor(target, o) as SshTransport;
          try {
            return await t.facts();
          } finally {
            await t.close();
          }
        }),
      ),
    );
    const records = targets.map((target, i): Omit<HostRecord, "more"> => {
      const hostKey = knownHostKey(target);
      if (!hostKey) {
        throw new OperationError(`the host key of ${target.host}:${target.port} is not in ${target.knownHosts ?? "~/.ssh/known_hosts"} after connecting; set deploy.known_hosts to the file your ssh uses`);
      }
      return { hostKey, hasSystemd: String(facts[i].systemd), hasCaddy: String(facts[i].caddy || o.installCaddy) };
    });
    const rec: HostRecord = { ...records[0], ...(targets.length > 1 ? { more: Object.fromEntries(targets.slice(1).map((t, i) => [t.host!, records[i + 1]])) } : {}) };
    mkdirSync(dirname(recordFile(spec)), { recursive: true });
    writeFileSync(recordFile(spec), `${JSON.stringify(rec, null, 2)}\n`);
    const [r] = await apply(spec, this.stacks(spec), this.ctx.log, this.ctx.opts.force);
    const where = targets.length > 1 ? `${targets.length} hosts as ${targets[0].user}` : `${targets[0].user}@${targets[0].host}`;
    return { url: targets[0].url, message: r.applied ? `provisioned ${r.stack} (${where})` : `${r.stack} is up to date`, raw: { ...r, facts: targets.length > 1 ? facts : facts[0] } };
  }

  deploy(spec: Spec): Promise<Result> {
    return this.shipping(spec).deploy(spec, this.targets(spec));
  }

  async status(spec: Spec): Promise<Status> {
    const targets = this.targets(spec);
    const target = targets[0];
    const out = await outputs(spec, vpsStackName(spec));
    try {
      const live = await this.shipping(spec).live(spec, targets);
      return { ...live, url: (out.url as string | undefined) ?? target.url, outputs: out };
    } catch (err) {
      if (!(err instanceof OperationError)) throw err;
      return { state: "failed", healthy: false, url: target.url, outputs: out, message: err.message };
    }
  }

  async destroy(spec: Spec): Promise<void> {
    await this.shipping(spec).remove(spec, this.targets(spec));
    await destroy(spec, this.stacks(spec), this.ctx.log);
  }

  rollback(spec: Spec, version?: string): Promise<Result> {
    return this.shipping(spec).rollback(spec, this.targets(spec), version);
  }

  releases(spec: Spec): Promise<Release[]> {
    return this.shipping(spec).releases(spec, this.targets(spec));
  }

  logs(spec: Spec, opts: LogOptions): Promise<void> {
    return this.shipping(spec).logs(spec, this.targets(spec), opts);
  }

  exec(spec: Spec, command: string[]): Promise<number> {
    return this.shipping(spec).exec(spec, this.targets(spec), command);
  }

  deployPlan(spec: Spec): Promise<DeployPlan> {
    return this.shipping(spec).plan!(spec, this.targets(spec));
  }

  releaseLock(spec: Spec): Promise<Result> {
    return this.shipping(spec).releaseLock(spec, this.targets(spec));
  }
}

registerDriver("vps", (ctx) => new VpsDriver(ctx));
