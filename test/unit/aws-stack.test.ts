// The aws stack, checked with cdktf's own Testing matchers on the synthesized JSON: what the apply
// against AWS would create (that apply cannot run here; test/integration/aws-plan.test.ts plans it
// for real with the provider). Driver validation is checked here too: bad settings never synth.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { Testing, TerraformStack } from "cdktf";
import { DataAwsAmi } from "@cdktf/provider-aws/lib/data-aws-ami/index.js";
import { Eip } from "@cdktf/provider-aws/lib/eip/index.js";
import { Instance } from "@cdktf/provider-aws/lib/instance/index.js";
import { InternetGateway } from "@cdktf/provider-aws/lib/internet-gateway/index.js";
import { KeyPair } from "@cdktf/provider-aws/lib/key-pair/index.js";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider/index.js";
import { Route53Record } from "@cdktf/provider-aws/lib/route53-record/index.js";
import { RouteTable } from "@cdktf/provider-aws/lib/route-table/index.js";
import { RouteTableAssociation } from "@cdktf/provider-aws/lib/route-table-association/index.js";
import { SecurityGroup } from "@cdktf/provider-aws/lib/security-group/index.js";
import { Subnet } from "@cdktf/provider-aws/lib/subnet/index.js";
import { Vpc } from "@cdktf/provider-aws/lib/vpc/index.js";
import { VpcSecurityGroupEgressRule } from "@cdktf/provider-aws/lib/vpc-security-group-egress-rule/index.js";
import { VpcSecurityGroupIngressRule } from "@cdktf/provider-aws/lib/vpc-security-group-ingress-rule/index.js";
import { parse } from "yaml";
// The matcher types (setupJest adds the matchers at run time).
import type {} from "cdktf/lib/testing/adapters/jest.js";
import { AwsStack, architectureOf, caddyfileText, cloudInit, ownedDirs, type AwsStackProps } from "../../stacks/aws.js";
import { cleanupTempDirs, tempDir } from "../helpers/index.js";
import { awsSettings, credentialProblems, isIpv4Cidr } from "../../drivers/aws/index.js";
import { parseConfig } from "../../src/config/load.js";

afterAll(cleanupTempDirs);

Testing.setupJest();

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx0c2dvdGVzdGtleXRvZ290ZXN0a2V5dG9nb3Rlc3Q togo@test";

function props(over: Partial<AwsStackProps> = {}): AwsStackProps {
  return {
    projectDir: "/tmp/project",
    app: "hello",
    region: "eu-west-1",
    instanceType: "t3.micro",
    ami: "ami-0123456789abcdef0",
    sshCidrs: ["0.0.0.0/0"],
    publicKey: KEY,
    sshUser: "deploy",
    appDir: "/home/deploy/apps/hello",
    appPort: 3000,
    caddyDir: "/etc/caddy/togo.d",
    caddyfile: "/etc/caddy/Caddyfile",
    https: true,
    volumeSize: 20,
    providerOverrides: {},
    ...over,
  };
}

function synth(p: AwsStackProps): string {
  const app = Testing.app();
  const stack = new AwsStack(app, "hello-aws", p);
  return Testing.synth(stack);
}

function resources(json: string, type: string): Record<string, Record<string, unknown>> {
  return (JSON.parse(json) as { resource?: Record<string, Record<string, Record<string, unknown>>> }).resource?.[type] ?? {};
}

const TAGS = { app: "hello", "managed-by": "togo" };

describe("aws stack: the footprint", () => {
  const json = synth(props());

  test("provider in the region, no credentials in the JSON", () => {
    expect(json).toHaveProviderWithProperties(AwsProvider, { region: "eu-west-1" });
    expect(json).not.toMatch(/access_key|secret_key/);
  });

  test("its own network: VPC, public subnet, internet gateway, default route", () => {
    expect(json).toHaveResourceWithProperties(Vpc, { cidr_block: "10.42.0.0/16", tags: expect.objectContaining(TAGS) });
    expect(json).toHaveResourceWithProperties(Subnet, { cidr_block: "10.42.1.0/24", map_public_ip_on_launch: true, tags: expect.objectContaining(TAGS) });
    expect(json).toHaveResourceWithProperties(InternetGateway, { tags: expect.objectContaining(TAGS) });
    expect(json).toHaveResourceWithProperties(RouteTable, { route: [expect.objectContaining({ cidr_block: "0.0.0.0/0" })] });
    expect(json).toHaveResource(RouteTableAssociation);
  });

  test("security group: HTTP and HTTPS open, all egress", () => {
    expect(json).toHaveResourceWithProperties(SecurityGroup, { name: "hello-togo", tags: expect.objectContaining(TAGS) });
    expect(json).toHaveResourceWithProperties(VpcSecurityGroupIngressRule, { from_port: 80, to_port: 80, ip_protocol: "tcp", cidr_ipv4: "0.0.0.0/0" });
    expect(json).toHaveResourceWithProperties(VpcSecurityGroupIngressRule, { from_port: 443, to_port: 443, ip_protocol: "tcp", cidr_ipv4: "0.0.0.0/0" });
    expect(json).toHaveResourceWithProperties(VpcSecurityGroupEgressRule, { ip_protocol: "-1", cidr_ipv4: "0.0.0.0/0" });
  });

  test("no EC2 key pair: the public key is the deploy user's alone, never the image's default (sudo) user's", () => {
    expect(json).not.toHaveResource(KeyPair);
    const [server] = Object.values(resources(json, "aws_instance"));
    expect(server).not.toHaveProperty("key_name");
    // The key appears once in the whole stack: in the user data, as the deploy user's.
    expect(json.split(KEY.split(" ")[1]).length - 1).toBe(1);
    const users = (parse(server.user_data as string) as { users: unknown[] }).users;
    expect(users).toEqual(["default", expect.objectContaining({ name: "deploy", ssh_authorized_keys: [KEY] })]);
    expect(json).not.toContain("PRIVATE KEY");
  });

  test("a server made when the stack attached a key pair is not replaced for dropping it", () => {
    expect(Object.values(resources(json, "aws_instance"))[0].lifecycle).toEqual({ ignore_changes: ["user_data", "key_name"] });
  });

  test("instance: type, firewall, IMDSv2, encrypted gp3 root volume, tags", () => {
    expect(json).toHaveResourceWithProperties(Instance, {
      ami: "ami-0123456789abcdef0",
      instance_type: "t3.micro",
      subnet_id: "${aws_subnet.subnet.id}",
      vpc_security_group_ids: ["${aws_security_group.firewall.id}"],
      metadata_options: expect.objectContaining({ http_tokens: "required" }),
      root_block_device: expect.objectContaining({ encrypted: true, volume_type: "gp3", volume_size: 20 }),
      tags: expect.objectContaining({ ...TAGS, Name: "hello-server" }),
    });
  });

  test("Elastic IP on the instance", () => {
    expect(json).toHaveResourceWithProperties(Eip, { domain: "vpc", instance: "${aws_instance.server.id}", tags: expect.objectContaining(TAGS) });
  });

  test("every taggable resource carries app and managed-by", () => {
    const doc = JSON.parse(json) as { resource: Record<string, Record<string, { tags?: Record<string, string> }>> };
    const untaggable = new Set(["aws_route_table_association", "aws_route53_record"]);
    for (const [type, byName] of Object.entries(doc.resource)) {
      if (untaggable.has(type)) continue;
      for (const [name, r] of Object.entries(byName)) expect({ resource: `${type}.${name}`, tags: r.tags }).toEqual({ resource: `${type}.${name}`, tags: expect.objectContaining(TAGS) });
    }
  });

  test("outputs: public_ip, instance_id, ssh_user, url", () => {
    const out = (JSON.parse(json) as { output: Record<string, { value: unknown }> }).output;
    expect(out.public_ip.value).toBe("${aws_eip.address.public_ip}");
    expect(out.instance_id.value).toBe("${aws_instance.server.id}");
    expect(out.ssh_user.value).toBe("deploy");
    expect(out.url.value).toBe("http://${aws_eip.address.public_ip}");
  });
});

describe("aws stack: domain", () => {
  test("without a domain: no DNS record, url is the IP", () => {
    const json = synth(props());
    expect(json).not.toHaveResource(Route53Record);
  });

  test("with a domain and zone: an A record to the Elastic IP, url is https://domain", () => {
    const json = synth(props({ domain: "hello.example.com", zoneId: "Z0123456789ABCDEFGHIJ" }));
    expect(json).toHaveResourceWithProperties(Route53Record, {
      zone_id: "Z0123456789ABCDEFGHIJ",
      name: "hello.example.com",
      type: "A",
      ttl: 300,
      records: ["${aws_eip.address.public_ip}"],
    });
    expect((JSON.parse(json) as { output: Record<string, { value: unknown }> }).output.url.value).toBe("https://hello.example.com");
  });

  test("a domain without a zone makes no record (DNS is the user's)", () => {
    expect(synth(props({ domain: "hello.example.com" }))).not.toHaveResource(Route53Record);
  });
});

describe("aws stack: AMI", () => {
  test("explicit AMI: no data source at all (a plan needs nothing from the account)", () => {
    const json = synth(props());
    expect(json).not.toHaveDataSource(DataAwsAmi);
    expect(JSON.parse(json).data).toBeUndefined();
    expect(Object.values(resources(json, "aws_instance"))[0].lifecycle).toEqual({ ignore_changes: ["user_data", "key_name"] });
  });

  test("looked up: the newest Ubuntu 24.04 from Canonical, and the server ignores later AMIs", () => {
    const json = synth(props({ ami: undefined }));
    expect(json).toHaveDataSourceWithProperties(DataAwsAmi, {
      most_recent: true,
      owners: ["099720109477"],
      filter: expect.arrayContaining([
        { name: "name", values: ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"] },
        { name: "architecture", values: ["x86_64"] },
      ]),
    });
    expect(json).toHaveResourceWithProperties(Instance, { ami: "${data.aws_ami.ubuntu.id}", lifecycle: { ignore_changes: ["ami", "user_data", "key_name"] } });
  });

  test("looked up for a Graviton type: the arm64 image", () => {
    const json = synth(props({ ami: undefined, instanceType: "t4g.small" }));
    expect(json).toHaveDataSourceWithProperties(DataAwsAmi, {
      filter: expect.arrayContaining([{ name: "name", values: ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-*"] }]),
    });
    expect(json).toHaveResourceWithProperties(Instance, { instance_type: "t4g.small" });
  });

  test.each([
    ["t3.micro", "x86_64"],
    ["t4g.small", "arm64"],
    ["m7gd.large", "arm64"],
    ["c6gn.xlarge", "arm64"],
    ["a1.medium", "arm64"],
    ["g5.xlarge", "x86_64"],
    ["m6i.large", "x86_64"],
  ])("architecture of %s is %s", (type, arch) => {
    expect(architectureOf(type)).toBe(arch);
  });
});

describe("aws stack: SSH CIDRs", () => {
  test("one ingress rule on port 22 per CIDR, nothing else on 22", () => {
    const json = synth(props({ sshCidrs: ["203.0.113.0/24", "198.51.100.7/32"] }));
    expect(json).toHaveResourceWithProperties(VpcSecurityGroupIngressRule, { from_port: 22, to_port: 22, cidr_ipv4: "203.0.113.0/24" });
    expect(json).toHaveResourceWithProperties(VpcSecurityGroupIngressRule, { from_port: 22, to_port: 22, cidr_ipv4: "198.51.100.7/32" });
    expect(json).not.toHaveResourceWithProperties(VpcSecurityGroupIngressRule, { from_port: 22, cidr_ipv4: "0.0.0.0/0" });
    const ssh = Object.values(resources(json, "aws_vpc_security_group_ingress_rule")).filter((r) => r.from_port === 22);
    expect(ssh.map((r) => r.cidr_ipv4).sort()).toEqual(["198.51.100.7/32", "203.0.113.0/24"]);
  });

  test("rules are named by their CIDR: dropping one leaves the others' addresses alone", () => {
    const names = (cidrs: string[]) => Object.keys(resources(synth(props({ sshCidrs: cidrs })), "aws_vpc_security_group_ingress_rule")).filter((n) => n.startsWith("ssh_"));
    expect(names(["203.0.113.0/24", "198.51.100.7/32"]).sort()).toEqual(["ssh_198_51_100_7_32", "ssh_203_0_113_0_24"]);
    expect(names(["198.51.100.7/32"])).toEqual(["ssh_198_51_100_7_32"]);
  });
});

describe("aws stack: cloud-init", () => {
  const doc = parse(cloudInit(props())) as Record<string, any>;

  test("is cloud-config", () => {
    expect(cloudInit(props()).startsWith("#cloud-config\n")).toBe(true);
  });

  test("creates the deploy user with the key: key-only, no sudo, lingering for its user units", () => {
    const user = doc.users.find((u: unknown) => typeof u === "object" && (u as { name: string }).name === "deploy");
    expect(doc.users).toContain("default");
    expect(user).toEqual({ name: "deploy", gecos: "togo deploy user", lock_passwd: true, ssh_authorized_keys: [KEY], shell: "/bin/bash" });
    expect(doc.runcmd).toContainEqual(["loginctl", "enable-linger", "deploy"]);
  });

  test("installs Caddy (and rsync); the deploy user owns the app dir and the Caddy site dir", () => {
    expect(doc.packages).toEqual(expect.arrayContaining(["caddy", "rsync"]));
    expect(doc.runcmd).toContainEqual(["mkdir", "-p", "/home/deploy/apps/hello", "/etc/caddy/togo.d"]);
    expect(doc.runcmd).toContainEqual(["chown", "deploy:deploy", "/home/deploy/apps", "/home/deploy/apps/hello", "/etc/caddy/togo.d"]);
  });

  test("the Caddyfile imports the site dir; without a domain :80 proxies to the app", () => {
    const file = doc.write_files.find((f: { path: string }) => f.path === "/etc/caddy/Caddyfile");
    expect(file.defer).toBe(true);
    expect(file.content).toBe("# Written by togo (aws driver) at first boot.\nimport /etc/caddy/togo.d/*.caddy\n\n:80 {\n\treverse_proxy 127.0.0.1:3000\n}\n");
    const withDomain = parse(cloudInit(props({ domain: "hello.example.com" }))) as Record<string, any>;
    expect(withDomain.write_files[0].content).toBe("# Written by togo (aws driver) at first boot.\nimport /etc/caddy/togo.d/*.caddy\n");
  });

  test("is the instance's user_data", () => {
    expect(synth(props())).toHaveResourceWithProperties(Instance, { user_data: cloudInit(props()) });
  });

  test.each([
    ["no domain (the :80 fallback), no sites yet", undefined, false],
    ["a domain, with the site file the vps shipping writes", "hello.example.com", true],
  ])("Caddy accepts the Caddyfile: %s", async (_name, domain, withSite) => {
    const dir = tempDir("togo-caddy-");
    const sites = join(dir, "togo.d");
    mkdirSync(sites);
    if (withSite) writeFileSync(join(sites, "hello.caddy"), "hello.example.com {\n\treverse_proxy 127.0.0.1:3000\n}\n");
    writeFileSync(join(dir, "Caddyfile"), caddyfileText({ caddyDir: sites, appPort: 3000, domain }));
    const r = await execa("caddy", ["validate", "--config", join(dir, "Caddyfile"), "--adapter", "caddyfile"], {
      reject: false,
      all: true,
      env: { XDG_CONFIG_HOME: dir, XDG_DATA_HOME: dir },
    });
    expect({ exitCode: r.exitCode, output: r.exitCode === 0 ? "" : r.all }).toEqual({ exitCode: 0, output: "" });
  });

  test("owned dirs: from home down, or just the dir outside home", () => {
    expect(ownedDirs("/home/deploy/a/b", "/home/deploy")).toEqual(["/home/deploy/a", "/home/deploy/a/b"]);
    expect(ownedDirs("/srv/hello", "/home/deploy")).toEqual(["/srv/hello"]);
  });
});

describe("aws stack: provider overrides and backend", () => {
  test("extra provider attributes land on the provider as written", () => {
    const json = synth(props({ providerOverrides: { skip_credentials_validation: true, max_retries: 1, endpoints: [{ ec2: "http://127.0.0.1:1" }] } }));
    expect(json).toHaveProviderWithProperties(AwsProvider, { skip_credentials_validation: true, max_retries: 1, endpoints: [{ ec2: "http://127.0.0.1:1" }] });
  });

  test("state: s3 backend with use_lockfile when configured", () => {
    const json = synth(props({ s3: { bucket: "tf", key: "togo/hello.tfstate", region: "eu-west-1", useLockfile: true, options: {} } }));
    expect(JSON.parse(json).terraform.backend.s3).toMatchObject({ bucket: "tf", key: "togo/hello.tfstate", region: "eu-west-1", use_lockfile: true });
  });

  test("local backend by default, at cdktf's path", () => {
    expect(JSON.parse(synth(props())).terraform.backend.local.path).toBe("/tmp/project/terraform.hello-aws.tfstate");
  });
});

describe("aws driver settings (validated before anything runs)", () => {
  const dir = tempDir("togo-aws-settings-");
  writeFileSync(join(dir, "deploy.pub"), `${KEY}\n`);
  writeFileSync(join(dir, "id_ed25519"), "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n");
  writeFileSync(join(dir, "notakey.pub"), "hello world\n");

  const spec = (deploy: string) =>
    parseConfig(`app: hello\ndeploy:\n  provider: aws\n  region: eu-west-1\n  binary: server.js\n  run: node server.js\n${deploy}`, join(dir, "togo.yaml"), {});
  const problems = (deploy: string) => awsSettings(spec(deploy)).problems;

  test("defaults: t3.micro, looked-up AMI, 20 GiB, user deploy, ~/ is the deploy user's home, shipping's Caddy dir", () => {
    const s = awsSettings(spec("  options:\n    public_key_file: deploy.pub\n    ssh_cidrs: [203.0.113.0/24]\n"));
    expect(s.problems).toEqual([]);
    expect(s.warnings).toEqual([]);
    expect(s.props).toEqual({
      app: "hello",
      region: "eu-west-1",
      instanceType: "t3.micro",
      sshCidrs: ["203.0.113.0/24"],
      publicKey: KEY,
      sshUser: "deploy",
      appDir: "/home/deploy/apps/hello",
      appPort: 3000,
      caddyDir: "/etc/caddy/togo.d",
      caddyfile: "/etc/caddy/Caddyfile",
      https: true,
      volumeSize: 20,
      providerOverrides: {},
    });
  });

  test("ssh_cidrs left out: allowed, with a warning naming the key", () => {
    const s = awsSettings(spec("  options:\n    public_key_file: deploy.pub\n"));
    expect(s.problems).toEqual([]);
    expect(s.props?.sshCidrs).toEqual(["0.0.0.0/0"]);
    expect(s.warnings.join("\n")).toContain("deploy.options.ssh_cidrs is not set: SSH (port 22) will be open to the whole internet");
  });

  test("ssh_cidrs naming the whole internet: allowed, with the same warning as leaving it out", () => {
    const s = awsSettings(spec("  options:\n    public_key_file: deploy.pub\n    ssh_cidrs: [203.0.113.0/24, 0.0.0.0/0]\n"));
    expect(s.problems).toEqual([]);
    expect(s.props?.sshCidrs).toEqual(["203.0.113.0/24", "0.0.0.0/0"]);
    expect(s.warnings).toEqual(["deploy.options.ssh_cidrs includes 0.0.0.0/0: SSH (port 22) will be open to the whole internet; list your networks instead, e.g. [203.0.113.0/24]"]);
  });

  test("ssh_cidrs with IPv6's whole internet: refused (the network is IPv4 only), saying so", () => {
    const [p] = problems("  options:\n    public_key_file: deploy.pub\n    ssh_cidrs: ['::/0']\n").filter((x) => x.path === "deploy.options.ssh_cidrs.0");
    expect(p).toEqual({ path: "deploy.options.ssh_cidrs.0", value: "::/0", expected: "expected an IPv4 CIDR with no host bits set, e.g. 203.0.113.0/24; IPv6 is not supported: the server's network is IPv4 only" });
  });

  test("a CIDR with leading zeros is refused before it reaches a plan, with the canonical form to write", () => {
    const found = problems("  options:\n    public_key_file: deploy.pub\n    ssh_cidrs: [010.0.0.0/8, 10.0.0.0/08, 192.168.001.0/24]\n").filter((x) => x.path.startsWith("deploy.options.ssh_cidrs"));
    expect(found).toEqual([
      { path: "deploy.options.ssh_cidrs.0", value: "010.0.0.0/8", expected: "expected an IPv4 CIDR with no host bits set, e.g. 203.0.113.0/24; no leading zeros: write 10.0.0.0/8" },
      { path: "deploy.options.ssh_cidrs.1", value: "10.0.0.0/08", expected: "expected an IPv4 CIDR with no host bits set, e.g. 203.0.113.0/24; no leading zeros: write 10.0.0.0/8" },
      { path: "deploy.options.ssh_cidrs.2", value: "192.168.001.0/24", expected: "expected an IPv4 CIDR with no host bits set, e.g. 203.0.113.0/24; no leading zeros: write 192.168.1.0/24" },
    ]);
  });

  test("a domain without a zone: a warning that DNS is the user's", () => {
    const s = awsSettings(spec("  domain: hello.example.com\n  options:\n    public_key_file: deploy.pub\n    ssh_cidrs: [203.0.113.0/24]\n"));
    expect(s.problems).toEqual([]);
    expect(s.warnings).toEqual(["deploy.domain is hello.example.com but deploy.options.zone_id is not set: no DNS record is made; point hello.example.com at the public_ip output yourself"]);
  });

  test.each<[string, string, string, string]>([
    ["no public key", "  options: {}\n", "deploy.options.public_key_file", "is required for the aws driver"],
    ["a missing key file", "  options:\n    public_key_file: nope.pub\n", "deploy.options.public_key_file", "no such file"],
    ["a private key", "  options:\n    public_key_file: id_ed25519\n", "deploy.options.public_key_file", "this is a PRIVATE key"],
    ["not a key", "  options:\n    public_key_file: notakey.pub\n", "deploy.options.public_key_file", "does not look like an OpenSSH public key"],
    ["a bare address", "  options:\n    public_key_file: deploy.pub\n    ssh_cidrs: [198.51.100.7]\n", "deploy.options.ssh_cidrs.0", "write 198.51.100.7/32"],
    ["host bits set", "  options:\n    public_key_file: deploy.pub\n    ssh_cidrs: [10.0.0.1/8]\n", "deploy.options.ssh_cidrs.0", "no host bits set"],
    ["an empty list", "  options:\n    public_key_file: deploy.pub\n    ssh_cidrs: []\n", "deploy.options.ssh_cidrs", "non-empty list"],
    ["a bad AMI", "  options:\n    public_key_file: deploy.pub\n    ami: ubuntu\n", "deploy.options.ami", "ami-0123456789abcdef0"],
    ["a bad zone", "  domain: hello.example.com\n  options:\n    public_key_file: deploy.pub\n    zone_id: example.com\n", "deploy.options.zone_id", "Route53 hosted zone id"],
    ["a zone without a domain", "  options:\n    public_key_file: deploy.pub\n    zone_id: Z0123456789ABCDEFGHIJ\n", "deploy.options.zone_id", "deploy.domain is not"],
    ["credentials in the provider", "  options:\n    public_key_file: deploy.pub\n    aws_provider: { secret_key: x }\n", "deploy.options.aws_provider.secret_key", "credentials never go in the stack"],
    ["region in the provider", "  options:\n    public_key_file: deploy.pub\n    aws_provider: { region: us-east-1 }\n", "deploy.options.aws_provider.region", "deploy.region"],
    ["a tiny volume", "  options:\n    public_key_file: deploy.pub\n    volume_size: 2\n", "deploy.options.volume_size", "8 to 16384"],
    ["root", "  user: root\n  options:\n    public_key_file: deploy.pub\n", "deploy.user", "unprivileged user"],
    ["a typo", "  options:\n    public_key_file: deploy.pub\n    amii: ami-0123456789abcdef0\n", "deploy.options.amii", 'did you mean "ami"?'],
  ])("refused: %s", (_name, deploy, path, fragment) => {
    const found = problems(deploy).filter((p) => p.path === path);
    expect(found.map((p) => p.expected).join("\n")).toContain(fragment);
  });

  describe("credentials in aws_provider are refused by their shape, at any depth, never echoed", () => {
    const TOKEN = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXdlYi1pZGVudGl0eQ.c2ln";
    const provider = (yaml: string) => problems(`  options:\n    public_key_file: deploy.pub\n    ssh_cidrs: [203.0.113.0/24]\n    aws_provider:\n${yaml}`);

    test.each<[string, string, string, string]>([
      ["web_identity_token", `      web_identity_token: ${TOKEN}\n`, "deploy.options.aws_provider.web_identity_token", "web_identity_token_file"],
      ["a nested web identity token", `      assume_role_with_web_identity:\n        role_arn: arn:aws:iam::123456789012:role/ci\n        web_identity_token: ${TOKEN}\n`, "deploy.options.aws_provider.assume_role_with_web_identity.web_identity_token", "web_identity_token_file"],
      ["a web identity token in a block list", `      assume_role_with_web_identity: [{ web_identity_token: ${TOKEN} }]\n`, "deploy.options.aws_provider.assume_role_with_web_identity.0.web_identity_token", "web_identity_token_file"],
      ["a session token", `      session_token: ${TOKEN}\n`, "deploy.options.aws_provider.session_token", "AWS_PROFILE or an OIDC role"],
      ["a password deep down", `      assume_role: { role_arn: 'arn:aws:iam::1:role/x', extra: { db_password: ${TOKEN} } }\n`, "deploy.options.aws_provider.assume_role.extra.db_password", "looks like a credential"],
      ["a client secret", `      client_secret: ${TOKEN}\n`, "deploy.options.aws_provider.client_secret", "looks like a credential"],
      ["an access key ID under any key", "      profile: AKIAIOSFODNN7EXAMPLE\n", "deploy.options.aws_provider.profile", "holds an AWS access key ID"],
      ["a proxy URL with a password", `      https_proxy: 'http://ci:${TOKEN}@proxy.example.com:3128'\n`, "deploy.options.aws_provider.https_proxy", "HTTPS_PROXY"],
      ["the old three", `      access_key: AKIAIOSFODNN7EXAMPLE\n      secret_key: ${TOKEN}\n      token: ${TOKEN}\n`, "deploy.options.aws_provider.secret_key", "credentials never go in the stack"],
    ])("refused: %s", (_name, yaml, path, fragment) => {
      const found = provider(yaml);
      expect(found.map((p) => p.path)).toContain(path);
      expect(found.find((p) => p.path === path)!.expected).toContain(fragment);
      const text = JSON.stringify(found);
      expect(text).not.toContain(TOKEN);
      expect(text).not.toContain("AKIAIOSFODNN7EXAMPLE");
      expect(text).not.toContain("ci:");
    });

    test("what only looks near one is allowed: token files, credential files, rate limits, endpoints of secret services, roles", () => {
      const found = provider(
        [
          "      web_identity_token_file: /var/run/secrets/token",
          "      shared_credentials_files: [/home/ci/.aws/credentials]",
          "      token_bucket_rate_limit: 100",
          "      profile: ci",
          "      assume_role: { role_arn: 'arn:aws:iam::123456789012:role/deploy', session_name: togo, external_id: abc }",
          "      endpoints: [{ secretsmanager: 'http://127.0.0.1:1', sts: 'http://127.0.0.1:1' }]",
          "      default_tags: { tags: { team: web } }",
          "",
        ].join("\n"),
      );
      expect(found).toEqual([]);
    });

    test("every path is reported, with the key and never the value", () => {
      expect(credentialProblems({ a: [{ secret: "x1y2z3" }], b: { api_key: "k" }, c: "fine" }, "root")).toEqual([
        { path: "root.a.0.secret", expected: expect.stringContaining("looks like a credential") },
        { path: "root.b.api_key", expected: expect.stringContaining("looks like a credential") },
      ]);
    });
  });

  test("the private key's content is never echoed", () => {
    const [p] = problems("  options:\n    public_key_file: id_ed25519\n");
    expect(JSON.stringify(p)).not.toContain("b3BlbnNzaC1rZXktdjEAAAAA");
  });

  test("region, run and binary are required", () => {
    const s = parseConfig(`app: hello\ndeploy:\n  provider: aws\n  options:\n    public_key_file: deploy.pub\n`, join(dir, "togo.yaml"), {});
    expect(awsSettings(s).problems.map((p) => p.path)).toEqual(["deploy.region", "deploy.run", "deploy.binary"]);
  });

  test("the vps shipping's options are known here too", () => {
    expect(problems("  options:\n    public_key_file: deploy.pub\n    https: false\n    service: systemd\n")).toEqual([]);
    expect(awsSettings(spec("  options:\n    public_key_file: deploy.pub\n    https: false\n    caddy_dir: /etc/caddy/sites\n")).props).toMatchObject({ https: false, caddyDir: "/etc/caddy/sites" });
  });

  test.each([
    ["203.0.113.0/24", true],
    ["0.0.0.0/0", true],
    ["198.51.100.7/32", true],
    ["10.0.0.1/8", false],
    ["256.0.0.0/8", false],
    ["10.0.0.0/33", false],
    ["::/0", false],
    ["10.0.0.0", false],
    ["010.0.0.0/8", false],
    ["10.0.0.0/08", false],
    ["10.00.0.0/16", false],
    ["0.0.0.0/00", false],
    ["100.64.0.0/10", true],
    ["10.0.0.0/8", true],
  ])("isIpv4Cidr(%s) is %s", (cidr, ok) => {
    expect(isIpv4Cidr(cidr)).toBe(ok);
  });
});
