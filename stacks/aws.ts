// The aws driver's stack: a small, self-contained footprint for one app: its own VPC with public
// subnets, security groups (SSH from chosen CIDRs, HTTP/HTTPS from anywhere), instances that
// cloud-init turns into deploy targets (deploy user, app dir, Caddy reading the site files togo's
// deploy writes), and in front of them either
// - one instance: an Elastic IP and, with a domain and a Route53 zone, an A record to it (Caddy on the
//   instance gets the certificate); or
// - a fleet (`instances` > 1, spread over two availability zones): an Application Load Balancer with
//   a target group health-checking every instance, and with a domain and a zone an ACM certificate
//   validated through Route53, HTTPS on 443 (80 redirects) and an alias record to the balancer.
// Nothing is looked up except the AMI when none is given (the zones are named, not looked up), so a
// plan needs no account to read from. There is no EC2 key pair: the deploy key is the deploy user's
// alone (see the instance).
import { TerraformOutput, TerraformStack } from "cdktf";
import type { Construct } from "constructs";
// Deep imports only: the provider's barrel costs seconds and hundreds of MB.
import { AcmCertificate } from "@cdktf/provider-aws/lib/acm-certificate/index.js";
import { AcmCertificateValidation } from "@cdktf/provider-aws/lib/acm-certificate-validation/index.js";
import { DataAwsAmi } from "@cdktf/provider-aws/lib/data-aws-ami/index.js";
import { Eip } from "@cdktf/provider-aws/lib/eip/index.js";
import { Instance } from "@cdktf/provider-aws/lib/instance/index.js";
import { InternetGateway } from "@cdktf/provider-aws/lib/internet-gateway/index.js";
import { Lb } from "@cdktf/provider-aws/lib/lb/index.js";
import { LbListener } from "@cdktf/provider-aws/lib/lb-listener/index.js";
import { LbTargetGroup } from "@cdktf/provider-aws/lib/lb-target-group/index.js";
import { LbTargetGroupAttachment } from "@cdktf/provider-aws/lib/lb-target-group-attachment/index.js";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider/index.js";
import { Route53Record } from "@cdktf/provider-aws/lib/route53-record/index.js";
import { RouteTable } from "@cdktf/provider-aws/lib/route-table/index.js";
import { RouteTableAssociation } from "@cdktf/provider-aws/lib/route-table-association/index.js";
import { SecurityGroup } from "@cdktf/provider-aws/lib/security-group/index.js";
import { Subnet } from "@cdktf/provider-aws/lib/subnet/index.js";
import { Vpc } from "@cdktf/provider-aws/lib/vpc/index.js";
import { VpcSecurityGroupEgressRule } from "@cdktf/provider-aws/lib/vpc-security-group-egress-rule/index.js";
import { VpcSecurityGroupIngressRule } from "@cdktf/provider-aws/lib/vpc-security-group-ingress-rule/index.js";
import { stringify } from "yaml";
import { applyBackend, type BackendProps } from "./backend.js";

export interface AwsStackProps extends BackendProps {
  app: string;
  region: string;
  instanceType: string;
  /** An explicit AMI; without it the newest Ubuntu 24.04 LTS image is looked up (the only data source). */
  ami?: string;
  /** IPv4 CIDRs allowed to reach SSH. */
  sshCidrs: string[];
  /** The OpenSSH public key (one line). Public by nature; the private key never comes here. */
  publicKey: string;
  /** The unprivileged user cloud-init makes and togo deploys as. */
  sshUser: string;
  /** Absolute app directory on the instance. */
  appDir: string;
  /** The site directory togo's deploy writes Caddy sites to (owned by the deploy user), and the main Caddyfile. */
  caddyDir: string;
  caddyfile: string;
  /** false when TLS ends in front of Caddy (one instance) or the balancer gets no certificate (a fleet): the domain's URL is then http://. */
  https: boolean;
  /** Root volume size in GiB. */
  volumeSize: number;
  domain?: string;
  /** Route53 hosted zone for `domain`'s record (and, for a fleet, the certificate's validation record). */
  zoneId?: string;
  /** How many instances: 1 is a single server with an Elastic IP; more sit behind a load balancer. */
  instances: number;
  /** The two availability zones a fleet is spread over (not used with one instance). */
  availabilityZones: [string, string];
  /** The path the load balancer health-checks on every instance (the app's healthcheck.path). */
  healthPath: string;
  /** Extra aws provider attributes, as written (endpoints, skip_* flags, max_retries, profile...). */
  providerOverrides: Record<string, unknown>;
}

export const VPC_CIDR = "10.42.0.0/16";
export const SUBNET_CIDR = "10.42.1.0/24";
/** A fleet's second public subnet, in the second availability zone. */
export const SUBNET_B_CIDR = "10.42.2.0/24";
/**
 * The Caddy site address an instance serves when nothing in front of it names a host: plain HTTP on
 * port 80 for any Host (behind the load balancer, which forwards the client's Host and health-checks
 * by the instance's IP; or one instance without a domain, reached by its IP).
 */
export const ANY_HOST_SITE = ":80";
/**
 * A tag set on an instance at creation, never changed later: its cloud-init wrote a Caddyfile that
 * only imports togo's site files. Instances made by an earlier togo have a Caddyfile with its own
 * `:80` block instead, next to which a `:80` site would be ambiguous; their tag stays absent.
 */
export const CADDY_LAYOUT_TAG = "togo-caddy";
export const CADDY_LAYOUT = "sites";
/** What the load balancer counts as healthy (a redirect still means the app answered). */
export const HEALTH_MATCHER = "200-399";
/** TLS 1.3 and 1.2 only: AWS's recommended policy for an HTTPS listener. */
export const TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06";
/** Canonical's account: the owner of the official Ubuntu images. */
export const UBUNTU_OWNER = "099720109477";

/** Graviton (arm64) instance families: a1, and those with `g` after the generation (t4g, m7gd, c6gn). */
export function architectureOf(instanceType: string): "arm64" | "x86_64" {
  const family = instanceType.split(".")[0];
  return family === "a1" || /^[a-z]+\d+[a-z]*g[a-z]*$/.test(family.replace(/-.*/, "")) ? "arm64" : "x86_64";
}

export function ubuntuImageName(instanceType: string): string {
  const arch = architectureOf(instanceType) === "arm64" ? "arm64" : "amd64";
  return `ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-${arch}-server-*`;
}

/** The directories from the user's home down to the app dir, which the deploy user must own. */
export function ownedDirs(appDir: string, home: string): string[] {
  if (!appDir.startsWith(`${home}/`)) return [appDir];
  const parts = appDir.slice(home.length + 1).split("/").filter(Boolean);
  return parts.map((_, i) => `${home}/${parts.slice(0, i + 1).join("/")}`);
}

/**
 * The main Caddyfile: nothing but the site files togo's deploy writes into the directory the deploy
 * user owns (the vps scheme). No site, port or upstream is fixed at boot: the deploy writes the
 * app's site (its domain, or :80 for any Host) with the app's port, and reloads Caddy through its
 * local admin endpoint as the deploy user, as on a vps.
 */
export function caddyfileText(props: Pick<AwsStackProps, "caddyDir">): string {
  const lines = ["# Written by togo (aws driver) at first boot; togo deploy writes the sites.", `import ${props.caddyDir.replace(/\/+$/, "")}/*.caddy`];
  return `${lines.join("\n")}\n`;
}

/**
 * cloud-init user data: everything the vps shipping expects of a host, done once as root at first
 * boot: the deploy user (key-only, no sudo: it needs none), lingering for its systemd user units,
 * the app directory, rsync and Caddy (Ubuntu's package) with a site directory the deploy user owns.
 * The image's default user is still made (the image's own tooling expects it) but gets no key: the
 * public key is in the deploy user's authorized_keys only.
 * Assumes a Debian-family image (the default Ubuntu one, or an explicit AMI like it).
 */
export function cloudInit(props: Pick<AwsStackProps, "sshUser" | "publicKey" | "appDir" | "caddyDir" | "caddyfile">): string {
  const user = props.sshUser;
  const config = {
    package_update: true,
    packages: ["caddy", "rsync"],
    users: [
      "default",
      { name: user, gecos: "togo deploy user", shell: "/bin/bash", lock_passwd: true, ssh_authorized_keys: [props.publicKey] },
    ],
    write_files: [
      // Deferred: written after the caddy package has put its own default Caddyfile there.
      { path: props.caddyfile, content: caddyfileText(props), permissions: "0644", defer: true },
    ],
    runcmd: [
      ["mkdir", "-p", props.appDir, props.caddyDir],
      ["chown", `${user}:${user}`, ...ownedDirs(props.appDir, `/home/${user}`), props.caddyDir],
      ["chmod", "0750", props.appDir],
      ["loginctl", "enable-linger", user],
      ["systemctl", "enable", "caddy"],
      ["systemctl", "restart", "caddy"],
    ],
  };
  return `#cloud-config\n${stringify(config, { lineWidth: 0 })}`;
}

/** The resource id of instance `i`: `server` alone, `server_0`… in a fleet (so going from one to many makes every instance anew). */
export function serverId(instances: number, i: number): string {
  return instances === 1 ? "server" : `server_${i}`;
}

export class AwsStack extends TerraformStack {
  constructor(scope: Construct, name: string, props: AwsStackProps) {
    super(scope, name);
    applyBackend(this, name, props);
    const fleet = props.instances > 1;

    const provider = new AwsProvider(this, "aws", { region: props.region });
    // Raw attributes as the user wrote them (e.g. `endpoints` for LocalStack, skip_* flags offline).
    for (const [k, v] of Object.entries(props.providerOverrides)) provider.addOverride(k, v);

    const tags = (what: string) => ({ Name: `${props.app}-${what}`, app: props.app, "managed-by": "togo" });

    const vpc = new Vpc(this, "vpc", { cidrBlock: VPC_CIDR, enableDnsHostnames: true, enableDnsSupport: true, tags: tags("vpc") });
    const gateway = new InternetGateway(this, "gateway", { vpcId: vpc.id, tags: tags("gateway") });
    const routes = new RouteTable(this, "routes", {
      vpcId: vpc.id,
      route: [{ cidrBlock: "0.0.0.0/0", gatewayId: gateway.id }],
      tags: tags("public"),
    });
    // One instance: one subnet wherever AWS puts it (as always: pinning it now would replace it and
    // the server). A fleet: two subnets in the two named zones (a load balancer needs two).
    const layout: { id: string; routes: string; cidr: string; zone?: string; name: string }[] = fleet
      ? [
          { id: "subnet", routes: "public_routes", cidr: SUBNET_CIDR, zone: props.availabilityZones[0], name: "public" },
          { id: "subnet_b", routes: "public_routes_b", cidr: SUBNET_B_CIDR, zone: props.availabilityZones[1], name: "public-b" },
        ]
      : [{ id: "subnet", routes: "public_routes", cidr: SUBNET_CIDR, name: "public" }];
    const subnets = layout.map((l) => {
      const subnet = new Subnet(this, l.id, {
        vpcId: vpc.id,
        cidrBlock: l.cidr,
        ...(l.zone ? { availabilityZone: l.zone } : {}),
        // Instances need the internet at first boot (packages), before any Elastic IP is attached;
        // a fleet's instances keep these addresses (deploys reach them over SSH).
        mapPublicIpOnLaunch: true,
        tags: tags(l.name),
      });
      new RouteTableAssociation(this, l.routes, { subnetId: subnet.id, routeTableId: routes.id });
      return subnet;
    });

    const firewall = new SecurityGroup(this, "firewall", {
      name: `${props.app}-togo`,
      description: fleet
        ? `togo: ${props.app} (SSH from chosen networks, HTTP from its load balancer)`
        : `togo: ${props.app} (SSH from chosen networks, HTTP and HTTPS from anywhere)`,
      vpcId: vpc.id,
      tags: tags("firewall"),
    });
    // One rule resource per CIDR (the provider's advice over inline rules), named by the CIDR so
    // adding or removing one leaves the others' addresses, and so their rules, untouched.
    for (const cidr of props.sshCidrs) {
      const id = `ssh_${cidr.replace(/[./]/g, "_")}`;
      new VpcSecurityGroupIngressRule(this, id, {
        securityGroupId: firewall.id,
        description: "SSH (togo deploys)",
        ipProtocol: "tcp",
        fromPort: 22,
        toPort: 22,
        cidrIpv4: cidr,
        tags: tags(id.replace(/_/g, "-")),
      });
    }
    new VpcSecurityGroupEgressRule(this, "egress", {
      securityGroupId: firewall.id,
      description: "all outbound (packages, ACME, the app's own calls)",
      ipProtocol: "-1",
      cidrIpv4: "0.0.0.0/0",
      tags: tags("egress"),
    });
    // The load balancer's group, in front of a fleet; the instances then take HTTP from it alone.
    const lbFirewall = fleet
      ? new SecurityGroup(this, "lb_firewall", {
          name: `${props.app}-togo-lb`,
          description: `togo: ${props.app} load balancer (HTTP and HTTPS from anywhere)`,
          vpcId: vpc.id,
          tags: tags("lb-firewall"),
        })
      : undefined;
    for (const [id, port] of [["http", 80], ["https", 443]] as const) {
      new VpcSecurityGroupIngressRule(this, lbFirewall ? `lb_${id}` : id, {
        securityGroupId: (lbFirewall ?? firewall).id,
        description: id.toUpperCase(),
        ipProtocol: "tcp",
        fromPort: port,
        toPort: port,
        cidrIpv4: "0.0.0.0/0",
        tags: tags(lbFirewall ? `lb-${id}` : id),
      });
    }
    if (lbFirewall) {
      new VpcSecurityGroupIngressRule(this, "http_from_lb", {
        securityGroupId: firewall.id,
        description: "HTTP from the load balancer (traffic and health checks)",
        ipProtocol: "tcp",
        fromPort: 80,
        toPort: 80,
        referencedSecurityGroupId: lbFirewall.id,
        tags: tags("http-from-lb"),
      });
      new VpcSecurityGroupEgressRule(this, "lb_to_servers", {
        securityGroupId: lbFirewall.id,
        description: "HTTP to the instances (traffic and health checks)",
        ipProtocol: "tcp",
        fromPort: 80,
        toPort: 80,
        referencedSecurityGroupId: firewall.id,
        tags: tags("lb-to-servers"),
      });
    }

    const ami =
      props.ami ??
      new DataAwsAmi(this, "ubuntu", {
        mostRecent: true,
        owners: [UBUNTU_OWNER],
        filter: [
          { name: "name", values: [ubuntuImageName(props.instanceType)] },
          { name: "virtualization-type", values: ["hvm"] },
          { name: "architecture", values: [architectureOf(props.instanceType)] },
        ],
      }).id;

    const userData = cloudInit(props);
    const servers = Array.from({ length: props.instances }, (_, i) => {
      const id = serverId(props.instances, i);
      return new Instance(this, id, {
        ami,
        instanceType: props.instanceType,
        // A fleet alternates between the two zones.
        subnetId: subnets[i % subnets.length].id,
        vpcSecurityGroupIds: [firewall.id],
        // No key_name: EC2 would install that key for the image's default user (ubuntu, passwordless
        // sudo), making the deploy key, often a CI secret, a root key. cloud-init gives it to the
        // key-only, sudo-less deploy user alone.
        userData,
        metadataOptions: { httpTokens: "required", httpEndpoint: "enabled" },
        rootBlockDevice: { volumeType: "gp3", volumeSize: props.volumeSize, encrypted: true, tags: tags("root") },
        tags: { ...tags(fleet ? `server-${i}` : "server"), [CADDY_LAYOUT_TAG]: CADDY_LAYOUT },
        lifecycle: {
          // cloud-init runs once per instance, so a changed user_data would only stop and start the
          // server; and a looked-up AMI moves with every Ubuntu release: following it would replace it.
          // key_name: a server made when the stack still attached a key pair is not replaced for it.
          // The layout tag says what the first boot wrote, so it is never added to an older server.
          ignoreChanges: [...(props.ami ? [] : ["ami"]), "user_data", "key_name", `tags["${CADDY_LAYOUT_TAG}"]`],
        },
      });
    });

    const scheme = props.https ? "https" : "http";
    let url: string;
    let publicIp: string;
    let caddySite: string;
    if (!fleet) {
      const [server] = servers;
      const address = new Eip(this, "address", { domain: "vpc", instance: server.id, tags: tags("ip"), dependsOn: [gateway] });
      if (props.domain && props.zoneId) {
        new Route53Record(this, "dns", { zoneId: props.zoneId, name: props.domain, type: "A", ttl: 300, records: [address.publicIp] });
      }
      publicIp = address.publicIp;
      url = props.domain ? `${scheme}://${props.domain}` : `http://${address.publicIp}`;
      // With a domain, Caddy serves it (and gets its certificate). Without one, :80 for any Host,
      // but only on a server whose Caddyfile leaves :80 to togo's site files (see CADDY_LAYOUT_TAG):
      // an older one serves :80 from its own Caddyfile, and "" tells the deploy to write no site.
      // (Written out: cdktf renders Fn.lookup on a map as an index, which fails on a missing key.)
      caddySite =
        props.domain ?? `\${lookup(aws_instance.${serverId(1, 0)}.tags, "${CADDY_LAYOUT_TAG}", "") == "${CADDY_LAYOUT}" ? "${ANY_HOST_SITE}" : ""}`;
    } else {
      const lb = this.balancer(props, servers, subnets, lbFirewall!, vpc, tags);
      publicIp = servers[0].publicIp;
      url = props.domain ? `${lb.certified ? "https" : "http"}://${props.domain}` : `http://${lb.dnsName}`;
      // TLS ends at the balancer; every instance answers plain HTTP on :80 whatever the Host.
      caddySite = ANY_HOST_SITE;
      new TerraformOutput(this, "lb_dns_name", { value: lb.dnsName });
    }

    new TerraformOutput(this, "public_ip", { value: publicIp });
    new TerraformOutput(this, "instance_id", { value: servers[0].id });
    new TerraformOutput(this, "hosts", { value: fleet ? servers.map((s) => s.publicIp) : [publicIp] });
    new TerraformOutput(this, "instance_ids", { value: servers.map((s) => s.id) });
    new TerraformOutput(this, "ssh_user", { value: props.sshUser });
    new TerraformOutput(this, "url", { value: url });
    new TerraformOutput(this, "caddy_site", { value: caddySite });
    new TerraformOutput(this, "region", { value: props.region });
  }

  /**
   * The Application Load Balancer in front of a fleet: a target group health-checking each instance
   * on :80 (Caddy, which proxies to the app), one attachment per instance, an HTTP listener and, with
   * a domain, a Route53 zone and `https`, an ACM certificate validated through that zone, an HTTPS
   * listener with it and the HTTP listener redirecting there. With a domain and a zone, the domain
   * is an alias of the balancer.
   */
  private balancer(
    props: AwsStackProps,
    servers: Instance[],
    subnets: Subnet[],
    lbFirewall: SecurityGroup,
    vpc: Vpc,
    tags: (what: string) => Record<string, string>,
  ): { dnsName: string; certified: boolean } {
    // Generated names (a prefix and a unique suffix): load balancer and target group names are
    // unique per account and region, and another stage of the same app may live there too.
    const lb = new Lb(this, "lb", {
      namePrefix: "togo-",
      loadBalancerType: "application",
      internal: false,
      securityGroups: [lbFirewall.id],
      subnets: subnets.map((s) => s.id),
      dropInvalidHeaderFields: true,
      tags: tags("lb"),
    });
    const group = new LbTargetGroup(this, "app", {
      namePrefix: "togo-",
      port: 80,
      protocol: "HTTP",
      targetType: "instance",
      vpcId: vpc.id,
      deregistrationDelay: "30",
      healthCheck: {
        enabled: true,
        protocol: "HTTP",
        port: "traffic-port",
        path: props.healthPath,
        matcher: HEALTH_MATCHER,
        interval: 10,
        timeout: 5,
        healthyThreshold: 2,
        unhealthyThreshold: 3,
      },
      tags: tags("targets"),
      // A replaced group must exist before the listener lets go of the old one.
      lifecycle: { createBeforeDestroy: true },
    });
    // Construct ids are unique across types; terraform's addresses need not be: the attachment of
    // aws_instance.server_0 is aws_lb_target_group_attachment.server_0.
    servers.forEach((server, i) => {
      new LbTargetGroupAttachment(this, `attach_server_${i}`, { targetGroupArn: group.arn, targetId: server.id, port: 80 }).overrideLogicalId(`server_${i}`);
    });

    const forward = { type: "forward", targetGroupArn: group.arn };
    const certified = Boolean(props.domain && props.zoneId && props.https);
    if (certified) {
      const cert = new AcmCertificate(this, "cert", {
        domainName: props.domain!,
        validationMethod: "DNS",
        tags: tags("cert"),
        lifecycle: { createBeforeDestroy: true },
      });
      // One domain, so one validation record.
      const option = cert.domainValidationOptions.get(0);
      const record = new Route53Record(this, "cert_validation", {
        zoneId: props.zoneId!,
        name: option.resourceRecordName,
        type: option.resourceRecordType,
        records: [option.resourceRecordValue],
        ttl: 60,
        allowOverwrite: true,
      });
      const validation = new AcmCertificateValidation(this, "cert_validated", { certificateArn: cert.arn, validationRecordFqdns: [record.fqdn] });
      validation.overrideLogicalId("cert");
      new LbListener(this, "https", {
        loadBalancerArn: lb.arn,
        port: 443,
        protocol: "HTTPS",
        sslPolicy: TLS_POLICY,
        // The validated certificate's ARN: the listener waits for validation.
        certificateArn: validation.certificateArn,
        defaultAction: [forward],
        tags: tags("https"),
      });
    }
    new LbListener(this, "http", {
      loadBalancerArn: lb.arn,
      port: 80,
      protocol: "HTTP",
      defaultAction: [certified ? { type: "redirect", redirect: { port: "443", protocol: "HTTPS", statusCode: "HTTP_301" } } : forward],
      tags: tags("http"),
    });
    if (props.domain && props.zoneId) {
      new Route53Record(this, "dns", {
        zoneId: props.zoneId,
        name: props.domain,
        type: "A",
        alias: { name: lb.dnsName, zoneId: lb.zoneId, evaluateTargetHealth: true },
      });
    }
    return { dnsName: lb.dnsName, certified };
  }
}

export function defineAwsStack(app: object, name: string, props: AwsStackProps): void {
  new AwsStack(app as Construct, name, props);
}
