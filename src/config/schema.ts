// The togo.yaml schema (snake_case keys, part of the contract users rely on). Strict: unknown keys are errors.
import * as z from "zod";
import { HOOK_NAMES, type HookName } from "../core/spec.js";

export const APP_NAME = /^[a-z][a-z0-9-]{0,40}$/;
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const HOSTNAME = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const IPV6 = /^[0-9A-Fa-f:]+(%[A-Za-z0-9]+)?$/;
const UNIX_USER = /^[a-z_][a-z0-9_-]{0,31}$/;
const REGION = /^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$/;
// A Docker/OCI image reference without a digest or with one: [registry[:port]/]path[:tag][@sha256:...]
const IMAGE = /^(?:[a-z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;
const NPM_NAME = /^(@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*$/;
/** Secret references togo can resolve (see src/secrets.ts). */
export const SECRET_REF = /^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+#[A-Za-z_][A-Za-z0-9_]*|op:\/\/.+|bw:\/\/[^/]+\/.+|doppler:\/\/[^/]+\/[^/]+\/[A-Za-z_][A-Za-z0-9_]*|cmd:.+)$/;

const nonEmpty = (what: string) => z.string({ error: `expected ${what} (a string)` }).min(1, { error: `expected ${what}, not an empty string` });
const int = (min: number, max: number, what: string) =>
  z
    .number({ error: `expected ${what}: a whole number from ${min} to ${max}` })
    .int({ error: `expected ${what}: a whole number from ${min} to ${max}` })
    .min(min, { error: `expected ${what}: a whole number from ${min} to ${max}` })
    .max(max, { error: `expected ${what}: a whole number from ${min} to ${max}` });

const scalar = z.union([z.string(), z.number(), z.boolean()], {
  error: "expected a string, number or boolean (env values are text; quote structured values)",
});

const healthcheck = z.strictObject({
  path: z.string().regex(/^\/[^\s]*$/, { error: 'expected an HTTP path starting with "/", e.g. /up' }).optional(),
  timeout: int(1, 3600, "seconds").optional(),
  interval: z.number({ error: "expected seconds between probes (0.05 to 60)" }).min(0.05, { error: "expected seconds between probes (0.05 to 60)" }).max(60, { error: "expected seconds between probes (0.05 to 60)" }).optional(),
  settle: z
    .number({ error: "expected the seconds a release must stay up and healthy before it counts (0 to 600)" })
    .min(0, { error: "expected the seconds a release must stay up and healthy before it counts (0 to 600)" })
    .max(600, { error: "expected the seconds a release must stay up and healthy before it counts (0 to 600)" })
    .optional(),
});

export const deploySchema = z.strictObject({
  provider: z.string().regex(APP_NAME, { error: "expected a driver name such as local, vps, aws or docker" }).optional(),
  host: z
    .string({ error: "expected a host name or IP address" })
    .refine((v) => HOSTNAME.test(v) || IPV4.test(v) || (v.includes(":") && IPV6.test(v)), { error: "expected a host name or IP address" })
    .optional(),
  hosts: z
    .array(
      z.string({ error: "expected a host name or IP address" }).refine((v) => HOSTNAME.test(v) || IPV4.test(v) || (v.includes(":") && IPV6.test(v)), {
        error: "expected a host name or IP address",
      }),
      { error: "expected a list of host names or IP addresses, e.g. [203.0.113.10, 203.0.113.11]" },
    )
    .min(1, { error: "expected at least one host" })
    .max(1000, { error: "expected at most 1000 hosts" })
    .refine((l) => new Set(l).size === l.length, { error: "a host is listed twice" })
    .optional(),
  /** Hosts worked on at once (default: all). */
  parallel: int(1, 1000, "the number of hosts worked on at once").optional(),
  /** 0: every host in one two-phase batch; N: batches of N hosts, one after the other. */
  rolling: int(0, 1000, "the hosts switched a batch (0 = all at once)").optional(),
  strategy: z.enum(["auto", "blue-green", "restart"], { error: "expected auto, blue-green or restart" }).optional(),
  drain: z
    .number({ error: "expected the seconds the old release keeps its in-flight requests (0 to 3600)" })
    .min(0, { error: "expected the seconds the old release keeps its in-flight requests (0 to 3600)" })
    .max(3600, { error: "expected the seconds the old release keeps its in-flight requests (0 to 3600)" })
    .optional(),
  user: z.string().regex(UNIX_USER, { error: "expected a Unix user name such as deploy" }).optional(),
  port: int(1, 65535, "an SSH port").optional(),
  identity_file: nonEmpty("a path to an SSH private key").optional(),
  known_hosts: nonEmpty("a path to a known_hosts file").optional(),
  ssh_config: nonEmpty("a path to an ssh_config file").optional(),
  domain: z.string().regex(HOSTNAME, { error: "expected a domain name such as hello.example.com" }).refine((v) => v.includes("."), { error: "expected a domain name such as hello.example.com" }).optional(),
  region: z.string().regex(REGION, { error: "expected a cloud region such as eu-west-1" }).optional(),
  build_cmd: nonEmpty("a shell command").optional(),
  binary: nonEmpty("the artifact path (a file or directory, relative to togo.yaml)").optional(),
  image: z.string().regex(IMAGE, { error: "expected an image reference such as registry.example.com/hello" }).optional(),
  run: nonEmpty("the command that starts the app (it must listen on $PORT)").optional(),
  app_port: int(1, 65535, "a TCP port").optional(),
  release_cmd: nonEmpty("a shell command").optional(),
  healthcheck: healthcheck.optional(),
  versions_to_keep: int(1, 100, "a count of releases").optional(),
  app_dir: nonEmpty("a directory path").optional(),
  env: z.record(z.string().regex(ENV_NAME, { error: "env names are letters, digits and _ and do not start with a digit" }), scalar).optional(),
  secrets: z
    .record(
      z.string().regex(ENV_NAME, { error: "secret names are letters, digits and _ and do not start with a digit" }),
      z.string({ error: "expected a secret reference string" }).regex(SECRET_REF, {
        error: "expected a secret reference: env:NAME, file:PATH#KEY, op://vault/item/field, bw://item/field, doppler://project/config/NAME or cmd:COMMAND",
      }),
    )
    .optional(),
  options: z.record(z.string(), z.unknown(), { error: "expected a mapping of provider-specific options" }).optional(),
  /** build: build_cmd + binary on this machine; store: the artifact store's build for the commit (artifacts:). */
  artifact: z.enum(["build", "store"], { error: "expected build (build_cmd + binary here) or store (from artifacts.store / artifacts.server)" }).optional(),
});

export const terraformSchema = z.strictObject({
  engine: z.enum(["cdktf", "terraform"], { error: "expected cdktf or terraform" }).optional(),
  binary: nonEmpty("terraform, tofu, or a path to one of them").optional(),
  plugin_mirror: nonEmpty("a provider mirror directory").optional(),
});

export const stateSchema = z.strictObject({
  backend: z.literal("s3", { error: "expected s3 (omit state: for cdktf's local backend)" }),
  bucket: nonEmpty("an S3 bucket name"),
  key: nonEmpty("an object key such as togo/hello.tfstate"),
  region: nonEmpty("an S3 region such as eu-west-1"),
  use_lockfile: z.boolean({ error: "expected true or false" }).optional(),
  endpoint: z.url({ error: "expected an http(s) URL of an S3-compatible endpoint" }).optional(),
  options: z.record(z.string(), z.unknown(), { error: "expected a mapping of extra s3 backend attributes" }).optional(),
});

export const hooksSchema = z.strictObject(
  Object.fromEntries(HOOK_NAMES.map((name) => [name, nonEmpty(`a shell command run as the ${name} hook`).optional()])) as Record<HookName, z.ZodOptional<z.ZodString>>,
);

/** `togo dev`: which reloader, what to watch, and the app's environment in development. */
export const devSchema = z.strictObject({
  type: z.string().regex(APP_NAME, { error: "expected a reloader type such as process, sync or docker" }).optional(),
  watch: z.array(nonEmpty("a path or glob relative to togo.yaml"), { error: "expected a list of paths or globs, e.g. [src, package.json]" }).optional(),
  ignore: z.array(nonEmpty("a path or glob relative to togo.yaml"), { error: "expected a list of paths or globs, e.g. [node_modules, .git]" }).optional(),
  env: z.record(z.string().regex(ENV_NAME, { error: "env names are letters, digits and _ and do not start with a digit" }), scalar).optional(),
  port: int(1, 65535, "a TCP port").optional(),
  sync: z.boolean({ error: "expected true or false" }).optional(),
});

/** An S3 bucket name (the rules AWS enforces) and an optional key prefix. */
export const S3_STORE = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(\/[^\s]*)?$/;
const GIT_URL_PLACEHOLDERS = ["{remote}", "{owner}", "{repo}"];

/** The artifact store and the build proxy (`togo build`, `togo artifacts serve`, `deploy.artifact: store`). */
export const artifactsSchema = z.strictObject({
  // Another scheme:// is a plugin's store (registerStore), checked once the plugins are loaded.
  store: nonEmpty("a directory, s3://bucket/prefix, or a plugin's scheme://")
    .refine((v) => !v.startsWith("s3:") || S3_STORE.test(v), { error: "expected s3://bucket/prefix (a bucket name of 3-63 lowercase letters, digits, . and -), or a directory" })
    .refine((v) => !/^https?:\/\//i.test(v), { error: "expected a directory or s3://bucket/prefix; for a build proxy set artifacts.server" })
    .optional(),
  server: z
    .url({ protocol: /^https?$/, error: "expected the http(s) URL of a build proxy, e.g. http://127.0.0.1:7070" })
    .refine((v) => !/[?#]/.test(v), { error: "expected the proxy's base URL without ?query or #fragment, e.g. http://127.0.0.1:7070" })
    .optional(),
  token_file: nonEmpty("a path to a file holding the proxy's bearer token").optional(),
  git_url: nonEmpty('a clone URL template such as "https://{remote}/{owner}/{repo}.git"')
    .refine((v) => v.includes("{repo}"), { error: 'expected a clone URL template with {repo} (and usually {remote}, {owner}), e.g. "https://{remote}/{owner}/{repo}.git"' })
    .refine((v) => (v.match(/\{[^}]*\}/g) ?? []).every((p) => GIT_URL_PLACEHOLDERS.includes(p)), { error: "expected only the placeholders {remote}, {owner} and {repo}" })
    .optional(),
  endpoint: z.url({ protocol: /^https?$/, error: "expected the http(s) URL of an S3-compatible endpoint" }).optional(),
});

export const configSchema = z.strictObject({
  app: z.string({ error: "expected the app name (lowercase letters, digits, -; starts with a letter; at most 41)" }).regex(APP_NAME, {
    error: "expected lowercase letters, digits and -, starting with a letter, at most 41 characters",
  }),
  deploy: deploySchema.optional(),
  terraform: terraformSchema.optional(),
  state: stateSchema.optional(),
  plugins: z.array(z.string().regex(NPM_NAME, { error: "expected an npm package name" }), { error: "expected a list of npm package names" }).optional(),
  hooks: hooksSchema.optional(),
  dev: devSchema.optional(),
  artifacts: artifactsSchema.optional(),
});

export type RawConfig = z.infer<typeof configSchema>;

/** Keys allowed at each mapping level, for did-you-mean suggestions. */
export const KNOWN_KEYS: Record<string, string[]> = {
  "": [...Object.keys(configSchema.shape), "stages"],
  deploy: Object.keys(deploySchema.shape),
  "deploy.healthcheck": Object.keys(healthcheck.shape),
  terraform: Object.keys(terraformSchema.shape),
  state: Object.keys(stateSchema.shape),
  hooks: Object.keys(hooksSchema.shape),
  dev: Object.keys(devSchema.shape),
  artifacts: Object.keys(artifactsSchema.shape),
};
