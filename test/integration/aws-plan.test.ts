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
import { cleanupTempDirs, helloProject, ROOT, tempDir, togo } from "../helpers/index.js";
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
`;

function yaml(extra: { domain?: string; options?: string }): string {
  return `app: hello
deploy:
  provider: aws
  region: eu-west-1
  binary: server.js
  run: node server.js
${extra.domain ? `  domain: ${extra.domain}\n` : ""}  options:
    public_key_file: deploy.pub
    ami: ${AMI}
${extra.options ?? ""}${OFFLINE_PROVIDER}terraform:
  engine: terraform
  plugin_mirror: ${MIRROR}
`;
}

async function project(extra: { domain?: string; options?: string }): Promise<{ dir: string; publicKey: string }> {
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
function userData(dir: string, plan: PlanJson): string {
  const stack = JSON.parse(readFileSync(join(dir, "cdktf.out/stacks/hello-aws/cdk.tf.json"), "utf8"));
  const text = stack.resource.aws_instance.server.user_data as string;
  expect(find(plan, "aws_instance.server").user_data).toBe(createHash("sha1").update(text).digest("hex"));
  return text;
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
    expect(find(plan, "aws_instance.server").tags).toEqual({ Name: "hello-server", app: "hello", "managed-by": "togo" });
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
    // The no-domain Caddyfile proxies :80 to the app, so the IP is the URL (known after apply).
    expect(userData(dir, d.plan)).toContain("reverse_proxy 127.0.0.1:3000");
    expect(d.plan.output_changes!.url).toMatchObject({ after_unknown: true });
    expect(d.plan.output_changes!.ssh_user).toMatchObject({ after: "deploy" });
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
