// The vps driver's stack: Terraform built-ins only. A `terraform_data` whose remote-exec provisioner
// bootstraps the host over SSH (idempotent script, see drivers/vps.ts bootstrapScript). It is
// replaced, so the script runs again, when the script or the host fields change; the probed host
// facts are plain inputs (changing them updates the outputs without re-running anything).
//
// Never in the synthesized JSON: key contents or secrets. The private key is a `file()` reference
// read by terraform at apply time (or the ssh-agent); the host key is pinned from known_hosts so
// terraform verifies the host too.
import { DataResource, Fn, TerraformOutput, TerraformStack } from "cdktf";
import type { Construct } from "constructs";
import { applyBackend, type BackendProps } from "./backend.js";

export interface VpsStackProps extends BackendProps {
  app: string;
  host: string;
  user: string;
  port: number;
  /** As in the Spec (`~/…` allowed; resolved by the host's shell). */
  appDir: string;
  /** Absolute path of the private key; undefined means the ssh-agent. */
  identityFile?: string;
  /** `type base64` from known_hosts; undefined until the host has been contacted once. */
  hostKey?: string;
  bootstrap: string;
  bootstrapSha256: string;
  url: string;
  hasSystemd: string;
  hasCaddy: string;
  /** A fleet's other hosts (`deploy.hosts`), each bootstrapped the same way; the first host keeps today's addresses. */
  more?: FleetHost[];
}

export interface FleetHost {
  host: string;
  hostKey?: string;
  hasSystemd: string;
  hasCaddy: string;
}

/**
 * What terraform gets when no host key is known: not a key, so the connection fails instead of
 * silently skipping verification. `togo provision` always records the real key first.
 */
export const UNKNOWN_HOST_KEY = "togo-host-key-unknown: run togo provision (it verifies and records the host key first)";

export class VpsStack extends TerraformStack {
  constructor(scope: Construct, name: string, props: VpsStackProps) {
    super(scope, name);
    applyBackend(this, name, props);

    const hosts: FleetHost[] = [{ host: props.host, hostKey: props.hostKey, hasSystemd: props.hasSystemd, hasCaddy: props.hasCaddy }, ...(props.more ?? [])];
    const bootstraps = hosts.map(
      (h, i) =>
        new DataResource(this, i === 0 ? "bootstrap" : `bootstrap_${i}`, {
          triggersReplace: {
            bootstrap_sha256: props.bootstrapSha256,
            host: h.host,
            user: props.user,
            port: String(props.port),
            app_dir: props.appDir,
          },
          input: {
            host: h.host,
            user: props.user,
            app_dir: props.appDir,
            url: props.url,
            has_systemd: h.hasSystemd,
            has_caddy: h.hasCaddy,
          },
          connection: {
            type: "ssh",
            host: h.host,
            user: props.user,
            port: props.port,
            hostKey: h.hostKey ?? UNKNOWN_HOST_KEY,
            ...(props.identityFile ? { privateKey: Fn.file(props.identityFile), agent: "false" } : { agent: "true" }),
            timeout: "1m",
          },
          provisioners: [{ type: "remote-exec", inline: [props.bootstrap] }],
        }),
    );

    for (const key of ["host", "user", "app_dir", "url", "has_systemd", "has_caddy"]) {
      new TerraformOutput(this, key, { value: bootstraps[0].output.lookup(key) });
    }
    if (hosts.length > 1) new TerraformOutput(this, "hosts", { value: bootstraps.map((b) => b.output.lookup("host")) });
  }
}

export function defineVpsStack(app: object, name: string, props: VpsStackProps): void {
  new VpsStack(app as Construct, name, props);
}
