// togo.yaml → Spec. The whole file is validated before anything runs; every problem names the key
// path, the value and what is expected. Nothing here touches the disk beyond reading.
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { Composer, isAlias, isMap, isScalar, isSeq, LineCounter, Parser, type CST, type Document, type Node } from "yaml";
import { expandHome, projectPath } from "../core/home.js";
import { ConfigError, type ConfigProblem } from "../core/errors.js";
import { storeScheme, type Spec } from "../core/spec.js";
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

/** Bounds that keep a hostile or broken file from taking the CLI down (togo.yaml needs a fraction). */
const MAX_CHARS = 1024 * 1024;
const MAX_DEPTH = 32;
const MAX_ALIASES = 100;
/** Keys that name parts of every JavaScript object: never a togo setting, and unsafe to carry. */
const RESERVED_KEYS = new Set(["__proto__", "constructor", "prototype"]);

/** Explicit tags that still give plain JSON values (!!binary, !!set, !!timestamp... do not). */
const CORE_TAGS = new Set(["str", "int", "float", "bool", "null", "map", "seq"].map((t) => `tag:yaml.org,2002:${t}`));

export interface LoadOptions {
  env?: Env;
  /** The stage (`--stage`); TOGO_STAGE when not given. */
  stage?: string;
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
  return parseConfig(readFileSync(path, "utf8"), path, env, opts.stage);
}

export function parseConfig(text: string, file: string, env: Env = process.env, stageArg?: string): Spec {
  const doc = parseYaml(text, file);
  const { problems, unusable } = checkNodes(doc);
  // A reserved key would be dropped or misread further on, a loop never ends: stop here.
  if (unusable) throw new ConfigError(file, problems);
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (e) {
    const many = /alias count/i.test((e as Error).message);
    throw new ConfigError(file, [{ path: "", expected: many ? `too many YAML aliases (*name) for their size (at most ${MAX_ALIASES} expanded values): write the values out` : (e as Error).message }]);
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new ConfigError(file, [{ path: "", value: data ?? null, expected: "expected a mapping with at least app: and deploy:" }]);
  }

  // The stage is merged before interpolation: another stage's ${VAR} need not be set for this one.
  const stage = (stageArg ?? env.TOGO_STAGE) || undefined;
  const { merged, stageKeys } = selectStage(data as Record<string, unknown>, stage, stageArg === undefined ? "TOGO_STAGE" : "--stage", problems);
  if (problems.length > 0) throw new ConfigError(file, problems);
  const fromEnv = new Map<string, string[]>();
  const interpolated = interpolate(merged, [], env, problems, fromEnv) as Record<string, unknown>;
  applyEnvOverrides(interpolated, env, problems);
  const fail = () => new ConfigError(file, unique(redactFromEnv(problems, fromEnv)));
  if (problems.length > 0) throw fail();

  const parsed = configSchema.safeParse(interpolated);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(...toProblems(issue, interpolated));
    throw fail();
  }
  const spec = toSpec(parsed.data, file, env, problems, stage, stageKeys);
  if (problems.length > 0) throw fail();
  interpolatedPaths.set(spec, fromEnv);
  return spec;
}

/** The same line twice (a value failing two checks of one rule) says nothing more. */
function unique(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const k = JSON.stringify([p.path, p.value, p.expected]);
    return seen.has(k) ? false : (seen.add(k), true);
  });
}

/** Which keys of a Spec took text from the environment (`${VAR}`), for redacting later problems. */
const interpolatedPaths = new WeakMap<Spec, Map<string, string[]>>();

/**
 * Problems about a value that came from the environment show no value: it may be a secret (a
 * token exported for the deploy). Also for problems a driver finds later in the same Spec.
 */
export function redactFromEnv(problems: ConfigProblem[], from: Spec | Map<string, string[]>): ConfigProblem[] {
  const paths = from instanceof Map ? from : interpolatedPaths.get(from);
  if (!paths || paths.size === 0) return problems;
  return problems.map((p) => {
    if (p.value === undefined) return p;
    const vars = [...paths].filter(([at]) => at === p.path || at.startsWith(`${p.path}.`) || p.path.startsWith(`${at}.`)).flatMap(([, v]) => v);
    if (vars.length === 0) return p;
    const names = [...new Set(vars)].map((v) => `\${${v}}`).join(", ");
    return { ...p, value: "(redacted)", expected: `${p.expected} (the value comes from ${names})` };
  });
}

/** The YAML document, or a ConfigError naming line and column; deep nesting is refused before anything recursive. */
function parseYaml(text: string, file: string): Document.Parsed {
  if (text.length > MAX_CHARS) {
    throw new ConfigError(file, [{ path: "", expected: `is ${text.length} characters; a togo.yaml is a few hundred (is -c pointing at the right file?)` }]);
  }
  const lines = new LineCounter();
  const at = (offset: number) => {
    const { line, col } = lines.linePos(offset);
    return `line ${line}, column ${col}`;
  };
  // The parser keeps its own stack; the composer and everything after it recurse once a level.
  const tokens = Array.from(new Parser(lines.addNewLine).parse(text));
  const deep = deepestToken(tokens);
  if (deep.depth > MAX_DEPTH) {
    throw new ConfigError(file, [{ path: "", expected: `nesting deeper than ${MAX_DEPTH} levels at ${at(deep.offset)}; togo.yaml needs a handful` }]);
  }
  // The core schema whatever %YAML directive the file has: 1.1 would read yes as true and 0777 as 511.
  const docs = Array.from(new Composer({ uniqueKeys: true, prettyErrors: false, schema: "core" }).compose(tokens, true, text.length));
  const doc = docs[0];
  const errors = [
    ...doc.errors.map((e) => `YAML syntax error at ${at(e.pos[0])}: ${e.message.split("\n")[0]}`),
    ...doc.warnings.map((e) => `YAML problem at ${at(e.pos[0])}: ${e.message.split("\n")[0]}`),
  ];
  if (docs.length > 1) errors.push(`a second YAML document at ${at(docs[1].range[0])}; togo.yaml is one document (remove the ---)`);
  if (errors.length > 0) throw new ConfigError(file, errors.map((expected) => ({ path: "", expected })));
  return doc;
}

/** The most deeply nested collection in the parser's tokens, found without recursion. */
function deepestToken(tokens: CST.Token[]): { depth: number; offset: number } {
  let deepest = { depth: 0, offset: 0 };
  const stack: [CST.Token | undefined, number][] = tokens.map((t) => [t, 0]);
  while (stack.length > 0) {
    const [t, depth] = stack.pop()!;
    if (!t) continue;
    if (t.type === "document") stack.push([t.value, depth]);
    else if (t.type === "block-map" || t.type === "block-seq" || t.type === "flow-collection") {
      if (depth + 1 > deepest.depth) deepest = { depth: depth + 1, offset: t.offset };
      if (deepest.depth > MAX_DEPTH) break;
      for (const item of t.items) {
        if ("key" in item) stack.push([item.key ?? undefined, depth + 1]);
        stack.push([item.value, depth + 1]);
      }
    }
  }
  return deepest;
}

/**
 * What only the YAML source shows: reserved keys (which a plain object would drop or misread), NUL
 * bytes (no command line, file name or environment can carry one), and env values YAML would
 * silently change (`01234` is read as 1234, `1.10` as 1.1, `0x1F` as 31, `TRUE` as true).
 */
function checkNodes(doc: Document.Parsed): { problems: ConfigProblem[]; unusable: boolean } {
  const problems: ConfigProblem[] = [];
  let unusable = false;
  const secret = (path: string[]) => path[0] === "deploy" && path[1] === "secrets";
  const ancestors = new Set<Node>();
  const walk = (node: Node | null | undefined, path: string[]) => {
    if (!node) return;
    if (isAlias(node)) {
      // An alias inside the very node it names would make the data contain itself.
      const target = node.resolve(doc);
      if (target && ancestors.has(target)) {
        problems.push({ path: path.join("."), expected: `the alias *${node.source} is inside the &${node.source} it refers to, a loop; write the values out` });
        unusable = true;
      }
      return;
    }
    if (node.tag !== undefined && !CORE_TAGS.has(node.tag)) {
      problems.push({ path: path.join("."), expected: `the YAML tag ${node.tag.replace("tag:yaml.org,2002:", "!!")} makes a value togo cannot use; remove the tag` });
      return;
    }
    if (isScalar(node)) {
      if (typeof node.value === "string" && node.value.includes("\0")) {
        problems.push({ path: path.join("."), value: secret(path) ? "(redacted)" : node.value, expected: "a NUL byte (\\0) cannot reach a command, a file name or the environment; remove it" });
      }
      const isEnvValue = path.length === 3 && path[0] === "deploy" && path[1] === "env";
      if (isEnvValue && node.type === "PLAIN" && (typeof node.value === "number" || typeof node.value === "boolean")) {
        const written = node.source ?? String(node.value);
        if (String(node.value) !== written) {
          problems.push({
            path: path.join("."),
            expected: `unquoted ${written} is read by YAML as ${String(node.value)}; quote it to keep the text: ${path[2]}: "${written}"`,
          });
        }
      }
      return;
    }
    ancestors.add(node);
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        const at = [...path, key];
        if (RESERVED_KEYS.has(key)) {
          problems.push({ path: at.join("."), expected: `reserved key "${key}": it names a part of every JavaScript object and is never a togo setting; rename or remove it` });
          unusable = true;
          continue;
        }
        if (key.includes("\0")) {
          problems.push({ path: [...path, JSON.stringify(key)].join("."), expected: "a NUL byte in a key; remove it" });
          continue;
        }
        walk(pair.value as Node | null, at);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item as Node, [...path, String(i)]));
    }
    ancestors.delete(node);
  };
  walk(doc.contents as Node | null, []);
  return { problems, unusable };
}

/** `${VAR}` and `${VAR:-default}` in string values; `$${` is a literal `${`. */
function interpolate(value: unknown, path: string[], env: Env, problems: ConfigProblem[], fromEnv: Map<string, string[]>): unknown {
  if (typeof value === "string") {
    const result = value.replace(/\$(\$?)\{([^}]*)\}/g, (whole, escape: string, body: string) => {
      if (escape) return whole.slice(1);
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s.exec(body);
      if (!m) {
        problems.push({ path: path.join("."), value, expected: `\${${body}} is not a variable reference; write \${NAME}, \${NAME:-default}, or $\${ for a literal` });
        return whole;
      }
      const v = env[m[1]];
      if (v !== undefined && v !== "") {
        const at = path.join(".");
        fromEnv.set(at, [...(fromEnv.get(at) ?? []), m[1]]);
        return v;
      }
      if (m[2] !== undefined) return m[2];
      problems.push({ path: path.join("."), expected: `environment variable ${m[1]} is not set; export it, give a default with \${${m[1]}:-value}, or write $\${${m[1]}} for a literal` });
      return whole;
    });
    // A value that is one whole reference takes the type its text reads as (`port: ${SSH_PORT}`);
    // env values are text, so there a reference keeps its text (`ZIP: ${ZIP}` with 01234 stays 01234).
    const envValue = path.length === 3 && path[0] === "deploy" && path[1] === "env";
    if (/^\$\{[^}]*\}$/.test(value) && !envValue) {
      if (/^\d{1,15}$/.test(result)) return Number(result);
      if (result === "true" || result === "false") return result === "true";
    }
    return result;
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, [...path, String(i)], env, problems, fromEnv));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, [...path, k], env, problems, fromEnv)]));
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
function toSpec(raw: RawConfig, file: string, env: Env, problems: ConfigProblem[], stage: string | undefined, stageKeys: Record<string, unknown>): Spec {
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
  if (d.host !== undefined && d.hosts !== undefined) {
    problems.push({ path: "deploy.hosts", expected: "deploy.host is set too; keep one: host for one server, hosts: [a, b] for a fleet" });
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
  const ws = workspaceOf({ dir, app: raw.app, stage });
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
  const a = raw.artifacts ?? {};
  if (a.endpoint !== undefined && (a.store === undefined || storeScheme(a.store) === undefined)) {
    problems.push({ path: "artifacts.endpoint", value: a.endpoint, expected: "an endpoint is for an s3://bucket/prefix store (or a plugin's scheme://), not a directory; set artifacts.store to one or remove the key" });
  }
  const state = raw.state;
  // Two stages never share a state: the key gets the stage unless the stage names its own.
  const stateKey = state && stage && valueAt(stageKeys, ["state", "key"]) === undefined ? stageStateKey(state.key, stage) : state?.key;
  return {
    app: raw.app,
    ...(stage ? { stage } : {}),
    dir,
    provider: name,
    buildCmd: d.build_cmd,
    binary,
    image: d.image,
    env: envVars,
    host: d.host,
    hosts: d.hosts,
    parallel: d.parallel,
    rolling: d.rolling ?? 0,
    strategy: d.strategy ?? "auto",
    drain: d.drain ?? 30,
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
      key: stateKey!,
      region: state.region,
      useLockfile: state.use_lockfile ?? true,
      endpoint: state.endpoint,
      options: state.options ?? {},
    },
    dev: {
      type: raw.dev?.type ?? "process",
      watch: raw.dev?.watch ?? [],
      ignore: raw.dev?.ignore ?? ["node_modules", ".git", ".togo", "cdktf.out"],
      env: Object.fromEntries(Object.entries(raw.dev?.env ?? {}).map(([k, v]) => [k, String(v)])),
      port: raw.dev?.port ?? d.app_port ?? 3000,
      sync: raw.dev?.sync ?? false,
    },
    artifact: d.artifact ?? "build",
    artifacts: {
      store: a.store !== undefined && storeScheme(a.store) !== undefined ? a.store : rel(a.store ?? ".togo/artifacts")!,
      server: a.server?.replace(/\/+$/, ""),
      tokenFile: rel(a.token_file),
      gitUrl: a.git_url ?? DEFAULT_GIT_URL,
      endpoint: a.endpoint,
    },
    plugins: raw.plugins ?? [],
    hooks: raw.hooks ?? {},
    configFile: file,
  };
}

/** How the build proxy turns `{remote}/{owner}/{repo}` into a clone URL unless artifacts.git_url says otherwise. */
export const DEFAULT_GIT_URL = "https://{remote}/{owner}/{repo}.git";

/** A stage's name: part of stack names, app dirs and unit names. */
export const STAGE_NAME = /^[a-z][a-z0-9-]{0,19}$/;
/** What a stage may override: everything but the app's name and the stages themselves. */
const STAGE_KEYS = ["deploy", "terraform", "state", "plugins", "hooks", "dev", "artifacts"];

/** The names under `stages:` in a togo.yaml (loadConfig checks the file; this only lists). */
export function stageNames(file: string): string[] {
  const path = resolve(file);
  if (!existsSync(path) || statSync(path).isDirectory()) return [];
  const doc = parseYaml(readFileSync(path, "utf8"), path);
  if (checkNodes(doc).unusable) return [];
  const data: unknown = doc.toJS({ maxAliasCount: MAX_ALIASES });
  const stages = data !== null && typeof data === "object" ? (data as Record<string, unknown>).stages : undefined;
  return stages !== null && typeof stages === "object" && !Array.isArray(stages) ? Object.keys(stages) : [];
}

/**
 * The file without `stages:`, with `stages.<stage>` deep-merged over it (mappings merge, lists and
 * scalars are replaced). Every stage's section is checked, not only the chosen one: a typo in
 * staging's keys is found on the next production deploy, not on the next staging one.
 */
function selectStage(data: Record<string, unknown>, stage: string | undefined, source: string, problems: ConfigProblem[]): { merged: Record<string, unknown>; stageKeys: Record<string, unknown> } {
  const { stages, ...base } = data;
  if (stages !== undefined && stages !== null && (typeof stages !== "object" || Array.isArray(stages))) {
    problems.push({ path: "stages", value: stages, expected: "expected a mapping of stage name to overrides, e.g. stages: { staging: { deploy: { host: 198.51.100.7 } } }" });
    return { merged: base, stageKeys: {} };
  }
  const all = (stages ?? {}) as Record<string, unknown>;
  for (const [name, over] of Object.entries(all)) {
    if (!STAGE_NAME.test(name)) problems.push({ path: `stages.${name}`, expected: "a stage name is lowercase letters, digits and -, starting with a letter, at most 20 characters" });
    if (over === null) continue;
    if (typeof over !== "object" || Array.isArray(over)) {
      problems.push({ path: `stages.${name}`, value: over, expected: "expected a mapping of the keys this stage overrides (deploy:, hooks:, terraform:, state:, plugins:, dev:, artifacts:)" });
      continue;
    }
    for (const key of Object.keys(over)) {
      if (STAGE_KEYS.includes(key)) continue;
      const hint = key === "app" ? "a stage keeps the app's name (the stage is added to stack, dir and unit names)" : `a stage overrides ${STAGE_KEYS.join(", ")}${closest(key, STAGE_KEYS) ? `; did you mean ${closest(key, STAGE_KEYS)}?` : ""}`;
      problems.push({ path: `stages.${name}.${key}`, expected: hint });
    }
  }
  if (stage === undefined) return { merged: base, stageKeys: {} };
  const known = Object.keys(all);
  if (!STAGE_NAME.test(stage) || !Object.hasOwn(all, stage)) {
    problems.push({
      path: "stages",
      value: stage,
      expected: `no stage ${JSON.stringify(stage)} (from ${source}); ${known.length ? `known stages: ${known.join(", ")}` : "this file defines none (add stages: { " + (STAGE_NAME.test(stage) ? stage : "staging") + ": { deploy: { ... } } })"}`,
    });
    return { merged: base, stageKeys: {} };
  }
  const over = (all[stage] ?? {}) as Record<string, unknown>;
  return { merged: deepMerge(base, over), stageKeys: over };
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    const mergeable = (x: unknown) => x !== null && typeof x === "object" && !Array.isArray(x);
    out[k] = mergeable(b) && mergeable(v) ? deepMerge(b as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

/** `togo/hello.tfstate` → `togo/staging/hello.tfstate`: the stage's own object beside the others. */
export function stageStateKey(key: string, stage: string): string {
  const i = key.lastIndexOf("/");
  return i < 0 ? `${stage}/${key}` : `${key.slice(0, i)}/${stage}/${key.slice(i + 1)}`;
}
