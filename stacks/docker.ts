// The docker driver's stack: the kreuzwerker/docker provider pointed at the Docker host, a network,
// the image pinned by digest, and the container (env, published port, restart policy, health check,
// labels). Secrets are Terraform variables filled from the environment at apply time, so their
// values never appear in the synthesized JSON. With no release yet, only the network is described.
import { Container } from "@cdktf/provider-docker/lib/container/index.js";
import { Image } from "@cdktf/provider-docker/lib/image/index.js";
import { Network } from "@cdktf/provider-docker/lib/network/index.js";
import { DockerProvider } from "@cdktf/provider-docker/lib/provider/index.js";
import { TerraformOutput, TerraformStack, TerraformVariable } from "cdktf";
import type { Construct } from "constructs";
import { applyBackend, type BackendProps } from "./backend.js";

export interface DockerStackProps extends BackendProps {
  app: string;
  /** unix:///var/run/docker.sock, tcp://host:port or ssh://user@host[:port]. */
  dockerHost: string;
  /** ssh options for an ssh:// host (identity, known_hosts, ssh_config). */
  sshOpts: string[];
  network: string;
  containerName: string;
  /** The release to run; absent until the first deploy (then only the network exists). */
  release?: { repository: string; digest: string; version: string };
  appPort: number;
  /** Host address and port the app port is published on; absent = not published. */
  publish?: { ip: string; port: number };
  /** Plain environment (PORT included). Secrets are not here. */
  env: Record<string, string>;
  /** Names of the secrets: each becomes a sensitive variable `secret_<NAME>` (TF_VAR_secret_<NAME>). */
  secretNames: string[];
  restart: string;
  /** Docker health check; absent = none. Durations in milliseconds. */
  healthcheck?: { test: string[]; intervalMs: number; timeoutMs: number; startPeriodMs: number; retries: number };
  /** `sh -c RUN` when deploy.run is set; else the image's own CMD. */
  command?: string[];
  url: string;
}

export const secretVariable = (name: string) => `secret_${name}`;

const ms = (n: number) => `${Math.round(n)}ms`;

export class DockerStack extends TerraformStack {
  constructor(scope: Construct, name: string, props: DockerStackProps) {
    super(scope, name);
    applyBackend(this, name, props);

    new DockerProvider(this, "docker", { host: props.dockerHost, ...(props.sshOpts.length ? { sshOpts: props.sshOpts } : {}) });

    const network = new Network(this, "network", { name: props.network, driver: "bridge", labels: [{ label: "togo.app", value: props.app }] });

    new TerraformOutput(this, "container_name", { value: props.containerName });
    new TerraformOutput(this, "network_name", { value: network.name });
    new TerraformOutput(this, "url", { value: props.url });

    const release = props.release;
    if (!release) {
      new TerraformOutput(this, "image_digest", { value: "" });
      new TerraformOutput(this, "version", { value: "" });
      new TerraformOutput(this, "image_ref", { value: "" });
      return;
    }

    const image = new Image(this, "image", {
      // Pinned by digest: the container runs exactly what was pushed, never a moving tag.
      name: `${release.repository}@${release.digest}`,
      // Kept on the host so a rollback does not pull again and a destroy leaves shared layers alone.
      keepLocally: true,
    });

    const secretEnv = props.secretNames.map((n) => {
      const v = new TerraformVariable(this, secretVariable(n), { type: "string", sensitive: true, nullable: false, description: `secret ${n} (from deploy.secrets)` });
      return `${n}=${v.stringValue}`;
    });
    const env = [...Object.entries(props.env).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`), ...secretEnv];

    const hc = props.healthcheck;
    new Container(this, "container", {
      name: props.containerName,
      image: image.imageId,
      env,
      restart: props.restart,
      mustRun: true,
      // Apply waits for the health check: a release that never gets healthy fails the deploy.
      ...(hc ? { wait: true, waitTimeout: Math.ceil((hc.startPeriodMs + hc.intervalMs * (hc.retries + 1)) / 1000) + 5 } : {}),
      ...(props.command ? { command: props.command } : {}),
      networksAdvanced: [{ name: network.name }],
      ports: props.publish ? [{ internal: props.appPort, external: props.publish.port, ip: props.publish.ip, protocol: "tcp" }] : [],
      ...(hc
        ? { healthcheck: { test: hc.test, interval: ms(hc.intervalMs), timeout: ms(hc.timeoutMs), startPeriod: ms(hc.startPeriodMs), retries: hc.retries } }
        : {}),
      labels: [
        { label: "togo.app", value: props.app },
        { label: "togo.version", value: release.version },
        { label: "togo.digest", value: release.digest },
      ],
    });

    new TerraformOutput(this, "image_digest", { value: release.digest });
    new TerraformOutput(this, "version", { value: release.version });
    new TerraformOutput(this, "image_ref", { value: image.name });
  }
}

export function defineDockerStack(app: object, name: string, props: DockerStackProps): void {
  new DockerStack(app as Construct, name, props);
}
