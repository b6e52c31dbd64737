// `togo dev --type docker`'s daemon work as data: small pure functions build the docker CLI commands
// (asserted by unit tests without a daemon), src/exec/command.ts runs them. Everything created here
// carries the togo.dev label and the `-dev` names, so nothing of a deploy is ever addressed; the
// app's environment reaches the container as `-e NAME` with the value in the CLI's environment,
// so no value (secrets included) is ever on a command line.
import { join } from "node:path";
import type { Spec } from "../core/spec.js";
import { workspaceOf } from "../core/workspace.js";
import type { Command } from "../exec/command.js";
import { DEFAULT_DOCKER_HOST, parseDockerHost, type DockerHost } from "../exec/docker-host.js";

/** The label on every container, network and image togo dev makes; its value is the app (with stage). */
export const LABEL_DEV = "togo.dev";

export interface DevDocker {
  /** The dev daemon: DOCKER_HOST, as `docker build` reads it, else the local socket. Never the deploy's options.docker_host. */
  daemon: DockerHost;
  /** The app with its stage: the label's value. */
  app: string;
  container: string;
  network: string;
  image: string;
  dockerfile: string;
  context: string;
  port: number;
  /** A local daemon publishes on loopback only; a remote one on all its interfaces (the app is reached at its host name). */
  publishIp: string;
  url: string;
  healthUrl: string;
}

/** The dev daemon named by `DOCKER_HOST` (undefined when it is set but none of the accepted forms). */
export function devDaemon(env: NodeJS.ProcessEnv = process.env): DockerHost | undefined {
  const value = env.DOCKER_HOST;
  if (value === undefined || value === "") return parseDockerHost(DEFAULT_DOCKER_HOST);
  return parseDockerHost(value);
}

/**
 * The Dockerfile and context: `deploy.options.source: dockerfile[:PATH]` and `options.context` when
 * the deploy builds one that way, else `Dockerfile` in the project.
 */
function dockerfileOf(spec: Spec): { dockerfile: string; context: string } {
  const inside = (p: string) => (p.startsWith("/") ? p : join(spec.dir, p));
  const context = typeof spec.options.context === "string" ? inside(spec.options.context) : spec.dir;
  const source = spec.options.source;
  const m = typeof source === "string" ? /^dockerfile:(.+)$/.exec(source) : null;
  return { dockerfile: m ? inside(m[1]) : join(context, "Dockerfile"), context };
}

/** Every name and address of the dev container. Pure. */
export function devDocker(spec: Spec, daemon: DockerHost): DevDocker {
  const app = workspaceOf(spec).qualifiedApp;
  const host = daemon.hostname.includes(":") ? `[${daemon.hostname}]` : daemon.hostname;
  const url = `http://${host}:${spec.dev.port}`;
  return {
    daemon,
    app,
    container: `${app}-dev`,
    network: `${app}-dev`,
    image: `togo-dev/${app}:dev`,
    ...dockerfileOf(spec),
    port: spec.dev.port,
    publishIp: daemon.kind === "unix" ? "127.0.0.1" : "0.0.0.0",
    url,
    healthUrl: `${url}${spec.healthcheck.path}`,
  };
}

const on = (d: DevDocker, env?: Record<string, string>) => ({ ...env, DOCKER_HOST: d.daemon.url });

export function daemonVersion(d: DevDocker): Command {
  return { file: "docker", args: ["version", "--format", "{{.Server.Version}}"], env: on(d) };
}

export function buildImage(d: DevDocker, iidFile: string): Command {
  return { file: "docker", args: ["build", "--iidfile", iidFile, "--label", `${LABEL_DEV}=${d.app}`, "-t", d.image, "-f", d.dockerfile, d.context], env: on(d) };
}

/** `docker inspect` of the dev container's name (exit 1 "No such object" when there is none). */
export function inspectContainer(d: DevDocker): Command {
  return { file: "docker", args: ["inspect", "--type", "container", d.container], env: on(d) };
}

export function imageWorkdir(d: DevDocker, image: string): Command {
  return { file: "docker", args: ["image", "inspect", "--format", "{{.Config.WorkingDir}}", image], env: on(d) };
}

export function inspectNetwork(d: DevDocker): Command {
  return { file: "docker", args: ["network", "inspect", "--format", `{{index .Labels "${LABEL_DEV}"}}`, d.network], env: on(d) };
}

export function createNetwork(d: DevDocker): Command {
  return { file: "docker", args: ["network", "create", "--label", `${LABEL_DEV}=${d.app}`, d.network], env: on(d) };
}

export function removeNetwork(d: DevDocker): Command {
  return { file: "docker", args: ["network", "rm", d.network], env: on(d) };
}

/**
 * Starts the dev container from `image`: labelled, on the dev network, the dev port published,
 * `--init` so the app gets SIGTERM as PID 1 and a restart is quick, restarted by Docker when it
 * crashes. Values of `env` go in the CLI's environment, only their names in the arguments.
 */
export function runContainer(d: DevDocker, image: string, env: Record<string, string>): Command {
  const names = Object.keys(env).sort();
  return {
    file: "docker",
    args: [
      "run",
      "--detach",
      "--name",
      d.container,
      "--label",
      `${LABEL_DEV}=${d.app}`,
      "--network",
      d.network,
      "--publish",
      `${d.publishIp}:${d.port}:${d.port}`,
      "--init",
      "--restart",
      "unless-stopped",
      ...names.flatMap((n) => ["--env", n]),
      image,
    ],
    env: on(d, env),
  };
}

export function removeContainer(d: DevDocker, id: string): Command {
  return { file: "docker", args: ["rm", "--force", id], env: on(d) };
}

export function removeImage(d: DevDocker, id: string): Command {
  return { file: "docker", args: ["image", "rm", id], env: on(d) };
}

/** Unpacks a tar stream (stdin) into `dir` of the container: the changed files, their folders made as needed. */
export function copyIn(d: DevDocker, id: string, dir: string): Command {
  return { file: "docker", args: ["cp", "-", `${id}:${dir}`], env: on(d) };
}

export function restartContainer(d: DevDocker, id: string): Command {
  return { file: "docker", args: ["restart", "--time", "5", id], env: on(d) };
}

export function containerLogs(d: DevDocker, id: string): Command {
  return { file: "docker", args: ["logs", "--tail", "20", id], env: on(d) };
}

/** A tar of `files` (relative to the context) for `docker cp -`. */
export function tarFiles(context: string, files: string[]): Command {
  return { file: "tar", args: ["-c", "-f", "-", "-C", context, "--", ...files] };
}
