// A Docker daemon address as the docker CLI takes it in DOCKER_HOST: a local socket, `tcp://host:port`
// or `ssh://user@host[:port]`. Shared by the docker driver (its deploy target) and `togo dev --type
// docker` (the dev daemon), so both read the same forms the same way.

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

/** Parses a daemon address; undefined when it is not one of the accepted forms. */
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
