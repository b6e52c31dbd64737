// The `aws` driver: Provision = the EC2 stack (stacks/aws.ts); Deploy, Status and the release
// commands = the vps driver's SSH shipping, aimed at the instance the stack made (its public_ip and
// ssh_user outputs), so the host is never asked of the user.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { projectPath } from "../../src/core/home.js";
import type { ConfigProblem } from "../../src/core/errors.js";
import { OperationError } from "../../src/core/errors.js";
import { registerDriver, type DriverContext } from "../../src/core/registry.js";
import type { Driver, LogOptions, Release, Result, Spec, StackSource, Status } from "../../src/core/spec.js";
import { apply, destroy, outputs } from "../../src/infra/runner.js";
import type { AwsStackProps } from "../../stacks/aws.js";
import { backendProps } from "../../src/infra/backend.js";
import { readVpsOptions, unknownOptionProblems, VPS_OPTION_KEYS, VpsDriver } from "../vps/index.js";

export const DEFAULT_INSTANCE_TYPE = "t3.micro";
export const DEFAULT_SSH_USER = "deploy";
export const DEFAULT_VOLUME_GB = 20;
const OPEN_TO_ALL = "0.0.0.0/0";

/** `deploy.options` keys the aws driver reads. */
export const AWS_OPTIONS = ["public_key_file", "ssh_cidrs", "instance_type", "ami", "zone_id", "volume_size", "aws_provider"] as const;
/** Plus the vps shipping's options, which apply here too. */
const KNOWN_OPTIONS: string[] = [...AWS_OPTIONS, ...VPS_OPTION_KEYS];

const PUBLIC_KEY = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) AAAA[A-Za-z0-9+/]+={0,3}( [^\n]*)?$/;
const INSTANCE_TYPE = /^[a-z][a-z0-9-]*\.[a-z0-9]+$/;
const AMI = /^ami-([0-9a-f]{8}|[0-9a-f]{17})$/;
const ZONE_ID = /^Z[A-Z0-9]{1,31}$/;
/** Provider attributes that are credentials: they would land in cdk.tf.json and the plan. */
const CREDENTIAL_ATTRIBUTES = ["access_key", "secret_key", "token"];

export function awsStackName(spec: Spec): string {
  return `${spec.app}-aws`;
}

/** An IPv4 CIDR with a network address that has no host bits set (what AWS accepts). */
export function isIpv4Cidr(value: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(value);
  if (!m) return false;
  const octets = m.slice(1, 5).map(Number);
  const bits = Number(m[5]);
  if (octets.some((o) => o > 255) || bits > 32) return false;
  const addr = octets.reduce((a, o) => a * 256 + o, 0);
  const hostBits = 2 ** (32 - bits);
  return addr % hostBits === 0;
}

/** The aws driver's settings from a Spec, with every problem found (nothing is touched). */
export interface AwsSettings {
  props?: Omit<AwsStackProps, keyof ReturnType<typeof backendProps>>;
  problems: ConfigProblem[];
  warnings: string[];
}

export function awsSettings(spec: Spec): AwsSettings {
  const problems: ConfigProblem[] = [];
  const warnings: string[] = [];
  const o = spec.options;
  const at = (k: string) => `deploy.options.${k}`;

  problems.push(...unknownOptionProblems(spec, KNOWN_OPTIONS, "aws"));
  const shipping = readVpsOptions(spec);

  if (!spec.region) problems.push({ path: "deploy.region", expected: "is required for the aws driver: the AWS region to create the server in, e.g. eu-west-1" });
  if (!spec.run) problems.push({ path: "deploy.run", expected: "is required for the aws driver: the command that starts the app on $PORT, e.g. node server.js" });
  if (!spec.binary) problems.push({ path: "deploy.binary", expected: "is required for the aws driver: the file or directory to ship, e.g. dist/server.js" });
  if (spec.host) warnings.push(`deploy.host (${spec.host}) is ignored by the aws driver: it deploys to the instance its stack made (output public_ip)`);

  const user = spec.user ?? DEFAULT_SSH_USER;
  if (user === "root") problems.push({ path: "deploy.user", value: user, expected: "the aws driver deploys as an unprivileged user that cloud-init creates; use e.g. deploy" });
  else if (user === "ubuntu") problems.push({ path: "deploy.user", value: user, expected: "ubuntu is the image's own default user; name a separate deploy user, e.g. deploy" });

  // The public key: the only key material that goes into the stack.
  let publicKey: string | undefined;
  const keyFile = o.public_key_file;
  if (keyFile === undefined) {
    problems.push({ path: at("public_key_file"), expected: "is required for the aws driver: the SSH public key to install, e.g. ~/.ssh/id_ed25519.pub" });
  } else if (typeof keyFile !== "string" || keyFile === "") {
    problems.push({ path: at("public_key_file"), value: keyFile, expected: "expected a path to an SSH public key file, e.g. ~/.ssh/id_ed25519.pub" });
  } else {
    const path = projectPath(spec.dir, keyFile);
    if (!existsSync(path) || !statSync(path).isFile()) {
      problems.push({ path: at("public_key_file"), value: keyFile, expected: `no such file (${path}); make one with ssh-keygen -t ed25519, then point at its .pub` });
    } else {
      const text = readFileSync(path, "utf8").trim();
      if (text.includes("PRIVATE KEY")) {
        // Never echo the content: it is a private key.
        problems.push({ path: at("public_key_file"), value: keyFile, expected: `this is a PRIVATE key; point at the public one (${keyFile}.pub) — the private key never leaves this machine` });
      } else if (!PUBLIC_KEY.test(text) || text.includes("\n")) {
        problems.push({ path: at("public_key_file"), value: keyFile, expected: "does not look like an OpenSSH public key (one line: ssh-ed25519 AAAA... comment)" });
      } else {
        publicKey = text;
      }
    }
  }

  let sshCidrs: string[] = [OPEN_TO_ALL];
  if (o.ssh_cidrs === undefined) {
    warnings.push(`deploy.options.ssh_cidrs is not set: SSH (port 22) will be open to the whole internet (${OPEN_TO_ALL}); set it to your networks, e.g. [203.0.113.0/24]`);
  } else if (!Array.isArray(o.ssh_cidrs) || o.ssh_cidrs.length === 0) {
    problems.push({ path: at("ssh_cidrs"), value: o.ssh_cidrs, expected: "expected a non-empty list of IPv4 CIDRs, e.g. [203.0.113.0/24]" });
  } else {
    o.ssh_cidrs.forEach((c, i) => {
      if (typeof c !== "string" || !isIpv4Cidr(c)) {
        const hint = typeof c === "string" && /^[\d.]+$/.test(c) ? `; for one address write ${c}/32` : "";
        problems.push({ path: `${at("ssh_cidrs")}.${i}`, value: c, expected: `expected an IPv4 CIDR with no host bits set, e.g. 203.0.113.0/24${hint}` });
      }
    });
    sshCidrs = [...new Set(o.ssh_cidrs as string[])];
  }

  const instanceType = o.instance_type ?? DEFAULT_INSTANCE_TYPE;
  if (typeof instanceType !== "string" || !INSTANCE_TYPE.test(instanceType)) {
    problems.push({ path: at("instance_type"), value: instanceType, expected: "expected an EC2 instance type such as t3.micro or t4g.small" });
  }
  const ami = o.ami;
  if (ami !== undefined && (typeof ami !== "string" || !AMI.test(ami))) {
    problems.push({ path: at("ami"), value: ami, expected: "expected an AMI id such as ami-0123456789abcdef0 (or omit it to use the newest Ubuntu 24.04 LTS)" });
  }
  const zoneId = o.zone_id;
  if (zoneId !== undefined) {
    if (typeof zoneId !== "string" || !ZONE_ID.test(zoneId)) {
      problems.push({ path: at("zone_id"), value: zoneId, expected: "expected a Route53 hosted zone id such as Z0123456789ABCDEFGHIJ" });
    } else if (!spec.domain) {
      problems.push({ path: at("zone_id"), value: zoneId, expected: "is set but deploy.domain is not: set the domain the A record is for, or remove zone_id" });
    }
  } else if (spec.domain) {
    warnings.push(`deploy.domain is ${spec.domain} but deploy.options.zone_id is not set: no DNS record is made; point ${spec.domain} at the public_ip output yourself`);
  }
  const volumeSize = o.volume_size ?? DEFAULT_VOLUME_GB;
  if (typeof volumeSize !== "number" || !Number.isInteger(volumeSize) || volumeSize < 8 || volumeSize > 16384) {
    problems.push({ path: at("volume_size"), value: volumeSize, expected: "expected the root volume size in GiB: a whole number from 8 to 16384" });
  }
  const overrides = o.aws_provider ?? {};
  if (overrides === null || typeof overrides !== "object" || Array.isArray(overrides)) {
    problems.push({ path: at("aws_provider"), value: overrides, expected: "expected a mapping of extra aws provider attributes (e.g. endpoints, max_retries, profile)" });
  } else {
    for (const k of Object.keys(overrides)) {
      if (CREDENTIAL_ATTRIBUTES.includes(k) || k === "region") {
        problems.push({
          path: `${at("aws_provider")}.${k}`,
          expected:
            k === "region"
              ? "set the region with deploy.region"
              : "credentials never go in the stack (they would be written to cdk.tf.json and the plan); use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an OIDC role",
        });
      }
    }
  }

  // `~/` on the instance is the deploy user's home.
  const appDir = spec.appDir.startsWith("~/") ? `/home/${user}/${spec.appDir.slice(2)}` : spec.appDir;

  if (problems.length > 0 || !publicKey || !spec.region) return { problems, warnings };
  return {
    problems,
    warnings,
    props: {
      app: spec.app,
      region: spec.region,
      instanceType: instanceType as string,
      ...(ami ? { ami: ami as string } : {}),
      sshCidrs,
      publicKey,
      sshUser: user,
      appDir,
      appPort: spec.appPort,
      caddyDir: shipping.options.caddyDir.startsWith("~/") ? `/home/${user}/${shipping.options.caddyDir.slice(2)}` : shipping.options.caddyDir,
      caddyfile: shipping.options.caddyfile,
      https: shipping.options.https,
      volumeSize: volumeSize as number,
      ...(spec.domain ? { domain: spec.domain } : {}),
      ...(zoneId ? { zoneId: zoneId as string } : {}),
      providerOverrides: overrides as Record<string, unknown>,
    },
  };
}

export class AwsDriver implements Driver {
  readonly name = "aws";
  constructor(private readonly ctx: DriverContext) {}

  validate(spec: Spec): ConfigProblem[] {
    const { problems, warnings } = awsSettings(spec);
    // The vps shipping's own checks (its options, identity_file, app_dir, run on one line). The host
    // is a placeholder: it comes from the stack; host, user, run and binary are checked above.
    const own = new Set(["deploy.host", "deploy.user", "deploy.run", "deploy.binary"]);
    const seen = new Set(problems.map((p) => p.path));
    for (const p of this.vps().validate({ ...spec, host: "192.0.2.1", user: spec.user ?? DEFAULT_SSH_USER })) {
      if (!own.has(p.path) && !seen.has(p.path)) problems.push(p);
    }
    if (problems.length === 0) for (const w of warnings) this.ctx.log.warn(w);
    return problems;
  }

  stacks(spec: Spec): StackSource[] {
    const { props: settings, problems } = awsSettings(spec);
    if (!settings) throw new OperationError(`the aws driver's settings are invalid: ${problems.map((p) => p.path).join(", ")}`);
    const name = awsStackName(spec);
    const props: AwsStackProps = { ...backendProps(spec), ...settings };
    return [
      {
        name,
        props: props as unknown as Record<string, unknown>,
        define: async (app) => (await import("../../stacks/aws.js")).defineAwsStack(app, name, props),
      },
    ];
  }

  async provision(spec: Spec): Promise<Result> {
    const [r] = await apply(spec, this.stacks(spec), this.ctx.log, this.ctx.opts.force);
    const ip = r.outputs.public_ip;
    const message = `${r.applied ? "provisioned" : "up to date:"} ${r.stack}${ip ? ` (${r.outputs.instance_id}, ${ip}; ssh ${r.outputs.ssh_user}@${ip})` : ""}`;
    return { url: r.outputs.url as string | undefined, message, raw: r };
  }

  /** The stack's outputs, or a clear error when it was never applied. */
  private async target(spec: Spec): Promise<{ out: Record<string, unknown>; vpsSpec: Spec }> {
    const out = await outputs(spec, awsStackName(spec));
    if (typeof out.public_ip !== "string" || !out.public_ip) {
      throw new OperationError(`${spec.app} has no server yet (no public_ip output in stack ${awsStackName(spec)}); run: togo provision`);
    }
    return { out, vpsSpec: this.vpsSpec(spec, out) };
  }

  /** The Spec the vps shipping sees: the instance's address and user from the stack's outputs. */
  vpsSpec(spec: Spec, out: Record<string, unknown>): Spec {
    const user = typeof out.ssh_user === "string" ? out.ssh_user : (spec.user ?? DEFAULT_SSH_USER);
    return { ...spec, host: out.public_ip as string, user };
  }

  private vps(): VpsDriver {
    return new VpsDriver(this.ctx);
  }

  async deploy(spec: Spec): Promise<Result> {
    const { out, vpsSpec } = await this.target(spec);
    const result = await this.vps().deploy(vpsSpec);
    // Without a domain the app is reached through Caddy's :80 fallback, not on app_port (closed).
    return { ...result, url: out.url as string };
  }

  async status(spec: Spec): Promise<Status> {
    const out = await outputs(spec, awsStackName(spec));
    if (typeof out.public_ip !== "string" || !out.public_ip) {
      return { state: "not-deployed", healthy: false, outputs: out, message: "not provisioned (run togo provision)" };
    }
    const live = await this.vps().status(this.vpsSpec(spec, out));
    return { ...live, url: out.url as string, outputs: { ...live.outputs, ...out } };
  }

  async destroy(spec: Spec): Promise<void> {
    // Terminating the instance takes the releases with it; nothing to stop first.
    await destroy(spec, this.stacks(spec), this.ctx.log);
  }

  async rollback(spec: Spec, version?: string): Promise<Result> {
    return this.vps().rollback((await this.target(spec)).vpsSpec, version);
  }

  async releases(spec: Spec): Promise<Release[]> {
    return this.vps().releases((await this.target(spec)).vpsSpec);
  }

  async logs(spec: Spec, opts: LogOptions): Promise<void> {
    return this.vps().logs((await this.target(spec)).vpsSpec, opts);
  }

  async exec(spec: Spec, command: string[]): Promise<number> {
    return this.vps().exec((await this.target(spec)).vpsSpec, command);
  }

  async releaseLock(spec: Spec): Promise<Result> {
    return this.vps().releaseLock((await this.target(spec)).vpsSpec);
  }
}

registerDriver("aws", (ctx) => new AwsDriver(ctx));
