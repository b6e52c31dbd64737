// The `aws` driver: Provision = the EC2 stack (stacks/aws.ts); Deploy, Status and the release
// commands = the versioned-release strategy over SSH, aimed at the instances the stack made (its
// hosts and ssh_user outputs: one target per instance), so a host is never asked of the user.
import { existsSync, readFileSync, statSync } from "node:fs";
import { projectPath } from "../../src/core/home.js";
import type { ConfigProblem } from "../../src/core/errors.js";
import { OperationError } from "../../src/core/errors.js";
import { registerDriver, type DriverContext } from "../../src/core/registry.js";
import type { DeployPlan, Driver, LogOptions, Release, Result, Spec, StackSource, Status, Target } from "../../src/core/spec.js";
import { workspaceOf } from "../../src/core/workspace.js";
import * as z from "zod";
import { options, parseOptions } from "../../src/config/options.js";
import { inKeyOrder, shippingOptionShape, shippingOptions, targetProblems, templateProblems, type ShippingOptions } from "../../src/ship/options.js";
import { versionedRelease } from "../../src/ship/release.js";
import { noDeployPlan } from "../../src/ship/plan.js";
import { apply, destroy, outputs } from "../../src/infra/runner.js";
import type { AwsStackProps } from "../../stacks/aws.js";
import { backendProps } from "../../src/infra/backend.js";

export const DEFAULT_INSTANCE_TYPE = "t3.micro";
export const DEFAULT_SSH_USER = "deploy";
export const DEFAULT_VOLUME_GB = 20;
export const MAX_INSTANCES = 20;
const OPEN_TO_ALL = "0.0.0.0/0";

const PUBLIC_KEY = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) AAAA[A-Za-z0-9+/]+={0,3}( [^\n]*)?$/;
const INSTANCE_TYPE = /^[a-z][a-z0-9-]*\.[a-z0-9]+$/;
const AMI = /^ami-([0-9a-f]{8}|[0-9a-f]{17})$/;
const ZONE_ID = /^Z[A-Z0-9]{1,31}$/;
/** An availability zone name: a region and a letter (eu-west-1a). */
const AVAILABILITY_ZONE = /^[a-z]{2}(-[a-z]+)+-\d+[a-z]$/;
const INSTANCES = `expected the number of instances: a whole number from 1 to ${MAX_INSTANCES} (more than 1 puts them behind a load balancer)`;
const ZONES = "expected two different availability zones of deploy.region, e.g. [eu-west-1a, eu-west-1b]";
/**
 * Provider attributes shaped like credentials, at any depth (access_key, secret_key, token,
 * web_identity_token, session_token, private_key, *secret*, *password*...): they would land in
 * cdk.tf.json and the plan. Paths to files (web_identity_token_file, shared_credentials_files) and
 * counters (token_bucket_rate_limit) are not credentials.
 */
const CREDENTIAL_KEY = /secret|passw(or)?d|credentials?$|(^|_)(token|key)$/i;
/** An AWS access key ID, wherever it is written. */
const ACCESS_KEY_ID = /\b(AKIA|ASIA)[A-Z0-9]{16}\b/;
/** A URL with a password in it (a proxy's user:password@). */
const URL_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/[^/\s@]*:[^/\s@]*@/i;
const USE_ENVIRONMENT = "credentials never go in the stack (they would be written to cdk.tf.json and the plan)";

export function awsStackName(spec: Spec): string {
  return workspaceOf(spec).stackName("aws");
}

/** A decimal number as written canonically: no leading zeros (which some tools read as octal). */
const N = "(0|[1-9]\\d{0,2})";
const CANONICAL_CIDR = new RegExp(`^${N}\\.${N}\\.${N}\\.${N}\\/(0|[1-9]\\d?)$`);
const LOOSE_CIDR = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/;

/**
 * An IPv4 CIDR written canonically (no leading zeros: Terraform and AWS refuse `010.0.0.0/8`) with
 * a network address that has no host bits set (what AWS accepts).
 */
export function isIpv4Cidr(value: string): boolean {
  const m = CANONICAL_CIDR.exec(value);
  if (!m) return false;
  const octets = m.slice(1, 5).map(Number);
  const bits = Number(m[5]);
  if (octets.some((o) => o > 255) || bits > 32) return false;
  const addr = octets.reduce((a, o) => a * 256 + o, 0);
  const hostBits = 2 ** (32 - bits);
  return addr % hostBits === 0;
}

/** What to write instead of a CIDR isIpv4Cidr refuses, when that can be told. */
export function cidrHint(value: unknown): string {
  if (typeof value !== "string") return "";
  if (/^[\d.]+$/.test(value)) return `; for one address write ${value}/32`;
  if (value.includes(":")) return "; IPv6 is not supported: the server's network is IPv4 only";
  const loose = LOOSE_CIDR.exec(value);
  if (loose) {
    const canonical = `${loose.slice(1, 5).map(Number).join(".")}/${Number(loose[5])}`;
    if (canonical !== value && isIpv4Cidr(canonical)) return `; no leading zeros: write ${canonical}`;
  }
  return "";
}

/**
 * Where `aws_provider` holds something shaped like a credential, as config problems naming the key
 * path and what to do instead, never the value (it may be a live secret).
 */
export function credentialProblems(value: unknown, path: string, underEndpoints = false): ConfigProblem[] {
  const problem = (what: string, instead = "use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an OIDC role") => [{ path, expected: `${what}; ${USE_ENVIRONMENT}: ${instead}` }];
  if (typeof value === "string") {
    if (ACCESS_KEY_ID.test(value)) return problem("holds an AWS access key ID");
    if (URL_PASSWORD.test(value)) return problem("holds a URL with a password in it", "give a proxy's credentials in the environment (HTTPS_PROXY)");
    return [];
  }
  if (Array.isArray(value)) return value.flatMap((v, i) => credentialProblems(v, `${path}.${i}`, underEndpoints));
  if (typeof value !== "object" || value === null) return [];
  return Object.entries(value).flatMap(([k, v]) => {
    const at = `${path}.${k}`;
    // Under endpoints the keys are service names (secretsmanager, sts), not attributes.
    if (underEndpoints || !CREDENTIAL_KEY.test(k) || v === null || v === undefined || v === "") return credentialProblems(v, at, underEndpoints || k === "endpoints");
    const fix = /web_identity_token$/.test(k) ? "point web_identity_token_file (or AWS_WEB_IDENTITY_TOKEN_FILE) at a file holding the token" : undefined;
    return [{ path: at, expected: `looks like a credential; ${USE_ENVIRONMENT}: ${fix ?? "use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an OIDC role"}` }];
  });
}

/** The aws driver's settings from a Spec, with every problem found (nothing is touched). */
export interface AwsSettings {
  props?: Omit<AwsStackProps, keyof ReturnType<typeof backendProps>>;
  shipping?: ShippingOptions;
  problems: ConfigProblem[];
  warnings: string[];
}

/** `deploy.options` of the aws driver: its own keys beside the shipping strategy's. */
export const awsOptionsSchema = options({
  ...shippingOptionShape,
  public_key_file: z
    .string({ error: "is required for the aws driver: the SSH public key to install, e.g. ~/.ssh/id_ed25519.pub" })
    .min(1, { error: "expected a path to an SSH public key file, e.g. ~/.ssh/id_ed25519.pub" }),
  ssh_cidrs: z
    .array(
      z.string({ error: "expected an IPv4 CIDR with no host bits set, e.g. 203.0.113.0/24" }).refine(isIpv4Cidr, {
        error: (i) => `expected an IPv4 CIDR with no host bits set, e.g. 203.0.113.0/24${cidrHint(i.input)}`,
      }),
      { error: "expected a non-empty list of IPv4 CIDRs, e.g. [203.0.113.0/24]" },
    )
    .min(1, { error: "expected a non-empty list of IPv4 CIDRs, e.g. [203.0.113.0/24]" })
    .optional(),
  instance_type: z.string().regex(INSTANCE_TYPE, { error: "expected an EC2 instance type such as t3.micro or t4g.small" }).default(DEFAULT_INSTANCE_TYPE),
  ami: z.string().regex(AMI, { error: "expected an AMI id such as ami-0123456789abcdef0 (or omit it to use the newest Ubuntu 24.04 LTS)" }).optional(),
  zone_id: z.string().regex(ZONE_ID, { error: "expected a Route53 hosted zone id such as Z0123456789ABCDEFGHIJ" }).optional(),
  volume_size: z
    .number({ error: "expected the root volume size in GiB: a whole number from 8 to 16384" })
    .int({ error: "expected the root volume size in GiB: a whole number from 8 to 16384" })
    .min(8, { error: "expected the root volume size in GiB: a whole number from 8 to 16384" })
    .max(16384, { error: "expected the root volume size in GiB: a whole number from 8 to 16384" })
    .default(DEFAULT_VOLUME_GB),
  instances: z
    .number({ error: INSTANCES })
    .int({ error: INSTANCES })
    .min(1, { error: INSTANCES })
    .max(MAX_INSTANCES, { error: INSTANCES })
    .default(1),
  availability_zones: z
    .array(z.string({ error: ZONES }).regex(AVAILABILITY_ZONE, { error: ZONES }), { error: ZONES })
    .length(2, { error: ZONES })
    .refine((zones) => zones[0] !== zones[1], { error: ZONES })
    .optional(),
  aws_provider: z.record(z.string(), z.unknown(), { error: "expected a mapping of extra aws provider attributes (e.g. endpoints, max_retries, profile)" }).default({}),
});

/**
 * The zones a fleet is spread over: as named, else the region's `a` and `b` zones. Named, not looked
 * up (an aws_availability_zones data source would need the account at plan time). Some regions do
 * not give every account an `a` and a `b` zone (ap-northeast-1 has a, c and d): name them there.
 */
export function availabilityZones(region: string, named?: string[]): [string, string] {
  return named && named.length === 2 ? [named[0], named[1]] : [`${region}a`, `${region}b`];
}

export function awsSettings(spec: Spec): AwsSettings {
  const problems: ConfigProblem[] = [];
  const warnings: string[] = [];
  const at = (k: string) => `deploy.options.${k}`;

  if (!spec.region) problems.push({ path: "deploy.region", expected: "is required for the aws driver: the AWS region to create the server in, e.g. eu-west-1" });
  if (!spec.run) problems.push({ path: "deploy.run", expected: "is required for the aws driver: the command that starts the app on $PORT, e.g. node server.js" });
  if (!spec.binary) problems.push({ path: "deploy.binary", expected: "is required for the aws driver: the file or directory to ship, e.g. dist/server.js" });
  if (spec.host) warnings.push(`deploy.host (${spec.host}) is ignored by the aws driver: it deploys to the instances its stack made (output hosts)`);
  if (spec.hosts) warnings.push(`deploy.hosts is ignored by the aws driver: it deploys to the instances its stack made (output hosts); set deploy.options.instances for more than one`);

  const user = spec.user ?? DEFAULT_SSH_USER;
  if (user === "root") problems.push({ path: "deploy.user", value: user, expected: "the aws driver deploys as an unprivileged user that cloud-init creates; use e.g. deploy" });
  else if (user === "ubuntu") problems.push({ path: "deploy.user", value: user, expected: "ubuntu is the image's own default user; name a separate deploy user, e.g. deploy" });

  const parsed = parseOptions(spec.options, awsOptionsSchema, "aws");
  problems.push(...inKeyOrder([...parsed.problems, ...templateProblems(spec)], Object.keys(awsOptionsSchema.shape)));
  // Checks across keys, on what the user wrote (so they are reported with the shape problems).
  const raw = spec.options;
  const fleet = typeof raw.instances === "number" && raw.instances > 1;
  if (raw.zone_id !== undefined && !spec.domain) {
    problems.push({ path: at("zone_id"), value: raw.zone_id, expected: "is set but deploy.domain is not: set the domain the A record is for, or remove zone_id" });
  } else if (raw.zone_id === undefined && spec.domain) {
    warnings.push(
      fleet
        ? `deploy.domain is ${spec.domain} but deploy.options.zone_id is not set: no DNS record and no certificate are made, so the load balancer serves HTTP only; point ${spec.domain} at the lb_dns_name output yourself, or set zone_id for HTTPS`
        : `deploy.domain is ${spec.domain} but deploy.options.zone_id is not set: no DNS record is made; point ${spec.domain} at the public_ip output yourself`,
    );
  }
  if (Array.isArray(raw.availability_zones) && spec.region) {
    raw.availability_zones.forEach((zone, i) => {
      if (typeof zone === "string" && AVAILABILITY_ZONE.test(zone) && zone.slice(0, -1) !== spec.region) {
        problems.push({ path: `${at("availability_zones")}.${i}`, value: zone, expected: `is not a zone of deploy.region (${spec.region}); name zones such as ${spec.region}a` });
      }
    });
    if (!fleet) warnings.push("deploy.options.availability_zones is used only with deploy.options.instances above 1 (one instance keeps its subnet where AWS put it)");
  }
  const provider = raw.aws_provider;
  if (typeof provider === "object" && provider !== null && !Array.isArray(provider)) {
    if ("region" in provider) problems.push({ path: `${at("aws_provider")}.region`, expected: "set the region with deploy.region" });
    // By shape, at any depth, and never with the value: it may be a live secret.
    problems.push(...credentialProblems(provider, at("aws_provider")));
  }
  const o = parsed.options;
  if (!o) return { problems, warnings };
  const shipping = shippingOptions(o);

  // The public key: the only key material that goes into the stack.
  let publicKey: string | undefined;
  const path = projectPath(spec.dir, o.public_key_file);
  if (!existsSync(path) || !statSync(path).isFile()) {
    problems.push({ path: at("public_key_file"), value: o.public_key_file, expected: `no such file (${path}); make one with ssh-keygen -t ed25519, then point at its .pub` });
  } else {
    const text = readFileSync(path, "utf8").trim();
    if (text.includes("PRIVATE KEY")) {
      // Never echo the content: it is a private key.
      problems.push({ path: at("public_key_file"), value: o.public_key_file, expected: `this is a PRIVATE key; point at the public one (${o.public_key_file}.pub) — the private key never leaves this machine` });
    } else if (!PUBLIC_KEY.test(text) || text.includes("\n")) {
      problems.push({ path: at("public_key_file"), value: o.public_key_file, expected: "does not look like an OpenSSH public key (one line: ssh-ed25519 AAAA... comment)" });
    } else {
      publicKey = text;
    }
  }

  if (o.ssh_cidrs === undefined) {
    warnings.push(`deploy.options.ssh_cidrs is not set: SSH (port 22) will be open to the whole internet (${OPEN_TO_ALL}); set it to your networks, e.g. [203.0.113.0/24]`);
  } else if (o.ssh_cidrs.includes(OPEN_TO_ALL)) {
    warnings.push(`deploy.options.ssh_cidrs includes ${OPEN_TO_ALL}: SSH (port 22) will be open to the whole internet; list your networks instead, e.g. [203.0.113.0/24]`);
  }
  const sshCidrs = [...new Set(o.ssh_cidrs ?? [OPEN_TO_ALL])];

  // `~/` on the instance is the deploy user's home.
  const home = (p: string) => (p.startsWith("~/") ? `/home/${user}/${p.slice(2)}` : p);
  if (problems.length > 0 || !publicKey || !spec.region) return { problems, warnings };
  return {
    problems,
    warnings,
    shipping,
    props: {
      app: workspaceOf(spec).qualifiedApp,
      region: spec.region,
      instanceType: o.instance_type,
      ...(o.ami ? { ami: o.ami } : {}),
      sshCidrs,
      publicKey,
      sshUser: user,
      appDir: home(spec.appDir),
      caddyDir: home(shipping.caddyDir),
      caddyfile: shipping.caddyfile,
      https: shipping.https,
      volumeSize: o.volume_size,
      ...(spec.domain ? { domain: spec.domain } : {}),
      ...(o.zone_id ? { zoneId: o.zone_id } : {}),
      instances: o.instances,
      availabilityZones: availabilityZones(spec.region, o.availability_zones),
      healthPath: spec.healthcheck.path,
      providerOverrides: o.aws_provider,
    },
  };
}

export class AwsDriver implements Driver {
  readonly name = "aws";
  constructor(private readonly ctx: DriverContext) {}

  validate(spec: Spec): ConfigProblem[] {
    const { problems, warnings } = awsSettings(spec);
    // What reaches the instance's shell and ssh's command line; the host comes from the stack.
    const seen = new Set(problems.map((p) => p.path));
    for (const p of targetProblems(spec)) if (!seen.has(p.path)) problems.push(p);
    if (problems.length === 0) for (const w of warnings) this.ctx.log.warn(w);
    return problems;
  }

  private settings(spec: Spec): Required<Pick<AwsSettings, "props" | "shipping">> {
    const { props, shipping, problems } = awsSettings(spec);
    if (!props || !shipping) throw new OperationError(`the aws driver's settings are invalid: ${problems.map((p) => p.path).join(", ")}`);
    return { props, shipping };
  }

  stacks(spec: Spec): StackSource[] {
    const name = awsStackName(spec);
    const props: AwsStackProps = { ...backendProps(spec), ...this.settings(spec).props };
    return [
      {
        name,
        props: props as unknown as Record<string, unknown>,
        define: async (app) => (await import("../../stacks/aws.js")).defineAwsStack(app, name, props),
      },
    ];
  }

  private shipping(spec: Spec) {
    // A deploy right after provision would otherwise find an instance whose cloud-init is still at work.
    return versionedRelease({ driver: this.name, ctx: this.ctx, options: this.settings(spec).shipping, front: "site", firstBoot: true });
  }

  async provision(spec: Spec): Promise<Result> {
    const [r] = await apply(spec, this.stacks(spec), this.ctx.log, this.ctx.opts.force);
    return { url: r.outputs.url as string | undefined, message: `${r.applied ? "provisioned" : "up to date:"} ${r.stack}${provisioned(r.outputs)}`, raw: r };
  }

  /**
   * The instances the stack made, from its outputs (one target each), and the Spec the shipping
   * works from; a clear error when the stack was never applied.
   */
  private async fleet(spec: Spec): Promise<{ spec: Spec; targets: Target[] }> {
    const out = await outputs(spec, awsStackName(spec));
    const targets = targetsFromOutputs(spec, out);
    if (targets.length === 0) throw new OperationError(`${spec.app} has no server yet (no public_ip output in stack ${awsStackName(spec)}); run: togo provision`);
    return { spec: siteSpec(spec, out), targets };
  }

  async deploy(spec: Spec): Promise<Result> {
    const f = await this.fleet(spec);
    return this.shipping(spec).deploy(f.spec, f.targets);
  }

  async status(spec: Spec): Promise<Status> {
    const out = await outputs(spec, awsStackName(spec));
    const targets = targetsFromOutputs(spec, out);
    if (targets.length === 0) return { state: "not-deployed", healthy: false, outputs: out, message: "not provisioned (run togo provision)" };
    const url = targets[0].url;
    try {
      const live = await this.shipping(spec).live(siteSpec(spec, out), targets);
      return { ...live, url, outputs: out };
    } catch (err) {
      if (!(err instanceof OperationError)) throw err;
      return { state: "failed", healthy: false, url, outputs: out, message: err.message };
    }
  }

  async destroy(spec: Spec): Promise<void> {
    // Terminating the instances takes the releases with them; nothing to stop first.
    await destroy(spec, this.stacks(spec), this.ctx.log);
  }

  async rollback(spec: Spec, version?: string): Promise<Result> {
    const f = await this.fleet(spec);
    return this.shipping(spec).rollback(f.spec, f.targets, version);
  }

  async releases(spec: Spec): Promise<Release[]> {
    const f = await this.fleet(spec);
    return this.shipping(spec).releases(f.spec, f.targets);
  }

  async logs(spec: Spec, opts: LogOptions): Promise<void> {
    const f = await this.fleet(spec);
    return this.shipping(spec).logs(f.spec, f.targets, opts);
  }

  async exec(spec: Spec, command: string[]): Promise<number> {
    const f = await this.fleet(spec);
    return this.shipping(spec).exec(f.spec, f.targets, command);
  }

  async deployPlan(spec: Spec): Promise<DeployPlan> {
    const out = await outputs(spec, awsStackName(spec));
    const targets = targetsFromOutputs(spec, out);
    if (targets.length === 0) return noDeployPlan(spec, this.name, "no server yet (the stack has no public_ip output): nothing deployed to compare with; run togo provision");
    return this.shipping(spec).plan!(siteSpec(spec, out), targets);
  }

  async releaseLock(spec: Spec): Promise<Result> {
    const f = await this.fleet(spec);
    return this.shipping(spec).releaseLock(f.spec, f.targets);
  }
}

/** What `togo provision` says after the stack name: the instances and how to reach them. */
function provisioned(out: Record<string, unknown>): string {
  let hosts: string[];
  try {
    hosts = hostsOf(out);
  } catch {
    // The apply went through; an instance without an address is for the deploy to refuse, not this line.
    return "";
  }
  if (hosts.length === 0) return "";
  const ssh = `ssh ${out.ssh_user}@${hosts[0]}`;
  if (hosts.length === 1) return ` (${out.instance_id}, ${hosts[0]}; ${ssh})`;
  return ` (${hosts.length} instances: ${hosts.join(", ")}, behind ${out.lb_dns_name}; ${ssh})`;
}

/**
 * The instances' public addresses: the `hosts` list, or for a stack applied before it had one,
 * `public_ip`. A list with an instance that has no address is an error, never a smaller fleet: a
 * deploy to the others would leave that one on the old release behind the load balancer.
 */
function hostsOf(out: Record<string, unknown>): string[] {
  if (Array.isArray(out.hosts) && out.hosts.length > 0) {
    const ids = Array.isArray(out.instance_ids) ? out.instance_ids : [];
    const missing = out.hosts.flatMap((h, i) => (typeof h === "string" && h !== "" ? [] : [typeof ids[i] === "string" ? ids[i] : `#${i}`]));
    if (missing.length > 0) {
      throw new OperationError(`the stack's hosts output has no address for ${missing.join(", ")} (${missing.length} of ${out.hosts.length} instances); run togo provision to bring the outputs up to date`);
    }
    return out.hosts as string[];
  }
  return typeof out.public_ip === "string" && out.public_ip ? [out.public_ip] : [];
}

/** The deploy targets: one per instance, at its address, as the stack's deploy user. */
export function targetsFromOutputs(spec: Spec, out: Record<string, unknown>): Target[] {
  return hostsOf(out).map((host) => ({
    host,
    user: typeof out.ssh_user === "string" ? out.ssh_user : (spec.user ?? DEFAULT_SSH_USER),
    port: spec.sshPort,
    identityFile: spec.identityFile,
    knownHosts: spec.knownHosts,
    sshConfig: spec.sshConfig,
    appDir: spec.appDir,
    // Where users reach the app: the domain, the load balancer or the Elastic IP (Caddy on :80), never app_port (closed).
    url: typeof out.url === "string" ? out.url : `http://${host}`,
  }));
}

/**
 * The Spec the shipping writes each instance's Caddy site from. The shipping writes a site for
 * `domain` and puts it in the site's address; the stack's `caddy_site` output is the address every
 * instance serves: the domain (one instance with a domain: Caddy gets its certificate), or `:80` for
 * any Host (behind the load balancer, which health-checks by IP; or one instance without a domain).
 * Empty: an instance made by an earlier togo, whose own Caddyfile serves :80, so no site is written.
 * A stack applied before it had the output: the Spec as it is, as then.
 */
export function siteSpec(spec: Spec, out: Record<string, unknown>): Spec {
  if (typeof out.caddy_site !== "string") return spec;
  const { domain: _domain, ...rest } = spec;
  return out.caddy_site ? { ...rest, domain: out.caddy_site } : rest;
}

registerDriver("aws", (ctx) => new AwsDriver(ctx));
