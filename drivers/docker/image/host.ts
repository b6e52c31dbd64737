// The Docker host a container runs on: a local socket, `tcp://host:port` or `ssh://user@host[:port]`.
// One value feeds the stack's docker provider (`host`), the docker CLI (`DOCKER_HOST`) and the URL.
import type { Spec } from "../../../src/core/spec.js";
import { DEFAULT_DOCKER_HOST, parseDockerHost, type DockerHost } from "../../../src/exec/docker-host.js";

export { DEFAULT_DOCKER_HOST, DOCKER_HOST_FORMS, parseDockerHost } from "../../../src/exec/docker-host.js";
export type { DockerHost, DockerHostKind } from "../../../src/exec/docker-host.js";

/**
 * Where the container runs: `options.docker_host`, else `deploy.host` reached over SSH
 * (`ssh://user@host:port`, the docker CLI's own SSH transport), else this machine's socket.
 */
export function dockerHostOf(spec: Spec): DockerHost {
  const opt = spec.options.docker_host;
  if (typeof opt === "string") {
    const parsed = parseDockerHost(opt);
    if (parsed) return parsed;
  }
  if (spec.host) {
    const host = spec.host.includes(":") ? `[${spec.host}]` : spec.host;
    const url = `ssh://${spec.user ? `${spec.user}@` : ""}${host}${spec.sshPort !== 22 ? `:${spec.sshPort}` : ""}`;
    return { kind: "ssh", url, hostname: spec.host };
  }
  return { kind: "unix", url: DEFAULT_DOCKER_HOST, hostname: "127.0.0.1" };
}

/** ssh options for the provider's `ssh_opts` (the docker CLI reads ~/.ssh/config itself). */
export function sshOpts(spec: Spec): string[] {
  const opts: string[] = [];
  if (spec.identityFile) opts.push("-i", spec.identityFile);
  if (spec.knownHosts) opts.push("-o", `UserKnownHostsFile=${spec.knownHosts}`);
  if (spec.sshConfig) opts.push("-F", spec.sshConfig);
  return opts;
}
