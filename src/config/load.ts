// togo.yaml → Spec. The whole file is validated before anything runs; every problem names the key
// path, the value and what is expected. Nothing here touches the disk beyond reading.
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parseDocument } from "yaml";
import { expandHome, projectPath } from "../core/home.js";
import { ConfigError, type ConfigProblem } from "../core/errors.js";
import type { Spec } from "../core/spec.js";
import { workspaceOf } from "../core/workspace.js";
import { configSchema, KNOWN_KEYS, type RawConfig } from "./schema.js";
import { closest } from "./suggest.js";

type Env = Record<string, string | undefined>;

/** Deploy keys that `TOGO_<KEY>` may override (handy in CI), with their types. */
const ENV_OVERRIDES: Record<string, "string" | "int"> = {
  host: "string",
  user: "string",
  port: "int",
  identity_file: "string",
  known_hosts: "string",
  domain: "string",
  region: "string",
  image: "string",
  app_port: "int",
  app_dir: "string",
  versions_to_keep: "int",
};

export interface LoadOptions {
  env?: Env;
}

export function loadConfig(file: string, opts: LoadOptions = {}): Spec {
  const env = opts.env ?? process.env;
  const path = resolve(file);
  if (!existsSync(path)) {
    throw new ConfigError(path, [{ path: "", expected: `no such file; create togo.yaml (see examples/hello/togo.yaml) or pass -c FILE` }]);
  }
  if (statSync(path).isDirectory()) {
    throw new ConfigError(path, [{ path: "", expected: "is a directory; pass the togo.yaml file itself with -c FILE" }]);
  }
  return parseConfig(readFileSync(path, "utf8"), path, env);
}

export function parseConfig(text: string, file: string, env: Env = process.env): Spec {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => ({
        path: "",
        expected: `YAML syntax error at line ${e.linePos?.[0].line ?? "?"}, column ${e.linePos?.[0].col ?? "?"}: ${e.message.split("\n")[0]}`,
      })),
    );
  }
  const data: unknown = doc.toJS();
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new ConfigError(file, [{ path: "", value: data ?? null, expected: "expected a mapping with at least app: and deploy:" }]);
  }

  const problems: ConfigProblem[] = [];
  const interpolated = interpolate(data, [], env, problems) as Record<string, unknown>;
  applyEnvOverrides(interpolated, env, problems);
  if (problems.length > 0) throw new ConfigError(file, problems);

  const parsed = configSchema.safeParse(interpolated);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(...toProblems(issue, interpolated));
    throw new ConfigError(file, problems);
  }
  const spec = toSpec(parsed.data, file, env, problems);
  if (problems.length > 0) throw new ConfigError(file, problems);
  return spec;
}

/** `${VAR}` and `${VAR:-default}` in string values; `$${` is a literal `${`. */
function interpolate(value: unknown, path: string[], env: Env, problems: ConfigProblem[]): unknown {
  if (typeof value === "string") {
    const result = value.replace(/\$(\$?)\{([^}]*)\}/g, (whole, escape: string, body: string) => {
      if (escape) return whole.slice(1);
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s.exec(body);
      if (!m) {
        problems.push({ path: path.join("."), value, expected: `\${${body}} is not a variable reference; write \${NAME}, \${NAME:-default}, or $\${ for a literal` });
        return whole;
      }
      const v = env[m[1]];
      if (v !== undefined && v !== "") return v;
      if (m[2] !== undefined) return m[2];
      problems.push({ path: path.join("."), expected: `environment variable ${m[1]} is not set; export it, give a default with \${${m[1]}:-value}, or write $\${${m[1]}} for a literal` });
      return whole;
    });
    // A value that is one whole reference takes the type its text reads as (`port: ${SSH_PORT}`).
    if (/^\$\{[^}]*\}$/.test(value)) {
      if (/^\d{1,15}$/.test(result)) return Number(result);
      if (result === "true" || result === "false") return result === "true";
    }
    return result;
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, [...path, String(i)], env, problems));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, [...path, k], env, problems)]));
  }
  return value;
}

function applyEnvOverrides(data: Record<string, unknown>, env: Env, problems: ConfigProblem[]): void {
  for (const [key, type] of Object.entries(ENV_OVERRIDES)) {
    const name = `TOGO_${key.toUpperCase()}`;
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    let value: string | number = raw;
    if (type === "int") {
      if (!/^\d+$/.test(raw)) {
        problems.push({ path: `deploy.${key} (from ${name})`, value: raw, expected: "expected a whole number" });
        continue;
      }
      value = Number(raw);
    }
    const deploy = data.deploy;
    if (deploy === undefined || deploy === null) data.deploy = { [key]: value };
    else if (typeof deploy === "object" && !Array.isArray(deploy)) (deploy as Record<string, unknown>)[key] = value;
  }
}

function valueAt(data: unknown, path: PropertyKey[]): unknown {
  let cur = data;
  for (const k of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k as string];
  }
  return cur;
}

export interface Issue {
  code: string;
  path: PropertyKey[];
  message: string;
  keys?: string[];
  issues?: { message: string }[];
}

export function toProblems(issue: Issue, data: unknown, prefix: string[] = [], knownKeys: Record<string, string[]> = KNOWN_KEYS): ConfigProblem[] {
  const at = [...prefix, ...issue.path.map(String)].join(".");
  if (issue.code === "unrecognized_keys") {
    const known = knownKeys[issue.path.map(String).join(".")] ?? [];
    return (issue.keys ?? []).map((key) => {
      const guess = closest(key, known);
      return {
        path: at ? `${at}.${key}` : key,
        expected: `unknown key${guess ? `; did you mean "${guess}"?` : ""} (allowed here: ${known.join(", ")})`,
      };
    });
  }
  if (issue.code === "invalid_key") {
    return [{ path: at, expected: issue.issues?.[0]?.message ?? issue.message }];
  }
  const value = valueAt(data, issue.path);
  if (value === undefined) return [{ path: at, expected: `is required; ${issue.message}` }];
  const path = [...prefix, ...issue.path.map(String)];
  const secret = path[0] === "deploy" && path[1] === "secrets";
  return [{ path: at, value: secret ? "(redacted)" : value, expected: issue.message }];
}

/** Cross-key checks and defaults; the schema has already checked each key on its own. */
function toSpec(raw: RawConfig, file: string, env: Env, problems: ConfigProblem[]): Spec {
  const dir = dirname(file);
  const d = raw.deploy ?? {};
  const provider = env.DEPLOY_PROVIDER || d.provider;
  if (!provider) {
    problems.push({ path: "deploy.provider", expected: "is required (or set DEPLOY_PROVIDER); one of local, vps, aws, docker, or a plugin's driver" });
  }
  const envVars: Record<string, string> = {};
  for (const [k, v] of Object.entries(d.env ?? {})) envVars[k] = String(v);
  if ("PORT" in envVars) {
    problems.push({ path: "deploy.env.PORT", value: envVars.PORT, expected: "togo sets PORT from deploy.app_port; remove it here and set app_port instead" });
  }
  for (const k of Object.keys(d.secrets ?? {})) {
    if (k in envVars) problems.push({ path: `deploy.secrets.${k}`, expected: `${k} is also under deploy.env; keep it in one of the two` });
  }
  const rel = (p: string | undefined) => (p === undefined ? undefined : projectPath(dir, p));
  const mirror = raw.terraform?.plugin_mirror;
  const pluginMirror = rel(mirror);
  if (pluginMirror && !existsSync(pluginMirror)) {
    problems.push({ path: "terraform.plugin_mirror", value: mirror, expected: "no such directory; point it at a provider filesystem mirror or remove the key" });
  }
  const binary = d.binary;
  if (binary !== undefined && (isAbsolute(binary) || binary.split(/[\\/]/).includes(".."))) {
    problems.push({ path: "deploy.binary", value: binary, expected: "expected a path inside the project, relative to togo.yaml" });
  }
  const name = provider ?? "local";
  const ws = workspaceOf({ dir, app: raw.app });
  const appDir =
    d.app_dir === undefined
      ? name === "local"
        ? ws.localAppDir
        : ws.remoteAppDir
      : name === "local"
        ? resolve(dir, expandHome(d.app_dir))
        : d.app_dir;
  if (/['\n\0]/.test(appDir) || (name !== "local" && !/^(~\/|\/)[A-Za-z0-9._\/-]+$/.test(appDir))) {
    problems.push({ path: "deploy.app_dir", value: d.app_dir, expected: "expected an absolute path or one starting with ~/, of letters, digits, . _ / -" });
  }
  const state = raw.state;
  return {
    app: raw.app,
    dir,
    provider: name,
    buildCmd: d.build_cmd,
    binary,
    image: d.image,
    env: envVars,
    host: d.host,
    user: d.user,
    domain: d.domain,
    region: d.region,
    options: d.options ?? {},
    run: d.run,
    appPort: d.app_port ?? 3000,
    releaseCmd: d.release_cmd,
    healthcheck: {
      path: d.healthcheck?.path ?? "/up",
      timeout: d.healthcheck?.timeout ?? 30,
      interval: d.healthcheck?.interval ?? 0.25,
      settle: d.healthcheck?.settle ?? 2,
    },
    versionsToKeep: d.versions_to_keep ?? 5,
    appDir,
    secrets: d.secrets ?? {},
    sshPort: d.port ?? 22,
    identityFile: rel(d.identity_file),
    knownHosts: rel(d.known_hosts),
    sshConfig: rel(d.ssh_config),
    terraform: {
      engine: raw.terraform?.engine ?? "cdktf",
      binary: raw.terraform?.binary ?? "terraform",
      pluginMirror,
    },
    state: state && {
      backend: "s3",
      bucket: state.bucket,
      key: state.key,
      region: state.region,
      useLockfile: state.use_lockfile ?? true,
      endpoint: state.endpoint,
      options: state.options ?? {},
    },
    plugins: raw.plugins ?? [],
    hooks: raw.hooks ?? {},
    configFile: file,
  };
}
