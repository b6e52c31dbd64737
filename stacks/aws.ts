// The aws driver's stack: a small, self-contained footprint for one app: its own VPC with one public
// subnet, a security group (SSH from chosen CIDRs, HTTP/HTTPS from anywhere), one instance that
// cloud-init turns into a deploy target (deploy user, app dir, Caddy), an Elastic IP and, with a
// domain and a Route53 zone, an A record. Nothing is looked up except the AMI when none is given, so
// a plan needs no account to read from. There is no EC2 key pair: the deploy key is the deploy
// user's alone (see the instance).
import { TerraformOutput, TerraformStack } from "cdktf";
import type { Construct } from "constructs";
// Deep imports only: the provider's barrel costs seconds and hundreds of MB.
import { DataAwsAmi } from "@cdktf/provider-aws/lib/data-aws-ami/index.js";
import { Eip } from "@cdktf/provider-aws/lib/eip/index.js";
import { Instance } from "@cdktf/provider-aws/lib/instance/index.js";
import { InternetGateway } from "@cdktf/provider-aws/lib/internet-gateway/index.js";
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
  /** The port the app listens on; Caddy's :80 fallback proxies to it when there is no domain. */
  appPort: number;
  /** The site directory the vps shipping writes Caddy sites to (owned by the deploy user), and the main Caddyfile. */
  caddyDir: string;
  caddyfile: string;
  /** false when TLS ends in front of Caddy: the domain's URL is then http://. */
  https: boolean;
  /** Root volume size in GiB. */
  volumeSize: number;
  domain?: string;
  /** Route53 hosted zone for `domain`'s A record. */
  zoneId?: string;
  /** Extra aws provider attributes, as written (endpoints, skip_* flags, max_retries, profile...). */
  providerOverrides: Record<string, unknown>;
}

export const VPC_CIDR = "10.42.0.0/16";
export const SUBNET_CIDR = "10.42.1.0/24";
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
 * The main Caddyfile: the site files the vps shipping writes (one per app, for `domain`) and,
 * without a domain, a plain-HTTP fallback on :80 to the app so the server's IP answers.
 */
export function caddyfileText(props: Pick<AwsStackProps, "caddyDir" | "appPort" | "domain">): string {
  const lines = ["# Written by togo (aws driver) at first boot.", `import ${props.caddyDir.replace(/\/+$/, "")}/*.caddy`];
  if (!props.domain) lines.push("", ":80 {", `\treverse_proxy 127.0.0.1:${props.appPort}`, "}");
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
export function cloudInit(props: Pick<AwsStackProps, "sshUser" | "publicKey" | "appDir" | "caddyDir" | "caddyfile" | "appPort" | "domain">): string {
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

export class AwsStack extends TerraformStack {
  constructor(scope: Construct, name: string, props: AwsStackProps) {
    super(scope, name);
    applyBackend(this, name, props);

    const provider = new AwsProvider(this, "aws", { region: props.region });
    // Raw attributes as the user wrote them (e.g. `endpoints` for LocalStack, skip_* flags offline).
    for (const [k, v] of Object.entries(props.providerOverrides)) provider.addOverride(k, v);

    const tags = (what: string) => ({ Name: `${props.app}-${what}`, app: props.app, "managed-by": "togo" });

    const vpc = new Vpc(this, "vpc", { cidrBlock: VPC_CIDR, enableDnsHostnames: true, enableDnsSupport: true, tags: tags("vpc") });
    const subnet = new Subnet(this, "subnet", {
      vpcId: vpc.id,
      cidrBlock: SUBNET_CIDR,
      // The instance needs the internet at first boot (packages) before the Elastic IP is attached.
      mapPublicIpOnLaunch: true,
      tags: tags("public"),
    });
    const gateway = new InternetGateway(this, "gateway", { vpcId: vpc.id, tags: tags("gateway") });
    const routes = new RouteTable(this, "routes", {
      vpcId: vpc.id,
      route: [{ cidrBlock: "0.0.0.0/0", gatewayId: gateway.id }],
      tags: tags("public"),
    });
    new RouteTableAssociation(this, "public_routes", { subnetId: subnet.id, routeTableId: routes.id });

    const firewall = new SecurityGroup(this, "firewall", {
      name: `${props.app}-togo`,
      description: `togo: ${props.app} (SSH from chosen networks, HTTP and HTTPS from anywhere)`,
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
    for (const [id, port] of [["http", 80], ["https", 443]] as const) {
      new VpcSecurityGroupIngressRule(this, id, {
        securityGroupId: firewall.id,
        description: id.toUpperCase(),
        ipProtocol: "tcp",
        fromPort: port,
        toPort: port,
        cidrIpv4: "0.0.0.0/0",
        tags: tags(id),
      });
    }
    new VpcSecurityGroupEgressRule(this, "egress", {
      securityGroupId: firewall.id,
      description: "all outbound (packages, ACME, the app's own calls)",
      ipProtocol: "-1",
      cidrIpv4: "0.0.0.0/0",
      tags: tags("egress"),
    });

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

    const server = new Instance(this, "server", {
      ami,
      instanceType: props.instanceType,
      subnetId: subnet.id,
      vpcSecurityGroupIds: [firewall.id],
      // No key_name: EC2 would install that key for the image's default user (ubuntu, passwordless
      // sudo), making the deploy key, often a CI secret, a root key. cloud-init gives it to the
      // key-only, sudo-less deploy user alone.
      userData: cloudInit(props),
      metadataOptions: { httpTokens: "required", httpEndpoint: "enabled" },
      rootBlockDevice: { volumeType: "gp3", volumeSize: props.volumeSize, encrypted: true, tags: tags("root") },
      tags: tags("server"),
      lifecycle: {
        // cloud-init runs once per instance, so a changed user_data would only stop and start the
        // server; and a looked-up AMI moves with every Ubuntu release: following it would replace it.
        // key_name: a server made when the stack still attached a key pair is not replaced for it.
        ignoreChanges: props.ami ? ["user_data", "key_name"] : ["ami", "user_data", "key_name"],
      },
    });

    const address = new Eip(this, "address", { domain: "vpc", instance: server.id, tags: tags("ip"), dependsOn: [gateway] });

    if (props.domain && props.zoneId) {
      new Route53Record(this, "dns", { zoneId: props.zoneId, name: props.domain, type: "A", ttl: 300, records: [address.publicIp] });
    }

    new TerraformOutput(this, "public_ip", { value: address.publicIp });
    new TerraformOutput(this, "instance_id", { value: server.id });
    new TerraformOutput(this, "ssh_user", { value: props.sshUser });
    new TerraformOutput(this, "url", { value: props.domain ? `${props.https ? "https" : "http"}://${props.domain}` : `http://${address.publicIp}` });
    new TerraformOutput(this, "region", { value: props.region });
  }
}

export function defineAwsStack(app: object, name: string, props: AwsStackProps): void {
  new AwsStack(app as Construct, name, props);
}
