// The docker driver's settings: `deploy.options` through the shared zod helper (strict, did-you-mean
// on unknown keys, `deploy.options.<key>` paths), plus the checks that need the Spec: `deploy.image`
// and paths relative to the project. Pure apart from existence checks: no network.
import { existsSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import type { ConfigProblem } from "../../../src/core/errors.js";
import type { Spec } from "../../../src/core/spec.js";
import * as z from "zod";
import { options, parseOptions } from "../../../src/config/options.js";
import { inKeyOrder } from "../../../src/ship/options.js";
import { DOCKER_HOST_FORMS, parseDockerHost } from "./host.js";
import { parseImageRef } from "./ref.js";
import { workspaceOf } from "../../../src/core/workspace.js";

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

const RESTART: [RestartPolicy, ...RestartPolicy[]] = ["no", "on-failure", "always", "unless-stopped"];
const DOCKER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

const SOURCE_FORMS = "expected oci:PATH[:REF], oci-archive:PATH, docker-archive:PATH, dockerfile[:PATH] or registry (the image is already pushed under the version tag)";
const PUBLISH_FORMS = 'expected a host port (8080), "IP:PORT" ("127.0.0.1:8080") or false (not published)';
const NAME_FORM = "expected a Docker name: letters, digits, _ . -, starting with a letter or digit";
const HEALTHCHECK_FORMS = "expected a command list (exec form), a shell command string, or false for no Docker health check";

/** `options.source` as written (paths not yet resolved against the project). */
type SourceForm =
  | { kind: "oci"; path: string; ref?: string }
  | { kind: "oci-archive" | "docker-archive"; path: string }
  | { kind: "dockerfile"; dockerfile?: string }
  | { kind: "registry" };

/** Parses the text of `options.source`; null when it is none of the accepted forms. */
export function sourceForm(value: string): SourceForm | null {
  if (value === "registry") return { kind: "registry" };
  if (value === "dockerfile") return { kind: "dockerfile" };
  const m = /^(oci|oci-archive|docker-archive|dockerfile):(.+)$/.exec(value);
  if (!m) return null;
  if (m[1] === "dockerfile") return { kind: "dockerfile", dockerfile: m[2] };
  if (m[1] === "oci") {
    // oci:PATH[:REF], as skopeo writes it.
    const r = /^(.+?)(?::([A-Za-z0-9._-]+))?$/.exec(m[2])!;
    return { kind: "oci", path: r[1], ...(r[2] ? { ref: r[2] } : {}) };
  }
  return { kind: m[1] as "oci-archive" | "docker-archive", path: m[2] };
}

/** `"IP:PORT"` of `options.publish`; undefined when it is not that. */
function ipPort(value: string): Publish | undefined {
  const m = /^(.+):(\d{1,5})$/.exec(value);
  return m && IPV4.test(m[1]) && Number(m[2]) >= 1 && Number(m[2]) <= 65535 ? { ip: m[1], port: Number(m[2]) } : undefined;
}

// Every check of a key carries the key's one message, so a union reports the same text whichever
// branch the value came closest to.
const port = () => z.number({ error: PUBLISH_FORMS }).int({ error: PUBLISH_FORMS }).min(1, { error: PUBLISH_FORMS }).max(65535, { error: PUBLISH_FORMS });
const dockerName = () => z.string({ error: NAME_FORM }).regex(DOCKER_NAME, { error: NAME_FORM });
const commandList = z.custom<string[]>((v) => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "string" && x !== ""), { error: HEALTHCHECK_FORMS });

/** `deploy.options` of the docker driver. Defaults that depend on the Spec are filled in by readDockerOptions. */
export const dockerOptionsSchema = options({
  /** Default: `dockerfile` when the project has a Dockerfile, else `registry`. */
  source: z
    .string({ error: SOURCE_FORMS })
    .refine((v) => sourceForm(v) !== null, { error: SOURCE_FORMS })
    .transform((v) => sourceForm(v)!)
    .optional(),
  context: z.string({ error: "expected the docker build context directory, relative to togo.yaml" }).optional(),
  docker_host: z
    .string({ error: `expected ${DOCKER_HOST_FORMS}` })
    .refine((v) => parseDockerHost(v) !== undefined, { error: `expected ${DOCKER_HOST_FORMS}` })
    .optional(),
  /** Default: app_port on every interface. */
  publish: z
    .union(
      [
        z.literal(false, { error: PUBLISH_FORMS }),
        port().transform((p): Publish => ({ ip: "0.0.0.0", port: p })),
        z
          .string({ error: PUBLISH_FORMS })
          .refine((v) => ipPort(v) !== undefined, { error: PUBLISH_FORMS })
          .transform((v) => ipPort(v)!),
      ],
      { error: PUBLISH_FORMS },
    )
    .optional(),
  restart: z.enum(RESTART, { error: `expected one of ${RESTART.join(", ")}` }).default("unless-stopped"),
  /** Default: the app's name. */
  network: dockerName().optional(),
  /** Default: the app's name. */
  container_name: dockerName().optional(),
  insecure_registry: z.boolean({ error: "expected true (plain-HTTP or self-signed registry) or false" }).default(false),
  healthcheck_cmd: z
    .union([z.literal(false, { error: HEALTHCHECK_FORMS }), z.string({ error: HEALTHCHECK_FORMS }).refine((v) => v.trim() !== "", { error: HEALTHCHECK_FORMS }), commandList], {
      error: HEALTHCHECK_FORMS,
    })
    .optional(),
});

type RawDockerOptions = z.infer<typeof dockerOptionsSchema>;
const KEYS = Object.keys(dockerOptionsSchema.shape);

function inside(dir: string, p: string): string {
  return isAbsolute(p) ? p : join(dir, p);
}

/** The image source with its paths resolved against the project (`context` for a Dockerfile build). */
export function resolveSource(form: SourceForm | undefined, spec: Pick<Spec, "dir">, context: string | undefined): ImageSource {
  const ctx = context !== undefined ? inside(spec.dir, context) : spec.dir;
  if (form === undefined) {
    // `docker build` when the project has a Dockerfile; otherwise the image is expected in the registry.
    return existsSync(join(spec.dir, "Dockerfile")) ? { kind: "dockerfile", dockerfile: join(ctx, "Dockerfile"), context: ctx } : { kind: "registry" };
  }
  switch (form.kind) {
    case "registry":
      return form;
    case "dockerfile":
      return { kind: "dockerfile", dockerfile: form.dockerfile === undefined ? join(ctx, "Dockerfile") : inside(spec.dir, form.dockerfile), context: ctx };
    case "oci":
      return { kind: "oci", path: inside(spec.dir, form.path), ...(form.ref ? { ref: form.ref } : {}) };
    default:
      return { kind: form.kind, path: inside(spec.dir, form.path) };
  }
}

/** `deploy.image`: required, names a registry, carries neither tag nor digest. */
function imageProblems(spec: Spec): ConfigProblem[] {
  if (!spec.image) {
    return [{ path: "deploy.image", expected: "is required for the docker driver: the repository to push to, e.g. registry.example.com/hello" }];
  }
  const problems: ConfigProblem[] = [];
  const ref = parseImageRef(spec.image);
  if (!ref.registry) {
    problems.push({ path: "deploy.image", value: spec.image, expected: "name the registry to push to, e.g. registry.example.com/hello, 127.0.0.1:5000/hello or docker.io/you/hello" });
  }
  if (ref.digest) {
    problems.push({ path: "deploy.image", value: spec.image, expected: "drop the @sha256:… digest: togo pushes the image and pins the container to the digest it pushed" });
  } else if (ref.tag) {
    problems.push({ path: "deploy.image", value: spec.image, expected: `drop the :${ref.tag} tag: togo tags each push with the release version and runs it by digest (never :latest)` });
  }
  return problems;
}

/**
 * A file source must exist unless build_cmd makes it. Checked on what the user wrote, so it is
 * reported beside problems of other keys.
 */
function sourcePathProblems(spec: Spec): ConfigProblem[] {
  const raw = spec.options.source;
  const form = typeof raw === "string" ? sourceForm(raw) : null;
  if (!form || form.kind === "registry" || form.kind === "dockerfile" || spec.buildCmd) return [];
  const path = inside(spec.dir, form.path);
  return existsSync(path) ? [] : [{ path: "deploy.options.source", value: raw, expected: `${path} does not exist and there is no build_cmd to make it; build the image first or set deploy.build_cmd` }];
}

/** The parsed options with the Spec's defaults filled in. */
function toDockerOptions(o: RawDockerOptions, spec: Spec): DockerOptions {
  return {
    source: resolveSource(o.source, spec, o.context),
    publish: o.publish === undefined ? { ip: "0.0.0.0", port: spec.appPort } : o.publish || undefined,
    restart: o.restart,
    network: o.network ?? workspaceOf(spec).qualifiedApp,
    containerName: o.container_name ?? workspaceOf(spec).qualifiedApp,
    insecureRegistry: o.insecure_registry,
    healthcheckCmd: o.healthcheck_cmd,
  };
}

/**
 * Checks the Spec for the docker driver: every problem, and the options. The options are always
 * filled (a key with a problem takes its default), but only mean something when there is no problem.
 */
export function readDockerOptions(spec: Spec): { options: DockerOptions; problems: ConfigProblem[] } {
  const parsed = parseOptions(spec.options, dockerOptionsSchema, "docker");
  const problems = [...imageProblems(spec), ...inKeyOrder([...parsed.problems, ...sourcePathProblems(spec)], KEYS)];
  let raw = parsed.options;
  if (!raw) {
    // Parse again without the keys that have problems, so every other key keeps what the user wrote.
    const bad = new Set(parsed.problems.map((p) => /^deploy\.options\.([^.]+)/.exec(p.path)?.[1]));
    const rest = Object.fromEntries(Object.entries(spec.options).filter(([k]) => !bad.has(k)));
    raw = dockerOptionsSchema.safeParse(rest).data ?? dockerOptionsSchema.parse({});
  }
  return { problems, options: toDockerOptions(raw, spec) };
}
