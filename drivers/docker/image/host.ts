// The Docker host a container runs on: a local socket, `tcp://host:port` or `ssh://user@host[:port]`.
// One value feeds the stack's docker provider (`host`), the docker CLI (`DOCKER_HOST`) and the URL.
import type { Spec } from "../../../src/core/spec.js";

export const DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock";

export type DockerHostKind = "unix" | "tcp" | "ssh";

export interface DockerHost {
  kind: DockerHostKind;
  /** As the provider and `DOCKER_HOST` take it. */
  url: string;
  /** Host name the app is reached at (127.0.0.1 for a local socket). */
  hostname: string;
}

const UNIX = /^unix:\/\/(\/[^\s'"]+)$/;
const TCP = /^tcp:\/\/([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):(\d{1,5})$/;
const SSH = /^ssh:\/\/(?:([a-z_][a-z0-9_-]{0,31})@)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(?::(\d{1,5}))?$/;

export const DOCKER_HOST_FORMS = "unix:///var/run/docker.sock, tcp://HOST:PORT or ssh://USER@HOST[:PORT]";

/** Parses `options.docker_host`; undefined when it is not one of the accepted forms. */
export function parseDockerHost(value: string): DockerHost | undefined {
  let m = UNIX.exec(value);
  if (m) return { kind: "unix", url: value, hostname: "127.0.0.1" };
  m = TCP.exec(value);
  if (m && Number(m[2]) >= 1 && Number(m[2]) <= 65535) return { kind: "tcp", url: value, hostname: m[1].replace(/^\[|\]$/g, "") };
  m = SSH.exec(value);
  if (m && (m[3] === undefined || (Number(m[3]) >= 1 && Number(m[3]) <= 65535))) {
    return { kind: "ssh", url: value, hostname: m[2].replace(/^\[|\]$/g, "") };
  }
  return undefined;
}

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
