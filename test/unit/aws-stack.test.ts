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
import { AcmCertificate } from "@cdktf/provider-aws/lib/acm-certificate/index.js";
import { AcmCertificateValidation } from "@cdktf/provider-aws/lib/acm-certificate-validation/index.js";
import { Lb } from "@cdktf/provider-aws/lib/lb/index.js";
import { LbListener } from "@cdktf/provider-aws/lib/lb-listener/index.js";
import { LbTargetGroup } from "@cdktf/provider-aws/lib/lb-target-group/index.js";
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
import { ANY_HOST_SITE, AwsStack, architectureOf, caddyfileText, cloudInit, ownedDirs, type AwsStackProps } from "../../stacks/aws.js";
import { renderSite } from "../../src/ship/caddy.js";
import { cleanupTempDirs, tempDir } from "../helpers/index.js";
import { awsSettings, credentialProblems, isIpv4Cidr, siteSpec, targetsFromOutputs } from "../../drivers/aws/index.js";
import { parseConfig } from "../../src/config/load.js";
import { OperationError } from "../../src/core/errors.js";

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
    caddyDir: "/etc/caddy/togo.d",
    caddyfile: "/etc/caddy/Caddyfile",
    https: true,
    volumeSize: 20,
    instances: 1,
    availabilityZones: ["eu-west-1a", "eu-west-1b"],
    healthPath: "/up",
    providerOverrides: {},
    ...over,
  };
}

/** One outdir for every app here (Testing.app() alone makes a /tmp/cdktf.outdir.* per call and leaves it). */
const OUTDIR = tempDir("togo-aws-synth-");

function synth(p: AwsStackProps): string {
  const app = Testing.app({ outdir: OUTDIR });
  const stack = new AwsStack(app, "hello-aws", p);
  return Testing.synth(stack);
}

function resources(json: string, type: string): Record<string, Record<string, unknown>> {
  return (JSON.parse(json) as { resource?: Record<string, Record<string, Record<string, unknown>>> }).resource?.[type] ?? {};
}

const TAGS = { app: "hello", "managed-by": "togo" };

function expectTagged(json: string): void {
  const doc = JSON.parse(json) as { resource: Record<string, Record<string, { tags?: Record<string, string> }>> };
  const untaggable = new Set(["aws_route_table_association", "aws_route53_record", "aws_lb_target_group_attachment", "aws_acm_certificate_validation"]);
  for (const [type, byName] of Object.entries(doc.resource)) {
    if (untaggable.has(type)) continue;
    for (const [name, r] of Object.entries(byName)) expect({ resource: `${type}.${name}`, tags: r.tags }).toEqual({ resource: `${type}.${name}`, tags: expect.objectContaining(TAGS) });
  }
}

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
    expect(Object.values(resources(json, "aws_instance"))[0].lifecycle).toEqual({ ignore_changes: ["user_data", "key_name", 'tags["togo-caddy"]'] });
  });

  test("instance: type, firewall, IMDSv2, encrypted gp3 root volume, tags", () => {
    expect(json).toHaveResourceWithProperties(Instance, {
      ami: "ami-0123456789abcdef0",
      instance_type: "t3.micro",
      subnet_id: "${aws_subnet.subnet.id}",
      vpc_security_group_ids: ["${aws_security_group.firewall.id}"],
      metadata_options: expect.objectContaining({ http_tokens: "required" }),
      root_block_device: expect.objectContaining({ encrypted: true, volume_type: "gp3", volume_size: 20 }),
      tags: { ...TAGS, Name: "hello-server", "togo-caddy": "sites" },
    });
  });

  test("Elastic IP on the instance", () => {
    expect(json).toHaveResourceWithProperties(Eip, { domain: "vpc", instance: "${aws_instance.server.id}", tags: expect.objectContaining(TAGS) });
  });

  test("every taggable resource carries app and managed-by", () => {
    expectTagged(json);
  });

  test("outputs: public_ip, instance_id, ssh_user, url; hosts and instance_ids as one-element lists; caddy_site", () => {
    const out = outputsOf(json);
    expect(out.public_ip).toBe("${aws_eip.address.public_ip}");
    expect(out.instance_id).toBe("${aws_instance.server.id}");
    expect(out.ssh_user).toBe("deploy");
    expect(out.url).toBe("http://${aws_eip.address.public_ip}");
    expect(out.hosts).toEqual(["${aws_eip.address.public_ip}"]);
    expect(out.instance_ids).toEqual(["${aws_instance.server.id}"]);
    // Without a domain: :80 for any Host, on a server whose first boot left :80 to togo's sites (its tag).
    expect(out.caddy_site).toBe('${lookup(aws_instance.server.tags, "togo-caddy", "") == "sites" ? ":80" : ""}');
    expect(out.lb_dns_name).toBeUndefined();
  });
});

/** Every resource and data source address in a synthesized stack. */
function addresses(json: string): string[] {
  const doc = JSON.parse(json) as { resource?: Record<string, Record<string, unknown>>; data?: Record<string, Record<string, unknown>> };
  const of = (block: Record<string, Record<string, unknown>> | undefined, prefix = "") => Object.entries(block ?? {}).flatMap(([type, byName]) => Object.keys(byName).map((n) => `${prefix}${type}.${n}`));
  return [...of(doc.resource), ...of(doc.data, "data.")].sort();
}

function outputsOf(json: string): Record<string, unknown> {
  return Object.fromEntries(Object.entries((JSON.parse(json) as { output: Record<string, { value: unknown }> }).output).map(([k, v]) => [k, v.value]));
}

/** The addresses of the single-instance stack before fleets existed: an applied stack must keep every one. */
const SINGLE = [
  "aws_eip.address",
  "aws_instance.server",
  "aws_internet_gateway.gateway",
  "aws_route_table.routes",
  "aws_route_table_association.public_routes",
  "aws_security_group.firewall",
  "aws_subnet.subnet",
  "aws_vpc.vpc",
  "aws_vpc_security_group_egress_rule.egress",
  "aws_vpc_security_group_ingress_rule.http",
  "aws_vpc_security_group_ingress_rule.https",
  "aws_vpc_security_group_ingress_rule.ssh_0_0_0_0_0",
];

describe("aws stack: instances 1 is the stack as before (nothing of an applied one is replaced)", () => {
  test("the same addresses, without and with a domain; no load balancer, certificate or second subnet", () => {
    expect(addresses(synth(props()))).toEqual(SINGLE);
    expect(addresses(synth(props({ domain: "hello.example.com", zoneId: "Z0123456789ABCDEFGHIJ" })))).toEqual([...SINGLE, "aws_route53_record.dns"].sort());
  });

  test("what would force a replacement is as before: the subnet's zone is AWS's choice, the security group's name and description", () => {
    const json = synth(props());
    expect(resources(json, "aws_subnet").subnet).not.toHaveProperty("availability_zone");
    expect(resources(json, "aws_subnet").subnet).toMatchObject({ cidr_block: "10.42.1.0/24", vpc_id: "${aws_vpc.vpc.id}" });
    expect(resources(json, "aws_security_group").firewall).toMatchObject({ name: "hello-togo", description: "togo: hello (SSH from chosen networks, HTTP and HTTPS from anywhere)" });
    expect(resources(json, "aws_instance").server).toMatchObject({ subnet_id: "${aws_subnet.subnet.id}", vpc_security_group_ids: ["${aws_security_group.firewall.id}"] });
  });

  test("instances 1 ignores availability_zones (they are for a fleet)", () => {
    expect(synth(props({ availabilityZones: ["eu-west-1b", "eu-west-1c"] }))).toBe(synth(props()));
  });

  test("with a domain, caddy_site is the domain (Caddy on the server gets its certificate)", () => {
    expect(outputsOf(synth(props({ domain: "hello.example.com", zoneId: "Z0123456789ABCDEFGHIJ" }))).caddy_site).toBe("hello.example.com");
  });
});

describe("aws stack: a fleet (instances 3) behind an Application Load Balancer", () => {
  const FLEET_SG = "togo: hello (SSH from chosen networks, HTTP from its load balancer)";
  const plain = synth(props({ instances: 3 }));
  const secure = synth(props({ instances: 3, domain: "hello.example.com", zoneId: "Z0123456789ABCDEFGHIJ" }));

  test("three instances alternating over two subnets pinned to the two zones", () => {
    const subnets = resources(plain, "aws_subnet");
    expect(subnets).toEqual({
      subnet: expect.objectContaining({ cidr_block: "10.42.1.0/24", availability_zone: "eu-west-1a", map_public_ip_on_launch: true }),
      subnet_b: expect.objectContaining({ cidr_block: "10.42.2.0/24", availability_zone: "eu-west-1b", map_public_ip_on_launch: true }),
    });
    expect(plain).toHaveResourceWithProperties(RouteTableAssociation, { subnet_id: "${aws_subnet.subnet_b.id}", route_table_id: "${aws_route_table.routes.id}" });
    const servers = resources(plain, "aws_instance");
    expect(Object.keys(servers).sort()).toEqual(["server_0", "server_1", "server_2"]);
    expect(Object.values(servers).map((s) => s.subnet_id)).toEqual(["${aws_subnet.subnet.id}", "${aws_subnet.subnet_b.id}", "${aws_subnet.subnet.id}"]);
    expect(servers.server_1.tags).toEqual({ ...TAGS, Name: "hello-server-1", "togo-caddy": "sites" });
    expect(plain).not.toHaveResource(Eip);
  });

  test("the zones are the ones named", () => {
    const subnets = resources(synth(props({ instances: 2, availabilityZones: ["eu-west-1c", "eu-west-1a"] })), "aws_subnet");
    expect([subnets.subnet.availability_zone, subnets.subnet_b.availability_zone]).toEqual(["eu-west-1c", "eu-west-1a"]);
  });

  test("instances take HTTP only from the balancer's group; the balancer takes 80 and 443 from anywhere", () => {
    const rules = Object.entries(resources(plain, "aws_vpc_security_group_ingress_rule"));
    const onServers = rules.filter(([, r]) => r.security_group_id === "${aws_security_group.firewall.id}");
    expect(onServers.map(([n]) => n).sort()).toEqual(["http_from_lb", "ssh_0_0_0_0_0"]);
    expect(Object.fromEntries(onServers)["http_from_lb"]).toEqual(
      expect.objectContaining({ from_port: 80, to_port: 80, ip_protocol: "tcp", referenced_security_group_id: "${aws_security_group.lb_firewall.id}" }),
    );
    expect(Object.fromEntries(onServers)["http_from_lb"]).not.toHaveProperty("cidr_ipv4");
    // Nothing but SSH from a CIDR reaches the instances.
    expect(onServers.filter(([, r]) => r.cidr_ipv4 !== undefined).map(([, r]) => r.from_port)).toEqual([22]);
    const onLb = rules.filter(([, r]) => r.security_group_id === "${aws_security_group.lb_firewall.id}").map(([, r]) => [r.from_port, r.cidr_ipv4]);
    expect(onLb.sort()).toEqual([[443, "0.0.0.0/0"], [80, "0.0.0.0/0"]]);
    expect(plain).toHaveResourceWithProperties(VpcSecurityGroupEgressRule, {
      security_group_id: "${aws_security_group.lb_firewall.id}",
      from_port: 80,
      to_port: 80,
      referenced_security_group_id: "${aws_security_group.firewall.id}",
    });
    expect(resources(plain, "aws_security_group").firewall).toMatchObject({ name: "hello-togo", description: FLEET_SG });
    expect(resources(plain, "aws_security_group").lb_firewall).toMatchObject({ name: "hello-togo-lb", vpc_id: "${aws_vpc.vpc.id}" });
    expect(Object.values(resources(plain, "aws_instance")).map((s) => s.vpc_security_group_ids)).toEqual(Array(3).fill(["${aws_security_group.firewall.id}"]));
  });

  test("the balancer: public, in both subnets, its own group; the target group checks healthcheck.path on Caddy's :80", () => {
    expect(plain).toHaveResourceWithProperties(Lb, {
      load_balancer_type: "application",
      internal: false,
      subnets: ["${aws_subnet.subnet.id}", "${aws_subnet.subnet_b.id}"],
      security_groups: ["${aws_security_group.lb_firewall.id}"],
      drop_invalid_header_fields: true,
    });
    expect(plain).toHaveResourceWithProperties(LbTargetGroup, {
      port: 80,
      protocol: "HTTP",
      target_type: "instance",
      vpc_id: "${aws_vpc.vpc.id}",
      health_check: expect.objectContaining({ path: "/up", matcher: "200-399", protocol: "HTTP", port: "traffic-port" }),
    });
    expect(resources(synth(props({ instances: 2, healthPath: "/healthz" })), "aws_lb_target_group").app.health_check).toMatchObject({ path: "/healthz" });
    const attachments = resources(plain, "aws_lb_target_group_attachment");
    expect(attachments).toEqual({
      server_0: { target_group_arn: "${aws_lb_target_group.app.arn}", target_id: "${aws_instance.server_0.id}", port: 80 },
      server_1: { target_group_arn: "${aws_lb_target_group.app.arn}", target_id: "${aws_instance.server_1.id}", port: 80 },
      server_2: { target_group_arn: "${aws_lb_target_group.app.arn}", target_id: "${aws_instance.server_2.id}", port: 80 },
    });
  });

  test("without a domain: one HTTP listener forwarding to the targets, no certificate, no DNS; url is the balancer", () => {
    expect(Object.keys(resources(plain, "aws_lb_listener"))).toEqual(["http"]);
    expect(plain).toHaveResourceWithProperties(LbListener, {
      load_balancer_arn: "${aws_lb.lb.arn}",
      port: 80,
      protocol: "HTTP",
      default_action: [{ type: "forward", target_group_arn: "${aws_lb_target_group.app.arn}" }],
    });
    expect(plain).not.toHaveResource(AcmCertificate);
    expect(plain).not.toHaveResource(AcmCertificateValidation);
    expect(plain).not.toHaveResource(Route53Record);
    const out = outputsOf(plain);
    expect(out.url).toBe("http://${aws_lb.lb.dns_name}");
    expect(out.lb_dns_name).toBe("${aws_lb.lb.dns_name}");
  });

  test("outputs: every instance's address in hosts, the first as public_ip, caddy_site :80", () => {
    const out = outputsOf(plain);
    expect(out.hosts).toEqual(["${aws_instance.server_0.public_ip}", "${aws_instance.server_1.public_ip}", "${aws_instance.server_2.public_ip}"]);
    expect(out.instance_ids).toEqual(["${aws_instance.server_0.id}", "${aws_instance.server_1.id}", "${aws_instance.server_2.id}"]);
    expect(out.public_ip).toBe("${aws_instance.server_0.public_ip}");
    expect(out.instance_id).toBe("${aws_instance.server_0.id}");
    expect(out.caddy_site).toBe(":80");
    expect(outputsOf(secure).caddy_site).toBe(":80"); // TLS ends at the balancer, whatever the domain
  });

  test("with a domain and zone: an ACM certificate validated through Route53, HTTPS on 443, 80 redirecting, an alias to the balancer", () => {
    expect(secure).toHaveResourceWithProperties(AcmCertificate, { domain_name: "hello.example.com", validation_method: "DNS", lifecycle: { create_before_destroy: true } });
    expect(resources(secure, "aws_route53_record").cert_validation).toEqual({
      zone_id: "Z0123456789ABCDEFGHIJ",
      name: "${tolist(aws_acm_certificate.cert.domain_validation_options).0.resource_record_name}",
      type: "${tolist(aws_acm_certificate.cert.domain_validation_options).0.resource_record_type}",
      records: ["${tolist(aws_acm_certificate.cert.domain_validation_options).0.resource_record_value}"],
      ttl: 60,
      allow_overwrite: true,
    });
    expect(resources(secure, "aws_acm_certificate_validation")).toEqual({
      cert: { certificate_arn: "${aws_acm_certificate.cert.arn}", validation_record_fqdns: ["${aws_route53_record.cert_validation.fqdn}"] },
    });
    const listeners = resources(secure, "aws_lb_listener");
    expect(Object.keys(listeners).sort()).toEqual(["http", "https"]);
    expect(listeners.https).toMatchObject({
      port: 443,
      protocol: "HTTPS",
      ssl_policy: "ELBSecurityPolicy-TLS13-1-2-2021-06",
      certificate_arn: "${aws_acm_certificate_validation.cert.certificate_arn}",
      default_action: [{ type: "forward", target_group_arn: "${aws_lb_target_group.app.arn}" }],
    });
    expect(listeners.http).toMatchObject({ port: 80, protocol: "HTTP", default_action: [{ type: "redirect", redirect: { port: "443", protocol: "HTTPS", status_code: "HTTP_301" } }] });
    expect(resources(secure, "aws_route53_record").dns).toEqual({
      zone_id: "Z0123456789ABCDEFGHIJ",
      name: "hello.example.com",
      type: "A",
      alias: { name: "${aws_lb.lb.dns_name}", zone_id: "${aws_lb.lb.zone_id}", evaluate_target_health: true },
    });
    expect(outputsOf(secure).url).toBe("https://hello.example.com");
  });

  test("a domain without a zone: no certificate (nothing could validate it), no record, HTTP forwarding; url http://domain", () => {
    const json = synth(props({ instances: 2, domain: "hello.example.com" }));
    expect(json).not.toHaveResource(AcmCertificate);
    expect(json).not.toHaveResource(Route53Record);
    expect(Object.keys(resources(json, "aws_lb_listener"))).toEqual(["http"]);
    expect(outputsOf(json).url).toBe("http://hello.example.com");
  });

  test("https: false with a zone: the alias record but no certificate, HTTP forwarding", () => {
    const json = synth(props({ instances: 2, domain: "hello.example.com", zoneId: "Z0123456789ABCDEFGHIJ", https: false }));
    expect(json).not.toHaveResource(AcmCertificate);
    expect(resources(json, "aws_route53_record").dns).toMatchObject({ alias: expect.objectContaining({ name: "${aws_lb.lb.dns_name}" }) });
    expect(resources(json, "aws_lb_listener").http).toMatchObject({ default_action: [{ type: "forward", target_group_arn: "${aws_lb_target_group.app.arn}" }] });
    expect(outputsOf(json).url).toBe("http://hello.example.com");
  });

  test("every taggable resource of the fleet carries app and managed-by", () => {
    expectTagged(secure);
  });

  test("growing 3 to 5 keeps the first three instances and their attachments; names never depend on the count beyond", () => {
    const five = addresses(synth(props({ instances: 5, domain: "hello.example.com", zoneId: "Z0123456789ABCDEFGHIJ" })));
    for (const a of addresses(secure)) expect(five).toContain(a);
    expect(five.filter((a) => !addresses(secure).includes(a))).toEqual([
      "aws_instance.server_3",
      "aws_instance.server_4",
      "aws_lb_target_group_attachment.server_3",
      "aws_lb_target_group_attachment.server_4",
    ]);
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
    expect(Object.values(resources(json, "aws_instance"))[0].lifecycle).toEqual({ ignore_changes: ["user_data", "key_name", 'tags["togo-caddy"]'] });
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
    expect(json).toHaveResourceWithProperties(Instance, { ami: "${data.aws_ami.ubuntu.id}", lifecycle: { ignore_changes: ["ami", "user_data", "key_name", 'tags["togo-caddy"]'] } });
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

  test("the Caddyfile only imports the site dir the deploy user owns: no site, port or upstream fixed at boot", () => {
    const expected = "# Written by togo (aws driver) at first boot; togo deploy writes the sites.\nimport /etc/caddy/togo.d/*.caddy\n";
    for (const p of [props(), props({ domain: "hello.example.com", zoneId: "Z0123456789ABCDEFGHIJ" }), props({ instances: 3 })]) {
      const file = (parse(cloudInit(p)) as Record<string, any>).write_files.find((f: { path: string }) => f.path === "/etc/caddy/Caddyfile");
      expect(file).toMatchObject({ defer: true, permissions: "0644", content: expected });
    }
  });

  test("the user data holds no app port, whatever app_port is (the deploy writes the upstream)", () => {
    const dir = tempDir("togo-aws-port-");
    writeFileSync(join(dir, "deploy.pub"), `${KEY}\n`);
    for (const instances of [1, 3]) {
      const spec = parseConfig(
        `app: hello\ndeploy:\n  provider: aws\n  region: eu-west-1\n  binary: server.js\n  run: node server.js\n  app_port: 45678\n  options:\n    public_key_file: deploy.pub\n    instances: ${instances}\n`,
        join(dir, "togo.yaml"),
        {},
      );
      const s = awsSettings(spec);
      expect(s.problems).toEqual([]);
      const json = synth({ projectDir: dir, ...s.props! });
      const datas = Object.values(resources(json, "aws_instance")).map((r) => r.user_data as string);
      expect(datas).toHaveLength(instances);
      for (const data of datas) {
        expect(data).toBe(datas[0]);
        expect(data).not.toContain("45678");
        expect(data).not.toContain("reverse_proxy");
      }
      expect(json).not.toContain("45678"); // nowhere in the stack: the load balancer targets Caddy on :80
    }
  });

  test("is the instance's user_data", () => {
    expect(synth(props())).toHaveResourceWithProperties(Instance, { user_data: cloudInit(props()) });
  });

  /** caddy adapt (and so validate) of the user data's Caddyfile with these site files in its directory. */
  async function adapt(files: Record<string, string>): Promise<{ exitCode: number; output: string; config?: any }> {
    const dir = tempDir("togo-caddy-");
    const sites = join(dir, "togo.d");
    mkdirSync(sites);
    for (const [name, text] of Object.entries(files)) writeFileSync(join(sites, name), text);
    writeFileSync(join(dir, "Caddyfile"), caddyfileText({ caddyDir: sites }));
    const r = await execa("caddy", ["adapt", "--config", join(dir, "Caddyfile"), "--adapter", "caddyfile", "--validate"], {
      reject: false,
      env: { XDG_CONFIG_HOME: dir, XDG_DATA_HOME: dir, HOME: dir },
    });
    return r.exitCode === 0 ? { exitCode: 0, output: "", config: JSON.parse(String(r.stdout)) } : { exitCode: r.exitCode ?? 1, output: String(r.stderr) };
  }

  test("Caddy accepts the Caddyfile before any deploy (no sites yet): it serves nothing", async () => {
    const r = await adapt({});
    expect({ exitCode: r.exitCode, output: r.output }).toEqual({ exitCode: 0, output: "" });
    expect(r.config.apps?.http).toBeUndefined();
  });

  test("with the domain site the deploy writes for one instance with a domain", async () => {
    const site = renderSite({ app: "hello", domain: "hello.example.com", port: 3000, https: true, healthPath: "/up" });
    const r = await adapt({ "hello.caddy": site });
    expect({ exitCode: r.exitCode, output: r.output }).toEqual({ exitCode: 0, output: "" });
    expect(JSON.stringify(r.config)).toContain('"host":["hello.example.com"]');
  });

  test.each([true, false])("with the :80 site the deploy writes behind the balancer (https: %s): port 80, any Host, to the app's port", async (https) => {
    const site = renderSite({ app: "hello", domain: ANY_HOST_SITE, port: 3456, https, healthPath: "/up" });
    const r = await adapt({ "hello.caddy": site });
    expect({ exitCode: r.exitCode, output: r.output }).toEqual({ exitCode: 0, output: "" });
    const servers = Object.values(r.config.apps.http.servers) as { listen: string[]; routes: { match?: unknown }[] }[];
    expect(servers).toHaveLength(1);
    expect(servers[0].listen).toEqual([":80"]);
    // No host matcher anywhere: the balancer's Host (the domain) and its health checks (the IP) both match.
    expect(servers[0].routes.every((route) => route.match === undefined)).toBe(true);
    expect(JSON.stringify(servers[0])).toContain('"dial":"127.0.0.1:3456"');
  });

  test("an instance made by an earlier togo (its Caddyfile serves :80 itself) cannot take a :80 site: why caddy_site is empty there", async () => {
    const dir = tempDir("togo-caddy-old-");
    const sites = join(dir, "togo.d");
    mkdirSync(sites);
    writeFileSync(join(sites, "hello.caddy"), renderSite({ app: "hello", domain: ANY_HOST_SITE, port: 3000, https: true, healthPath: "/up" }));
    writeFileSync(join(dir, "Caddyfile"), `# Written by togo (aws driver) at first boot.\nimport ${sites}/*.caddy\n\n:80 {\n\treverse_proxy 127.0.0.1:3000\n}\n`);
    const r = await execa("caddy", ["adapt", "--config", join(dir, "Caddyfile"), "--adapter", "caddyfile"], { reject: false, env: { XDG_CONFIG_HOME: dir, XDG_DATA_HOME: dir, HOME: dir } });
    expect(r.exitCode).toBe(1);
    expect(String(r.stderr)).toContain("ambiguous site definition: :80");
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
      caddyDir: "/etc/caddy/togo.d",
      caddyfile: "/etc/caddy/Caddyfile",
      https: true,
      volumeSize: 20,
      instances: 1,
      availabilityZones: ["eu-west-1a", "eu-west-1b"],
      healthPath: "/up",
      providerOverrides: {},
    });
  });

  test("a fleet: instances, the zones named (else the region's a and b), the health check path", () => {
    const named = awsSettings(spec("  healthcheck: { path: /healthz }\n  options:\n    public_key_file: deploy.pub\n    ssh_cidrs: [203.0.113.0/24]\n    instances: 3\n    availability_zones: [eu-west-1c, eu-west-1a]\n"));
    expect(named.problems).toEqual([]);
    expect(named.warnings).toEqual([]);
    expect(named.props).toMatchObject({ instances: 3, availabilityZones: ["eu-west-1c", "eu-west-1a"], healthPath: "/healthz" });
    const byRegion = awsSettings(
      parseConfig("app: hello\ndeploy:\n  provider: aws\n  region: us-east-2\n  binary: server.js\n  run: node server.js\n  options:\n    public_key_file: deploy.pub\n    ssh_cidrs: [203.0.113.0/24]\n    instances: 20\n", join(dir, "togo.yaml"), {}),
    );
    expect(byRegion.problems).toEqual([]);
    expect(byRegion.props).toMatchObject({ instances: 20, availabilityZones: ["us-east-2a", "us-east-2b"] });
  });

  test("a fleet with a domain and no zone: a warning that it serves HTTP only and where to point the domain", () => {
    const s = awsSettings(spec("  domain: hello.example.com\n  options:\n    public_key_file: deploy.pub\n    ssh_cidrs: [203.0.113.0/24]\n    instances: 2\n"));
    expect(s.problems).toEqual([]);
    expect(s.warnings).toEqual([
      "deploy.domain is hello.example.com but deploy.options.zone_id is not set: no DNS record and no certificate are made, so the load balancer serves HTTP only; point hello.example.com at the lb_dns_name output yourself, or set zone_id for HTTPS",
    ]);
  });

  test("deploy.host and deploy.hosts: allowed, each with a warning that the stack's instances are the targets", () => {
    const s = awsSettings(spec("  hosts: [198.51.100.1, 198.51.100.2]\n  options:\n    public_key_file: deploy.pub\n    ssh_cidrs: [203.0.113.0/24]\n"));
    expect(s.problems).toEqual([]);
    expect(s.warnings).toEqual(["deploy.hosts is ignored by the aws driver: it deploys to the instances its stack made (output hosts); set deploy.options.instances for more than one"]);
    expect(awsSettings(spec("  host: 198.51.100.1\n  options:\n    public_key_file: deploy.pub\n    ssh_cidrs: [203.0.113.0/24]\n")).warnings).toEqual([
      "deploy.host (198.51.100.1) is ignored by the aws driver: it deploys to the instances its stack made (output hosts)",
    ]);
  });

  test("availability_zones with one instance: allowed, with a warning that it is not used", () => {
    const s = awsSettings(spec("  options:\n    public_key_file: deploy.pub\n    ssh_cidrs: [203.0.113.0/24]\n    availability_zones: [eu-west-1a, eu-west-1b]\n"));
    expect(s.problems).toEqual([]);
    expect(s.warnings).toEqual(["deploy.options.availability_zones is used only with deploy.options.instances above 1 (one instance keeps its subnet where AWS put it)"]);
  });

  test.each<[string, string, unknown]>([
    ["0", "0", 0],
    ["21", "21", 21],
    ["a quoted number", '"3"', "3"],
    ["a fraction", "2.5", 2.5],
    ["a negative", "-1", -1],
    ["a word", "many", "many"],
  ])("instances refused: %s, naming the key, the value and the range", (_name, written, value) => {
    const found = problems(`  options:\n    public_key_file: deploy.pub\n    instances: ${written}\n`);
    expect(found).toEqual([
      { path: "deploy.options.instances", value, expected: "expected the number of instances: a whole number from 1 to 20 (more than 1 puts them behind a load balancer)" },
    ]);
  });

  test.each<[string, string, string, string]>([
    ["one zone", "[eu-west-1a]", "deploy.options.availability_zones", "two different availability zones"],
    ["three zones", "[eu-west-1a, eu-west-1b, eu-west-1c]", "deploy.options.availability_zones", "two different availability zones"],
    ["the same zone twice", "[eu-west-1a, eu-west-1a]", "deploy.options.availability_zones", "two different availability zones"],
    ["not a zone", "[eu-west-1a, west]", "deploy.options.availability_zones.1", "two different availability zones"],
    ["a region, not a zone", "[eu-west-1, eu-west-1a]", "deploy.options.availability_zones.0", "two different availability zones"],
    ["another region's zone", "[eu-west-1a, us-east-1b]", "deploy.options.availability_zones.1", "is not a zone of deploy.region (eu-west-1); name zones such as eu-west-1a"],
  ])("availability_zones refused: %s", (_name, zones, path, fragment) => {
    const found = problems(`  options:\n    public_key_file: deploy.pub\n    instances: 2\n    availability_zones: ${zones}\n`);
    expect(found.map((p) => p.path)).toEqual([path]);
    expect(found[0].expected).toContain(fragment);
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

describe("aws driver: targets and the Caddy site from the stack's outputs", () => {
  const spec = parseConfig("app: hello\ndeploy:\n  provider: aws\n  region: eu-west-1\n  binary: server.js\n  run: node server.js\n  port: 2222\n", "/tmp/project/togo.yaml", {});

  test("one target per instance of the hosts output, all with the stack's user and url", () => {
    const out = { hosts: ["198.51.100.1", "198.51.100.2", "198.51.100.3"], public_ip: "198.51.100.1", ssh_user: "deploy", url: "https://hello.example.com" };
    const targets = targetsFromOutputs(spec, out);
    expect(targets.map((t) => t.host)).toEqual(["198.51.100.1", "198.51.100.2", "198.51.100.3"]);
    for (const t of targets) expect(t).toMatchObject({ user: "deploy", port: 2222, appDir: "~/apps/hello", url: "https://hello.example.com" });
  });

  test("a stack applied before the hosts output: the public_ip; never applied: none", () => {
    expect(targetsFromOutputs(spec, { public_ip: "198.51.100.9", ssh_user: "deploy", url: "http://198.51.100.9" }).map((t) => t.host)).toEqual(["198.51.100.9"]);
    expect(targetsFromOutputs(spec, {})).toEqual([]);
    // An empty list (never written by the stack) says nothing: the public_ip.
    expect(targetsFromOutputs(spec, { hosts: [], public_ip: "198.51.100.9" }).map((t) => t.host)).toEqual(["198.51.100.9"]);
  });

  test("a hosts list with an instance without an address is an error naming it, never a smaller fleet", () => {
    const out = { hosts: ["198.51.100.1", "", null], instance_ids: ["i-0a", "i-0b", "i-0c"], public_ip: "198.51.100.1", ssh_user: "deploy" };
    expect(() => targetsFromOutputs(spec, out)).toThrow(
      new OperationError("the stack's hosts output has no address for i-0b, i-0c (2 of 3 instances); run togo provision to bring the outputs up to date"),
    );
    expect(() => targetsFromOutputs(spec, { hosts: ["198.51.100.1", ""] })).toThrow("no address for #1 (1 of 2 instances)");
  });

  test("the site the shipping writes: the caddy_site output as its domain; empty: none; absent: the Spec as it was", () => {
    const withDomain = { ...spec, domain: "hello.example.com" };
    expect(siteSpec(withDomain, { caddy_site: ":80" }).domain).toBe(":80");
    expect(siteSpec(spec, { caddy_site: ":80" }).domain).toBe(":80");
    expect(siteSpec(withDomain, { caddy_site: "hello.example.com" }).domain).toBe("hello.example.com");
    expect(siteSpec(spec, { caddy_site: "" })).not.toHaveProperty("domain");
    expect(siteSpec(withDomain, {})).toBe(withDomain);
    expect(siteSpec(spec, {})).toBe(spec);
    // Nothing else changes.
    const { domain: _d, ...rest } = siteSpec(withDomain, { caddy_site: ":80" });
    const { domain: _e, ...before } = withDomain;
    expect(rest).toEqual(before);
  });
});
