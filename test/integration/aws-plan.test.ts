// The aws stack planned for real, offline: `togo diff` synthesizes it, runs `terraform init` against
// the provider filesystem mirror (hashicorp/aws 5.100.0, no registry) and `terraform plan` with fake
// credentials, the provider's skip_* flags and every endpoint at 127.0.0.1:1 (nothing may leave the
// machine). The planned addresses and types are read from `terraform show -json`. Two plans only
// (with and without a domain): each starts the provider twice (~12 CPU-seconds a start).
// What cannot run here is the apply against AWS itself.
import { createHash } from "node:crypto";
import { cpSync, existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { parse } from "yaml";
import { cleanupTempDirs, helloProject, ROOT, tempDir, testEnv, togo } from "../helpers/index.js";
import type { PlanJson } from "../../src/infra/runner.js";

afterAll(cleanupTempDirs);

/** The provider mirror of this machine; configurable, as users have their own. */
const MIRROR = process.env.TOGO_TEST_PLUGIN_MIRROR ?? "/opt/tf-plugins";
const AMI = "ami-0123456789abcdef0";
const ZONE = "Z0123456789ABCDEFGHIJ";
const WEB_TOKEN = "eyJhbGciOiJSUzI1NiJ9.b2lkYy10b2tlbg.c2lnbmF0dXJl";

// Fake credentials, from the environment only; shared config files are kept out of reach.
const FAKE = { access: "AKIATOGOFAKEKEY00000", secret: "togo-fake-secret-not-a-real-one" };
const ENV = {
  AWS_ACCESS_KEY_ID: FAKE.access,
  AWS_SECRET_ACCESS_KEY: FAKE.secret,
  AWS_EC2_METADATA_DISABLED: "true",
  AWS_CONFIG_FILE: "/nonexistent/aws-config",
  AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/aws-credentials",
};

const OFFLINE_PROVIDER = `    aws_provider:
      skip_credentials_validation: true
      skip_requesting_account_id: true
      skip_metadata_api_check: "true"
      skip_region_validation: true
      max_retries: 1
      endpoints:
        - ec2: http://127.0.0.1:1
          route53: http://127.0.0.1:1
          sts: http://127.0.0.1:1
          iam: http://127.0.0.1:1
          elbv2: http://127.0.0.1:1
          acm: http://127.0.0.1:1
`;

function yaml(extra: { domain?: string; options?: string; deploy?: string }): string {
  return `app: hello
deploy:
  provider: aws
  region: eu-west-1
  binary: server.js
  run: node server.js
${extra.deploy ?? ""}${extra.domain ? `  domain: ${extra.domain}\n` : ""}  options:
    public_key_file: deploy.pub
    ami: ${AMI}
${extra.options ?? ""}${OFFLINE_PROVIDER}terraform:
  engine: terraform
  plugin_mirror: ${MIRROR}
`;
}

async function project(extra: { domain?: string; options?: string; deploy?: string }): Promise<{ dir: string; publicKey: string }> {
  const dir = helloProject(yaml(extra));
  await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "togo-test", "-f", join(dir, "deploy")]);
  return { dir, publicKey: readFileSync(join(dir, "deploy.pub"), "utf8").trim() };
}

type Planned = { address: string; type: string; values: Record<string, unknown> };

function planned(plan: PlanJson & { planned_values?: { root_module: { resources: Planned[] } } }): Planned[] {
  return plan.planned_values?.root_module.resources ?? [];
}

const find = (plan: PlanJson, address: string) => planned(plan).find((r) => r.address === address)!.values;

/** The cloud-init text in the synthesized stack; the provider plans its SHA-1, so that must match too. */
function userData(dir: string, plan: PlanJson, server = "server"): string {
  const stack = JSON.parse(readFileSync(join(dir, "cdktf.out/stacks/hello-aws/cdk.tf.json"), "utf8"));
  const text = stack.resource.aws_instance[server].user_data as string;
  expect(find(plan, `aws_instance.${server}`).user_data).toBe(createHash("sha1").update(text).digest("hex"));
  return text;
}

type Configured = { address: string; expressions: Record<string, any> };

/** The plan's configuration of a resource: its expressions, with the references terraform resolved. */
function configured(plan: PlanJson, address: string): Record<string, any> {
  const all = (plan as unknown as { configuration: { root_module: { resources: Configured[] } } }).configuration.root_module.resources;
  return all.find((r) => r.address === address)!.expressions;
}

interface Block {
  attributes?: Record<string, { type: unknown }>;
  block_types?: Record<string, { block: Block }>;
}
type ProviderSchemas = { provider_schemas: Record<string, { resource_schemas: Record<string, { version: number; block: Block }> }> };
type Unknowns = Record<string, unknown>;
type StateFile = { version: number; lineage: string; serial: number; resources: { type: string; name: string; instances: { attributes: Record<string, unknown> }[] }[] };

/**
 * A local state as an apply of this plan would leave it: each planned resource with its planned
 * values, every value known only after apply made up (`<attribute>-<name>`, empty lists and maps),
 * and each reference (`${aws_vpc.vpc.id}`) resolved to the made-up value it points at.
 */
function stateFromPlan(plan: PlanJson, schemas: Record<string, { version: number; block: Block }>, edit: (address: string, attributes: Record<string, unknown>) => void): StateFile {
  const full = plan as unknown as {
    planned_values: { root_module: { resources: Planned[] } };
    configuration: { root_module: { resources: Configured[] } };
    resource_changes: { address: string; change: { after_unknown: Unknowns } }[];
  };
  const fill = (block: Block, values: Record<string, any>, unknown: Unknowns, name: string): void => {
    for (const [k, u] of Object.entries(unknown)) {
      const type = block.attributes?.[k]?.type;
      if (u === true && type !== undefined) {
        const kind = Array.isArray(type) ? type[0] : type;
        values[k] = kind === "list" || kind === "set" ? [] : kind === "map" ? {} : kind === "bool" ? false : kind === "number" ? 0 : `${k}-${name}`;
      } else if (Array.isArray(u) && block.block_types?.[k]) {
        u.forEach((x, i) => fill(block.block_types![k].block, values[k][i], x as Unknowns, name));
      }
    }
  };
  const byAddress = new Map<string, { r: Planned; a: Record<string, any> }>();
  for (const r of full.planned_values.root_module.resources) {
    const a = structuredClone(r.values) as Record<string, any>;
    fill(schemas[r.type].block, a, full.resource_changes.find((c) => c.address === r.address)!.change.after_unknown, r.address.split(".")[1]);
    byAddress.set(r.address, { r, a });
  }
  const resolve = (value: unknown, target: Record<string | number, any>, key: string | number): void => {
    if (typeof value === "string") {
      const m = /^\$\{(\w+\.\w+)\.(\w+)\}$/.exec(value);
      if (m) target[key] = byAddress.get(m[1])!.a[m[2]];
    } else if (Array.isArray(value)) value.forEach((x, i) => target[key] && resolve(x, target[key], i));
    else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) target[key] && resolve(v, target[key], k);
  };
  for (const c of full.configuration.root_module.resources) {
    for (const [k, e] of Object.entries(c.expressions)) if (e.references && "constant_value" in e) resolve(e.constant_value, byAddress.get(c.address)!.a, k);
  }
  for (const [address, { a }] of byAddress) edit(address, a);
  return {
    version: 4,
    lineage: "5f0b2a4e-0000-4000-8000-0000000000a1",
    serial: 1,
    resources: [...byAddress.values()].map(({ r, a }) => ({
      mode: "managed",
      type: r.type,
      name: r.address.split(".")[1],
      provider: 'provider["registry.terraform.io/hashicorp/aws"]',
      instances: [{ schema_version: schemas[r.type].version, attributes: a }],
    })),
  } as StateFile;
}

const CORE: [string, string][] = [
  ["aws_eip.address", "aws_eip"],
  ["aws_instance.server", "aws_instance"],
  ["aws_internet_gateway.gateway", "aws_internet_gateway"],
  ["aws_route_table.routes", "aws_route_table"],
  ["aws_route_table_association.public_routes", "aws_route_table_association"],
  ["aws_security_group.firewall", "aws_security_group"],
  ["aws_subnet.subnet", "aws_subnet"],
  ["aws_vpc.vpc", "aws_vpc"],
  ["aws_vpc_security_group_egress_rule.egress", "aws_vpc_security_group_egress_rule"],
  ["aws_vpc_security_group_ingress_rule.http", "aws_vpc_security_group_ingress_rule"],
  ["aws_vpc_security_group_ingress_rule.https", "aws_vpc_security_group_ingress_rule"],
];

describe("aws stack: a real offline plan (terraform + provider mirror, fake credentials)", () => {
  test("with a domain and zone: the whole footprint plus the Route53 record, as a PR comment", async () => {
    const { dir, publicKey } = await project({ domain: "hello.example.com", options: `    zone_id: ${ZONE}\n    ssh_cidrs: [203.0.113.0/24, 198.51.100.7/32]\n` });
    const r = await togo(["diff", "--markdown"], { cwd: dir, env: ENV });
    expect(r.stderr).not.toContain("togo:");
    expect(r.exitCode).toBe(0);
    expect(r.stderr).not.toContain("open to the whole internet");
    // Nothing applied yet: no server to compare a deploy with, and the plan says so.
    expect(r.stdout).toContain("#### Deploy plan (aws)\n\n- no server yet (the stack has no public_ip output): nothing deployed to compare with; run togo provision");

    // What terraform planned, from `terraform show -json` of the saved plan.
    const plan = JSON.parse(readFileSync(join(dir, "cdktf.out/stacks/hello-aws/togo.tfplan.json"), "utf8")) as PlanJson;
    const changes = plan.resource_changes!.map((c) => [c.address, c.type, c.change.actions.join()]);
    const expected = [
      ...CORE,
      ["aws_route53_record.dns", "aws_route53_record"],
      ["aws_vpc_security_group_ingress_rule.ssh_203_0_113_0_24", "aws_vpc_security_group_ingress_rule"],
      ["aws_vpc_security_group_ingress_rule.ssh_198_51_100_7_32", "aws_vpc_security_group_ingress_rule"],
    ].map(([a, t]) => [a, t, "create"]);
    expect(changes.sort()).toEqual(expected.sort());
    expect(plan.resource_changes!.some((c) => c.mode === "data")).toBe(false); // explicit AMI: no lookup

    expect(find(plan, "aws_instance.server")).toMatchObject({ ami: AMI, instance_type: "t3.micro", metadata_options: [expect.objectContaining({ http_tokens: "required" })] });
    // The key is the deploy user's alone: no key pair, no key_name, so EC2 gives the image's default
    // (sudo) user none; the user data installs it for the deploy user only.
    expect(plan.resource_changes!.some((c) => c.type === "aws_key_pair")).toBe(false);
    const server = (plan as unknown as { configuration: { root_module: { resources: { address: string; expressions: Record<string, unknown> }[] } } }).configuration.root_module.resources.find((r) => r.address === "aws_instance.server")!;
    expect(server.expressions).not.toHaveProperty("key_name");
    expect(find(plan, "aws_instance.server").key_name).toBeUndefined(); // (known after apply): whatever AWS reports, none was asked for
    const users = (parse(userData(dir, plan)) as { users: unknown[] }).users;
    expect(users).toEqual(["default", expect.objectContaining({ name: "deploy", ssh_authorized_keys: [publicKey] })]);
    expect(find(plan, "aws_route53_record.dns")).toMatchObject({ name: "hello.example.com", type: "A", zone_id: ZONE, ttl: 300 });
    expect(find(plan, "aws_vpc_security_group_ingress_rule.ssh_203_0_113_0_24")).toMatchObject({ from_port: 22, to_port: 22, cidr_ipv4: "203.0.113.0/24" });
    expect(find(plan, "aws_vpc_security_group_ingress_rule.ssh_198_51_100_7_32")).toMatchObject({ cidr_ipv4: "198.51.100.7/32" });
    expect(find(plan, "aws_instance.server").tags).toEqual({ Name: "hello-server", app: "hello", "managed-by": "togo", "togo-caddy": "sites" });
    expect(plan.output_changes!.caddy_site).toMatchObject({ after: "hello.example.com" });
    expect(plan.output_changes!.url).toMatchObject({ after: "https://hello.example.com" });

    // The comment: counts, the change list, terraform's own plan folded away.
    const md = String(r.stdout);
    expect(md).toContain("**Plan:** 14 to add, 0 to change, 0 to replace, 0 to destroy.");
    expect(md).toContain("| `hello-aws` | 14 | 0 | 0 | 0 |");
    for (const [address] of expected) expect(md).toContain(`\n+ ${address}\n`);
    expect(md).toContain("# aws_route53_record.dns will be created");
    expect(md).toContain("Plan: 14 to add, 0 to change, 0 to destroy.");
    expect(md).toMatch(/<details><summary>Full plan<\/summary>/);

    // Only the public key went in: no credentials, no private key, anywhere in what was written.
    const stackJson = readFileSync(join(dir, "cdktf.out/stacks/hello-aws/cdk.tf.json"), "utf8");
    for (const text of [stackJson, md, JSON.stringify(plan)]) {
      expect(text).not.toContain(FAKE.access);
      expect(text).not.toContain(FAKE.secret);
      expect(text).not.toContain("PRIVATE KEY");
    }
    // The provider came from the mirror.
    const lock = readFileSync(join(dir, "cdktf.out/stacks/hello-aws/.terraform.lock.hcl"), "utf8");
    expect(lock).toContain('provider "registry.terraform.io/hashicorp/aws"');
    expect(lock).toContain('version     = "5.100.0"');
  });

  test("without a domain, SSH left open: no DNS record, a warning, url is the IP (JSON)", async () => {
    const { dir } = await project({});
    const r = await togo(["diff", "--json"], { cwd: dir, env: ENV });
    expect(r.stderr).not.toContain("togo:");
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain("warning: deploy.options.ssh_cidrs is not set: SSH (port 22) will be open to the whole internet (0.0.0.0/0)");

    const [d] = JSON.parse(String(r.stdout)) as { stack: string; counts: Record<string, number>; changes: string[]; plan: PlanJson }[];
    expect(d.stack).toBe("hello-aws");
    const expected = [...CORE, ["aws_vpc_security_group_ingress_rule.ssh_0_0_0_0_0", "aws_vpc_security_group_ingress_rule"]];
    expect(d.plan.resource_changes!.map((c) => [c.address, c.type]).sort()).toEqual(expected.sort());
    expect(d.counts).toEqual({ add: 12, change: 0, replace: 0, destroy: 0 });
    expect(d.changes).not.toContainEqual(expect.stringContaining("route53"));
    expect(find(d.plan, "aws_vpc_security_group_ingress_rule.ssh_0_0_0_0_0")).toMatchObject({ from_port: 22, cidr_ipv4: "0.0.0.0/0" });
    // The Caddyfile fixes no port: the deploy writes a :80 site for any Host (caddy_site, known at
    // plan: a new server carries the tag saying its Caddyfile leaves :80 to togo's sites), so the IP
    // is the URL (known after apply).
    expect(userData(dir, d.plan)).not.toContain("reverse_proxy");
    expect(userData(dir, d.plan)).not.toContain("3000");
    expect(find(d.plan, "aws_instance.server").tags).toMatchObject({ "togo-caddy": "sites" });
    expect(d.plan.output_changes!.caddy_site).toMatchObject({ after: ":80" });
    expect(d.plan.output_changes!.hosts).toMatchObject({ after_unknown: [true] });
    expect(d.plan.output_changes!.url).toMatchObject({ after_unknown: true });
    expect(d.plan.output_changes!.ssh_user).toMatchObject({ after: "deploy" });
  });

  test("instances: 3 with a domain and zone: three instances over two zones behind a load balancer with an ACM certificate", async () => {
    const { dir } = await project({
      deploy: "  app_port: 45678\n  healthcheck: { path: /healthz }\n",
      domain: "hello.example.com",
      options: `    zone_id: ${ZONE}\n    ssh_cidrs: [203.0.113.0/24]\n    instances: 3\n`,
    });
    const r = await togo(["diff", "--json"], { cwd: dir, env: ENV });
    expect({ exit: r.exitCode, stderr: r.stderr }).toEqual({ exit: 0, stderr: expect.not.stringContaining("togo:") });
    expect(r.stderr).not.toContain("warning");
    const [d] = JSON.parse(String(r.stdout)) as { stack: string; counts: Record<string, number>; changes: string[]; plan: PlanJson }[];
    const plan = d.plan;

    const expected = [
      ["aws_acm_certificate.cert", "aws_acm_certificate"],
      ["aws_acm_certificate_validation.cert", "aws_acm_certificate_validation"],
      ["aws_instance.server_0", "aws_instance"],
      ["aws_instance.server_1", "aws_instance"],
      ["aws_instance.server_2", "aws_instance"],
      ["aws_internet_gateway.gateway", "aws_internet_gateway"],
      ["aws_lb.lb", "aws_lb"],
      ["aws_lb_listener.http", "aws_lb_listener"],
      ["aws_lb_listener.https", "aws_lb_listener"],
      ["aws_lb_target_group.app", "aws_lb_target_group"],
      ["aws_lb_target_group_attachment.server_0", "aws_lb_target_group_attachment"],
      ["aws_lb_target_group_attachment.server_1", "aws_lb_target_group_attachment"],
      ["aws_lb_target_group_attachment.server_2", "aws_lb_target_group_attachment"],
      ["aws_route53_record.cert_validation", "aws_route53_record"],
      ["aws_route53_record.dns", "aws_route53_record"],
      ["aws_route_table.routes", "aws_route_table"],
      ["aws_route_table_association.public_routes", "aws_route_table_association"],
      ["aws_route_table_association.public_routes_b", "aws_route_table_association"],
      ["aws_security_group.firewall", "aws_security_group"],
      ["aws_security_group.lb_firewall", "aws_security_group"],
      ["aws_subnet.subnet", "aws_subnet"],
      ["aws_subnet.subnet_b", "aws_subnet"],
      ["aws_vpc.vpc", "aws_vpc"],
      ["aws_vpc_security_group_egress_rule.egress", "aws_vpc_security_group_egress_rule"],
      ["aws_vpc_security_group_egress_rule.lb_to_servers", "aws_vpc_security_group_egress_rule"],
      ["aws_vpc_security_group_ingress_rule.http_from_lb", "aws_vpc_security_group_ingress_rule"],
      ["aws_vpc_security_group_ingress_rule.lb_http", "aws_vpc_security_group_ingress_rule"],
      ["aws_vpc_security_group_ingress_rule.lb_https", "aws_vpc_security_group_ingress_rule"],
      ["aws_vpc_security_group_ingress_rule.ssh_203_0_113_0_24", "aws_vpc_security_group_ingress_rule"],
    ].map(([a, t]) => [a, t, "create"]);
    expect(plan.resource_changes!.map((c) => [c.address, c.type, c.change.actions.join()]).sort()).toEqual(expected.sort());
    expect(d.counts).toEqual({ add: expected.length, change: 0, replace: 0, destroy: 0 });
    // Explicit AMI, zones named (by default the region's a and b): nothing read from the account.
    expect(plan.resource_changes!.some((c) => c.mode === "data")).toBe(false);
    expect(plan.resource_changes!.some((c) => c.type === "aws_eip")).toBe(false);

    // Three instances, in subnets of two zones: each instance's subnet reference, that subnet's zone.
    const zoneOf = (subnet: string) => find(plan, subnet).availability_zone;
    expect([zoneOf("aws_subnet.subnet"), zoneOf("aws_subnet.subnet_b")]).toEqual(["eu-west-1a", "eu-west-1b"]);
    const servers = ["server_0", "server_1", "server_2"].map((s) => `aws_instance.${s}`);
    const zones = servers.map((s) => zoneOf(configured(plan, s).subnet_id.references.find((x: string) => /^aws_subnet\.\w+$/.test(x))));
    expect(zones).toEqual(["eu-west-1a", "eu-west-1b", "eu-west-1a"]);
    for (const s of servers) {
      expect(find(plan, s)).toMatchObject({ ami: AMI, instance_type: "t3.micro", tags: expect.objectContaining({ "togo-caddy": "sites" }) });
      expect(configured(plan, s).vpc_security_group_ids.references).toContain("aws_security_group.firewall.id");
    }
    // One user data for all, with no app port in it.
    const data = userData(dir, plan, "server_0");
    for (const s of ["server_1", "server_2"]) expect(userData(dir, plan, s)).toBe(data);
    expect(data).not.toContain("45678");

    // The balancer, in both subnets, behind its own group.
    expect(find(plan, "aws_lb.lb")).toMatchObject({ load_balancer_type: "application", internal: false, drop_invalid_header_fields: true });
    expect(configured(plan, "aws_lb.lb").subnets.references).toEqual(expect.arrayContaining(["aws_subnet.subnet.id", "aws_subnet.subnet_b.id"]));
    expect(configured(plan, "aws_lb.lb").security_groups.references).toContain("aws_security_group.lb_firewall.id");
    // The target group checks healthcheck.path on :80 (Caddy); one attachment per instance.
    expect(find(plan, "aws_lb_target_group.app")).toMatchObject({ port: 80, protocol: "HTTP", target_type: "instance" });
    expect(find(plan, "aws_lb_target_group.app").health_check).toEqual([expect.objectContaining({ path: "/healthz", matcher: "200-399", protocol: "HTTP", port: "traffic-port" })]);
    for (const [i, s] of servers.entries()) {
      expect(find(plan, `aws_lb_target_group_attachment.server_${i}`)).toMatchObject({ port: 80 });
      expect(configured(plan, `aws_lb_target_group_attachment.server_${i}`).target_id.references).toContain(`${s}.id`);
      expect(configured(plan, `aws_lb_target_group_attachment.server_${i}`).target_group_arn.references).toContain("aws_lb_target_group.app.arn");
    }
    // 80 redirects to HTTPS; 443 forwards, with the certificate once validated.
    expect(find(plan, "aws_lb_listener.http")).toMatchObject({ port: 80, protocol: "HTTP" });
    expect(find(plan, "aws_lb_listener.http").default_action).toEqual([
      expect.objectContaining({ type: "redirect", redirect: [expect.objectContaining({ port: "443", protocol: "HTTPS", status_code: "HTTP_301" })] }),
    ]);
    expect(find(plan, "aws_lb_listener.https")).toMatchObject({ port: 443, protocol: "HTTPS", ssl_policy: "ELBSecurityPolicy-TLS13-1-2-2021-06" });
    expect(find(plan, "aws_lb_listener.https").default_action).toEqual([expect.objectContaining({ type: "forward" })]);
    expect(configured(plan, "aws_lb_listener.https").certificate_arn.references).toContain("aws_acm_certificate_validation.cert.certificate_arn");
    // The certificate, its validation record in the zone, the validation.
    expect(find(plan, "aws_acm_certificate.cert")).toMatchObject({ domain_name: "hello.example.com", validation_method: "DNS" });
    expect(find(plan, "aws_route53_record.cert_validation")).toMatchObject({ zone_id: ZONE, ttl: 60, allow_overwrite: true });
    expect(configured(plan, "aws_route53_record.cert_validation").name.references).toContain("aws_acm_certificate.cert.domain_validation_options");
    expect(configured(plan, "aws_acm_certificate_validation.cert").validation_record_fqdns.references).toContain("aws_route53_record.cert_validation.fqdn");
    // The domain: an alias of the balancer.
    expect(find(plan, "aws_route53_record.dns")).toMatchObject({ zone_id: ZONE, name: "hello.example.com", type: "A" });
    expect(find(plan, "aws_route53_record.dns").alias).toEqual([expect.objectContaining({ evaluate_target_health: true })]);
    expect(configured(plan, "aws_route53_record.dns").alias[0].name.references).toContain("aws_lb.lb.dns_name");
    // The instances take HTTP from the balancer's group only; the balancer 80 and 443 from anywhere.
    expect(find(plan, "aws_vpc_security_group_ingress_rule.http_from_lb")).toMatchObject({ from_port: 80, to_port: 80, ip_protocol: "tcp", cidr_ipv4: null });
    expect(configured(plan, "aws_vpc_security_group_ingress_rule.http_from_lb").referenced_security_group_id.references).toContain("aws_security_group.lb_firewall.id");
    expect(configured(plan, "aws_vpc_security_group_ingress_rule.http_from_lb").security_group_id.references).toContain("aws_security_group.firewall.id");
    expect(find(plan, "aws_vpc_security_group_ingress_rule.lb_http")).toMatchObject({ from_port: 80, cidr_ipv4: "0.0.0.0/0" });
    expect(find(plan, "aws_vpc_security_group_ingress_rule.lb_https")).toMatchObject({ from_port: 443, cidr_ipv4: "0.0.0.0/0" });

    // Outputs: every instance's address, the domain's https URL, the :80 site.
    expect(plan.output_changes!.url).toMatchObject({ after: "https://hello.example.com" });
    expect(plan.output_changes!.caddy_site).toMatchObject({ after: ":80" });
    expect(plan.output_changes!.hosts).toMatchObject({ after_unknown: [true, true, true] });
    expect(plan.output_changes!.lb_dns_name).toMatchObject({ after_unknown: true });
    expect(JSON.stringify(plan)).not.toContain(FAKE.secret);
  });

  test("a single-instance stack applied by an earlier togo: the plan changes nothing on it, and caddy_site is empty (its own Caddyfile serves :80)", async () => {
    const { dir } = await project({ options: "    ssh_cidrs: [203.0.113.0/24]\n" });
    const first = await togo(["diff", "--json"], { cwd: dir, env: ENV });
    expect({ exit: first.exitCode, stderr: first.stderr }).toEqual({ exit: 0, stderr: expect.not.stringContaining("togo:") });
    const [d] = JSON.parse(String(first.stdout)) as { plan: PlanJson }[];
    const stackDir = join(dir, "cdktf.out/stacks/hello-aws");
    const env = testEnv({ ...ENV, TF_CLI_CONFIG_FILE: join(dir, ".togo/terraform.rc") });
    const terraform = async (args: string[]) => {
      const r = await execa("terraform", [`-chdir=${stackDir}`, ...args], { env, extendEnv: false, reject: false });
      expect({ args, exit: r.exitCode, stderr: String(r.stderr) }).toEqual({ args, exit: 0, stderr: "" });
      return String(r.stdout);
    };
    const schemas = (JSON.parse(await terraform(["providers", "schema", "-json"])) as ProviderSchemas).provider_schemas["registry.terraform.io/hashicorp/aws"].resource_schemas;

    // The state an apply by an earlier togo left: what this plan would create, with every value known,
    // minus what the older stack did not have: the layout tag, and this user data (its Caddyfile had a :80 block).
    const state = stateFromPlan(d.plan, schemas, (address, attributes) => {
      if (address !== "aws_instance.server") return;
      const tags = attributes.tags as Record<string, string>;
      const all = attributes.tags_all as Record<string, string>;
      expect(tags["togo-caddy"]).toBe("sites");
      delete tags["togo-caddy"];
      delete all["togo-caddy"];
      attributes.user_data = createHash("sha1").update("#cloud-config\n(an older togo's user data)\n").digest("hex");
    });
    writeFileSync(join(dir, "terraform.hello-aws.tfstate"), JSON.stringify(state));

    await terraform(["plan", "-refresh=false", "-input=false", "-no-color", "-out=legacy.tfplan"]);
    const plan = JSON.parse(await terraform(["show", "-json", "legacy.tfplan"])) as PlanJson & { output_changes: Record<string, { after: unknown }> };
    const actions = plan.resource_changes!.map((c) => [c.address, c.change.actions.join()]);
    expect(actions.sort()).toEqual(d.plan.resource_changes!.map((c) => [c.address, "no-op"]).sort());
    // The tag is not added to the older server (ignored once made), so its Caddyfile's :80 block is not contested.
    expect(plan.output_changes.caddy_site.after).toBe("");
    expect(plan.output_changes.hosts.after).toEqual([state.resources.find((r) => r.type === "aws_eip")!.instances[0].attributes.public_ip]);
    expect(plan.output_changes.instance_id.after).toBe(state.resources.find((r) => r.type === "aws_instance")!.instances[0].attributes.id);
  });

  test("bad aws settings are refused before anything runs (exit 2, key, value, fix)", async () => {
    const { dir } = await project({
      domain: undefined,
      options: `    ssh_cidrs: [10.0.0.1, 10.0.0.0/33, 010.0.0.0/8]\n    instance_type: T3-Micro\n    zone_id: ${ZONE}\n    instance_typ: t3.micro\n`,
    });
    const file = join(dir, "togo.yaml");
    const identity = `      assume_role_with_web_identity: { role_arn: 'arn:aws:iam::123456789012:role/ci', web_identity_token: ${WEB_TOKEN} }\n`;
    writeFileSync(file, readFileSync(file, "utf8").replace("    aws_provider:\n", `    aws_provider:\n${identity}`));
    const before = readdirSync(dir).sort();
    const r = await togo(["diff"], { cwd: dir, env: ENV });
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain('deploy.options.ssh_cidrs.0: got "10.0.0.1"; expected an IPv4 CIDR with no host bits set, e.g. 203.0.113.0/24; for one address write 10.0.0.1/32');
    expect(r.stderr).toContain('deploy.options.ssh_cidrs.1: got "10.0.0.0/33"');
    expect(r.stderr).toContain('deploy.options.ssh_cidrs.2: got "010.0.0.0/8"; expected an IPv4 CIDR with no host bits set, e.g. 203.0.113.0/24; no leading zeros: write 10.0.0.0/8');
    expect(r.stderr).toContain("deploy.options.aws_provider.assume_role_with_web_identity.web_identity_token: looks like a credential; credentials never go in the stack");
    expect(r.stderr).not.toContain(WEB_TOKEN);
    expect(r.stderr).toContain('deploy.options.instance_type: got "T3-Micro"; expected an EC2 instance type such as t3.micro');
    expect(r.stderr).toContain("deploy.options.zone_id");
    expect(r.stderr).toContain("deploy.domain is not");
    expect(r.stderr).toContain('deploy.options.instance_typ: unknown option for the aws driver; did you mean "instance_type"?');
    expect(readdirSync(dir).sort()).toEqual(before);
    expect(existsSync(join(dir, "cdktf.out"))).toBe(false);
  });
});

describe("aws: deploy.options.instances is checked before anything runs", () => {
  test.each([
    ["0", "got 0"],
    ["21", "got 21"],
    ['"3"', 'got "3"'],
    ["2.5", "got 2.5"],
  ])("instances: %s exits 2 naming deploy.options.instances, touching nothing", async (written, got) => {
    const { dir } = await project({ options: `    instances: ${written}\n` });
    const before = readdirSync(dir).sort();
    const r = await togo(["diff"], { cwd: dir, env: ENV });
    expect({ exit: r.exitCode, stderr: r.stderr }).toEqual({
      exit: 2,
      stderr: expect.stringContaining(`deploy.options.instances: ${got}; expected the number of instances: a whole number from 1 to 20`),
    });
    expect(r.stdout).toBe("");
    expect(readdirSync(dir).sort()).toEqual(before);
  });
});

describe("examples/aws", () => {
  test("its togo.yaml is valid and synthesizes: S3 state with locking, looked-up AMI, the DNS record", async () => {
    const dir = tempDir("togo-example-aws-");
    cpSync(join(ROOT, "examples", "aws"), dir, { recursive: true });
    const r = await togo(["synth"], { cwd: dir });
    expect(r.stderr).not.toContain("togo:");
    expect(r.stderr).not.toContain("warning");
    expect(r.exitCode).toBe(0);
    const stack = JSON.parse(readFileSync(join(dir, "cdktf.out/stacks/hello-aws/cdk.tf.json"), "utf8"));
    expect(stack.terraform.backend.s3).toEqual({ bucket: "my-company-tf-state", key: "togo/hello.tfstate", region: "eu-west-1", use_lockfile: true });
    expect(Object.keys(stack.data.aws_ami)).toEqual(["ubuntu"]);
    expect(stack.resource.aws_route53_record.dns).toMatchObject({ name: "hello.example.com", zone_id: "Z0123456789ABCDEFGHIJ" });
    expect(JSON.parse(readFileSync(join(dir, "cdktf.json"), "utf8"))).toMatchObject({ app: "npx togo synth", output: "cdktf.out" });
  });

  test("its workflow runs togo diff --markdown and cdktf diff on pull requests and comments once", () => {
    const wf = parse(readFileSync(join(ROOT, "examples/aws/.github/workflows/togo-diff.yml"), "utf8")) as {
      on: { pull_request: unknown };
      permissions: Record<string, string>;
      jobs: { diff: { steps: { run?: string; uses?: string; with?: Record<string, unknown> }[] } };
    };
    expect(wf.on.pull_request).toBeDefined();
    expect(wf.permissions).toMatchObject({ "pull-requests": "write", "id-token": "write" });
    const runs = wf.jobs.diff.steps.map((s) => s.run ?? "");
    expect(runs).toContain("npx togo diff --markdown > togo-diff.md");
    expect(runs).toContain("npx cdktf diff hello-aws");
    const comment = wf.jobs.diff.steps.find((s) => s.uses?.startsWith("actions/github-script"))!;
    expect(String(comment.with?.script)).toContain("togo-diff.md");
    expect(String(comment.with?.script)).toContain("updateComment");
  });
});
