// The docker driver's settings: `deploy.options` read into one typed object, with every problem
// reported as a ConfigProblem (key path, value, what to write instead). Pure: no disk, no network.
import { existsSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import type { ConfigProblem } from "../../../src/core/errors.js";
import type { Spec } from "../../../src/core/spec.js";
import { DOCKER_HOST_FORMS, parseDockerHost } from "./host.js";
import { parseImageRef } from "./ref.js";

/** Where the image comes from. */
export type ImageSource =
  /** An OCI image layout (buildah, kaniko, `docker buildx --output type=oci,tar=false`, nix …). */
  | { kind: "oci"; path: string; ref?: string }
  | { kind: "oci-archive"; path: string }
  /** A `docker save` tarball. */
  | { kind: "docker-archive"; path: string }
  /** `docker build` on the reachable daemon. */
  | { kind: "dockerfile"; dockerfile: string; context: string }
  /** Already in the registry under the release version's tag (built elsewhere, e.g. by CI). */
  | { kind: "registry" };

export interface Publish {
  ip: string;
  port: number;
}

export type RestartPolicy = "no" | "on-failure" | "always" | "unless-stopped";

export interface DockerOptions {
  source: ImageSource;
  /** Host port the app port is published on; undefined = not published. */
  publish?: Publish;
  restart: RestartPolicy;
  network: string;
  containerName: string;
  /** Plain-HTTP or self-signed registry (skopeo --tls-verify=false). */
  insecureRegistry: boolean;
  /** Docker health check command: exec form (list), shell form (string) or none (false). */
  healthcheckCmd: string[] | string | false | undefined;
}

export const OPTION_KEYS = ["source", "context", "docker_host", "publish", "restart", "network", "container_name", "insecure_registry", "healthcheck_cmd"] as const;
const RESTART = ["no", "on-failure", "always", "unless-stopped"];
const DOCKER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

function inside(dir: string, p: string): string {
  return isAbsolute(p) ? p : join(dir, p);
}

/** Parses `options.publish`: a port, `"IP:PORT"`, or false. Default: app_port on every interface. */
export function parsePublish(value: unknown, appPort: number): Publish | undefined | null {
  if (value === undefined) return { ip: "0.0.0.0", port: appPort };
  if (value === false) return undefined;
  if (typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 65535) return { ip: "0.0.0.0", port: value };
  if (typeof value === "string") {
    const m = /^(.+):(\d{1,5})$/.exec(value);
    if (m && IPV4.test(m[1]) && Number(m[2]) >= 1 && Number(m[2]) <= 65535) return { ip: m[1], port: Number(m[2]) };
  }
  return null;
}

/** Parses `options.source`. */
export function parseSource(value: unknown, spec: Pick<Spec, "dir">, context: unknown): ImageSource | null {
  const ctx = typeof context === "string" ? inside(spec.dir, context) : spec.dir;
  if (value === undefined) {
    // `docker build` when the project has a Dockerfile; otherwise the image is expected in the registry.
    return existsSync(join(spec.dir, "Dockerfile")) ? { kind: "dockerfile", dockerfile: join(ctx, "Dockerfile"), context: ctx } : { kind: "registry" };
  }
  if (typeof value !== "string") return null;
  if (value === "registry") return { kind: "registry" };
  if (value === "dockerfile") return { kind: "dockerfile", dockerfile: join(ctx, "Dockerfile"), context: ctx };
  const m = /^(oci|oci-archive|docker-archive|dockerfile):(.+)$/.exec(value);
  if (!m) return null;
  if (m[1] === "dockerfile") return { kind: "dockerfile", dockerfile: inside(spec.dir, m[2]), context: ctx };
  if (m[1] === "oci") {
    // oci:PATH[:REF], as skopeo writes it.
    const r = /^(.+?)(?::([A-Za-z0-9._-]+))?$/.exec(m[2])!;
    return { kind: "oci", path: inside(spec.dir, r[1]), ...(r[2] ? { ref: r[2] } : {}) };
  }
  return { kind: m[1] as "oci-archive" | "docker-archive", path: inside(spec.dir, m[2]) };
}

/** Checks the Spec for the docker driver. Returns the options and every problem found. */
export function readDockerOptions(spec: Spec): { options: DockerOptions; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const o = spec.options;
  const at = (k: string) => `deploy.options.${k}`;

  for (const key of Object.keys(o)) {
    if (!(OPTION_KEYS as readonly string[]).includes(key)) {
      problems.push({ path: at(key), expected: `unknown option for the docker driver (allowed: ${OPTION_KEYS.join(", ")})` });
    }
  }

  if (!spec.image) {
    problems.push({ path: "deploy.image", expected: "is required for the docker driver: the repository to push to, e.g. registry.example.com/hello" });
  } else {
    const ref = parseImageRef(spec.image);
    if (!ref.registry) {
      problems.push({ path: "deploy.image", value: spec.image, expected: "name the registry to push to, e.g. registry.example.com/hello, 127.0.0.1:5000/hello or docker.io/you/hello" });
    }
    if (ref.digest) {
      problems.push({ path: "deploy.image", value: spec.image, expected: "drop the @sha256:… digest: togo pushes the image and pins the container to the digest it pushed" });
    } else if (ref.tag) {
      problems.push({ path: "deploy.image", value: spec.image, expected: `drop the :${ref.tag} tag: togo tags each push with the release version and runs it by digest (never :latest)` });
    }
  }

  if (o.docker_host !== undefined && (typeof o.docker_host !== "string" || !parseDockerHost(o.docker_host))) {
    problems.push({ path: at("docker_host"), value: o.docker_host, expected: `expected ${DOCKER_HOST_FORMS}` });
  }

  const publish = parsePublish(o.publish, spec.appPort);
  if (publish === null) {
    problems.push({ path: at("publish"), value: o.publish, expected: 'expected a host port (8080), "IP:PORT" ("127.0.0.1:8080") or false (not published)' });
  }

  const source = parseSource(o.source, spec, o.context);
  if (source === null) {
    problems.push({
      path: at("source"),
      value: o.source,
      expected: "expected oci:PATH[:REF], oci-archive:PATH, docker-archive:PATH, dockerfile[:PATH] or registry (the image is already pushed under the version tag)",
    });
  }
  if (o.context !== undefined && typeof o.context !== "string") {
    problems.push({ path: at("context"), value: o.context, expected: "expected the docker build context directory, relative to togo.yaml" });
  }
  if (source && source.kind !== "registry" && source.kind !== "dockerfile" && !spec.buildCmd && !existsSync(source.path)) {
    problems.push({ path: at("source"), value: o.source, expected: `${source.path} does not exist and there is no build_cmd to make it; build the image first or set deploy.build_cmd` });
  }

  if (o.restart !== undefined && !RESTART.includes(o.restart as string)) {
    problems.push({ path: at("restart"), value: o.restart, expected: `expected one of ${RESTART.join(", ")}` });
  }
  for (const key of ["network", "container_name"] as const) {
    if (o[key] !== undefined && (typeof o[key] !== "string" || !DOCKER_NAME.test(o[key] as string))) {
      problems.push({ path: at(key), value: o[key], expected: "expected a Docker name: letters, digits, _ . -, starting with a letter or digit" });
    }
  }
  if (o.insecure_registry !== undefined && typeof o.insecure_registry !== "boolean") {
    problems.push({ path: at("insecure_registry"), value: o.insecure_registry, expected: "expected true (plain-HTTP or self-signed registry) or false" });
  }
  const hc = o.healthcheck_cmd;
  const hcOk =
    hc === undefined ||
    hc === false ||
    (typeof hc === "string" && hc.trim() !== "") ||
    (Array.isArray(hc) && hc.length > 0 && hc.every((x) => typeof x === "string" && x !== ""));
  if (!hcOk) {
    problems.push({ path: at("healthcheck_cmd"), value: hc, expected: "expected a command list (exec form), a shell command string, or false for no Docker health check" });
  }

  return {
    problems,
    options: {
      source: source ?? { kind: "registry" },
      publish: publish ?? undefined,
      restart: (o.restart as RestartPolicy | undefined) ?? "unless-stopped",
      network: (o.network as string | undefined) ?? spec.app,
      containerName: (o.container_name as string | undefined) ?? spec.app,
      insecureRegistry: o.insecure_registry === true,
      healthcheckCmd: hcOk ? (hc as DockerOptions["healthcheckCmd"]) : undefined,
    },
  };
}
