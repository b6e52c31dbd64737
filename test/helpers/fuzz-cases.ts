// The generated togo.yaml cases of the config fuzz test (test/unit/config-fuzz.test.ts), shared with
// bench/config-fuzz.mjs, which times the same cases: a seeded generator of invalid or pathological
// files, each starting from a valid base and breaking it in a known way.
import { HOOK_NAMES } from "../../src/core/spec.js";

/** The seed both the test and the bench use unless TOGO_FUZZ_SEED says otherwise. */
export const DEFAULT_SEED = 20240611;

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)];
  return { next, int, pick };
}
type Rng = ReturnType<typeof rng>;

// --- a tiny YAML writer: block mappings, strings always double-quoted, and raw text where the test
// needs exactly what a user would type (unquoted 01234, a tag, an alias...).

class Raw {
  constructor(readonly text: string) {}
}
type Value = string | number | boolean | null | Raw | Value[] | { [key: string]: Value };
type Mapping = { [key: string]: Value };

const isMapping = (v: Value): v is Mapping => v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Raw);
const keyText = (k: string) => (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(k) ? k : JSON.stringify(k));

function scalar(v: Value): string {
  if (v instanceof Raw) return v.text;
  if (typeof v === "string") return JSON.stringify(v); // a JSON string is a YAML double-quoted scalar
  if (Array.isArray(v) || isMapping(v)) return JSON.stringify(v); // JSON is YAML flow style
  return String(v);
}

export function emit(map: Mapping, indent = 0): string {
  const pad = " ".repeat(indent);
  return Object.entries(map)
    .map(([k, v]) => {
      if (isMapping(v) && Object.keys(v).length > 0) return `${pad}${keyText(k)}:\n${emit(v, indent + 2)}`;
      if (Array.isArray(v) && v.length > 0 && v.every((x) => !(x instanceof Raw))) return `${pad}${keyText(k)}:\n${v.map((x) => `${pad}  - ${scalar(x)}`).join("\n")}`;
      return `${pad}${keyText(k)}: ${scalar(v)}`;
    })
    .join("\n");
}

/** A valid togo.yaml (checked below): every case starts here and breaks it in a known way. */
export function base(): Mapping {
  return {
    app: "fuzz",
    deploy: {
      provider: "local",
      binary: "server.js",
      run: "node server.js",
      app_port: 3000,
      healthcheck: { path: "/up", timeout: 5, interval: 0.5 },
      versions_to_keep: 3,
      env: { NODE_ENV: "production", WORKERS: 3, DEBUG: false },
    },
    terraform: { engine: "terraform", binary: "terraform" },
    hooks: { pre_build: "true" },
  };
}

/** Sets a key as an own property, so that `__proto__` is a key like any other here. */
function setIn(map: Mapping, path: string[], value: Value): void {
  const own = (m: Mapping, k: string, v: Value) => Object.defineProperty(m, k, { value: v, enumerable: true, writable: true, configurable: true });
  let cur = map;
  for (const k of path.slice(0, -1)) {
    if (!Object.hasOwn(cur, k) || !isMapping(cur[k])) own(cur, k, {});
    cur = cur[k] as Mapping;
  }
  own(cur, path[path.length - 1], value);
}

const STRING_KEYS = [
  "app",
  ...["provider", "binary", "run", "build_cmd", "release_cmd", "host", "user", "identity_file", "known_hosts", "ssh_config", "domain", "region", "image", "app_dir"].map((k) => `deploy.${k}`),
  "deploy.healthcheck.path",
  "terraform.engine",
  "terraform.binary",
  "terraform.plugin_mirror",
  ...HOOK_NAMES.map((h) => `hooks.${h}`),
];
const INT_KEYS = ["deploy.port", "deploy.app_port", "deploy.versions_to_keep", "deploy.healthcheck.timeout"];
const MAP_KEYS = ["deploy", "deploy.healthcheck", "deploy.env", "deploy.secrets", "deploy.options", "terraform", "hooks"];
const LEVELS = ["", "deploy", "deploy.healthcheck", "terraform", "hooks"];
const KNOWN: Record<string, string[]> = {
  "": ["app", "deploy", "terraform", "state", "plugins", "hooks"],
  deploy: ["provider", "host", "user", "port", "binary", "run", "build_cmd", "app_port", "healthcheck", "versions_to_keep", "env", "secrets", "options"],
  "deploy.healthcheck": ["path", "timeout", "interval"],
  terraform: ["engine", "binary", "plugin_mirror"],
  hooks: [...HOOK_NAMES],
};

/** Values no key of that kind accepts. */
const NOT_A_STRING: Value[] = [5, -1.5, true, null, [1, 2], { a: 1 }, [], {}];
const NOT_AN_INT: Value[] = ["abc", "", 1.5, -1, 0, 1e9, true, null, [1], { n: 1 }, new Raw(".nan"), new Raw(".inf")];
const NOT_A_MAP: Value[] = ["x", 5, true, [1, 2], ["a"]];
const ODD_NUMBERS = ["01234", "1.10", "0x1F", "1e3", "1E-2", ".5", "+1", "0o17", "TRUE", "True", "FALSE", ".inf", "-.Inf", ".NaN", "1.0", "-0", "00", "0001.5e2", "12345678901234567890", "+.5"];
const BAD_REFS = ["${1x}", "${}", "${A B}", "${A:}", "x ${-} y", "${TOGO_FUZZ_UNSET_VARIABLE}", "${TOGO_FUZZ_UNSET:}", "pre ${TOGO_FUZZ_UNSET_2} post"];

const path = (p: string) => (p === "" ? [] : p.split("."));
const typo = (r: Rng, word: string) => {
  const i = r.int(0, word.length - 1);
  const ops = [
    () => word.slice(0, i) + word.slice(i + 1),
    () => word.slice(0, i) + "x" + word.slice(i),
    () => word.slice(0, i) + word[i].toUpperCase() + word.slice(i + 1),
  ];
  const out = r.pick(ops)();
  return out === word || out === "" ? `${word}_x` : out;
};

export interface Case {
  name: string;
  text: string | Buffer;
}

function billionLaughs(r: Rng): string {
  const width = r.int(5, 10);
  const depth = r.int(4, 9);
  const names = Array.from({ length: depth }, (_, i) => `l${i}`);
  const lines = [`  ${names[0]}: &${names[0]} [${Array(width).fill('"lol"').join(", ")}]`];
  for (let i = 1; i < depth; i++) lines.push(`  ${names[i]}: &${names[i]} [${Array(width).fill(`*${names[i - 1]}`).join(", ")}]`);
  return lines.join("\n");
}

export function cases(seed: number): Case[] {
  const r = rng(seed);
  const out: Case[] = [];
  const seen = new Set<string>();
  const add = (name: string, text: string | Buffer) => {
    const key = Buffer.from(text).toString("base64");
    if (!seen.has(key)) out.push({ name, text });
    seen.add(key);
  };
  const mutated = (name: string, change: (m: Mapping) => void, after: (t: string) => string = (t) => t) => {
    const m = base();
    change(m);
    add(name, `${after(emit(m))}\n`);
  };

  // A wrong type at every key: two wrong values each.
  for (const key of STRING_KEYS) for (let i = 0; i < 2; i++) { const v = r.pick(NOT_A_STRING); mutated(`${key}: ${scalar(v)}`, (m) => setIn(m, path(key), v)); }
  for (const key of INT_KEYS) for (let i = 0; i < 2; i++) { const v = r.pick(NOT_AN_INT); mutated(`${key}: ${scalar(v)}`, (m) => setIn(m, path(key), v)); }
  for (const key of MAP_KEYS) { const v = r.pick(NOT_A_MAP); mutated(`${key}: ${scalar(v)}`, (m) => setIn(m, path(key), v)); }
  for (const v of [0, 61, -1, "fast", [0.5]] as Value[]) mutated(`deploy.healthcheck.interval: ${scalar(v)}`, (m) => setIn(m, ["deploy", "healthcheck", "interval"], v));
  for (const v of [{ a: 1 }, "togo-driver-x", 5, [5], ["Bad Name"], [null]] as Value[]) mutated(`plugins: ${scalar(v)}`, (m) => setIn(m, ["plugins"], v));
  for (const v of ["pulumi", "", "CDKTF"]) mutated(`terraform.engine: ${v}`, (m) => setIn(m, ["terraform", "engine"], v));
  for (const v of [[1], { NESTED: { a: 1 } }, { "BAD-NAME": "x" }, { "1ABC": "x" }, { A: [1, 2] }, { A: null }] as Value[]) mutated(`deploy.env: ${scalar(v)}`, (m) => setIn(m, ["deploy", "env"], v));
  for (const v of [{ DB: "vault:x" }, { DB: 5 }, { DB: "" }, { "bad name": "env:X" }] as Value[]) mutated(`deploy.secrets: ${scalar(v)}`, (m) => setIn(m, ["deploy", "secrets"], v));
  mutated("state without bucket", (m) => setIn(m, ["state"], { backend: "s3", key: "k", region: "eu-west-1" }));
  mutated("state backend gcs", (m) => setIn(m, ["state"], { backend: "gcs", bucket: "b", key: "k", region: "eu-west-1" }));
  mutated("state endpoint not a URL", (m) => setIn(m, ["state"], { backend: "s3", bucket: "b", key: "k", region: "r", endpoint: "not a url" }));

  // Unknown keys, typos (did-you-mean) and random names, at every level.
  for (let i = 0; i < 24; i++) {
    const level = r.pick(LEVELS);
    const key = r.next() < 0.5 ? typo(r, r.pick(KNOWN[level])) : `zz${Math.floor(r.next() * 1e6).toString(36)}`;
    if (KNOWN[level].includes(key)) continue;
    mutated(`unknown key ${level ? `${level}.` : ""}${key}`, (m) => setIn(m, [...path(level), key], r.pick(["x", 1, true, { a: 1 }] as Value[])));
  }

  // Unquoted env values YAML would read as other text.
  for (let i = 0; i < 20; i++) {
    const v = r.pick(ODD_NUMBERS);
    mutated(`env ODD: ${v}`, (m) => setIn(m, ["deploy", "env", `ODD_${i}`], new Raw(v)));
  }

  // NUL bytes: escaped in a double-quoted value, raw in a plain one, in a key.
  const stringPaths = ["deploy.run", "deploy.binary", "deploy.build_cmd", "app", "deploy.env.NAME", "hooks.pre_deploy", "deploy.options.note", "deploy.secrets.DB"];
  for (const key of stringPaths) mutated(`NUL escaped in ${key}`, (m) => setIn(m, path(key), key.endsWith("DB") ? "env:A\u0000B" : `a\u0000b`));
  for (let i = 0; i < 4; i++) mutated(`raw NUL byte ${i}`, (m) => setIn(m, ["deploy", "env", "RAW"], new Raw(`x${"\u0000".repeat(i + 1)}y`)));
  mutated("NUL in a key", (m) => setIn(m, ["deploy", "env", "A\u0000B"], "x"));

  // Reserved keys at every level.
  for (const level of [...LEVELS, "deploy.env", "deploy.options", "deploy.secrets"]) {
    for (const key of ["__proto__", "constructor", "prototype"]) {
      if (r.next() < 0.6) mutated(`reserved ${level}.${key}`, (m) => setIn(m, [...path(level), key], r.pick([{ app: "evil" }, "x", 1] as Value[])));
    }
  }

  // Bad interpolation in string values.
  for (let i = 0; i < 14; i++) {
    const key = r.pick(["deploy.run", "deploy.binary", "deploy.domain", "deploy.env.X", "hooks.post_deploy", "deploy.healthcheck.path", "terraform.binary"]);
    const ref = r.pick(BAD_REFS);
    mutated(`${key}: ${ref}`, (m) => setIn(m, path(key), ref));
  }

  // Huge strings where length or content is wrong, and huge valid ones beside a wrong key.
  for (const [key, size] of [["app", 300_000], ["deploy.domain", 100_000], ["deploy.host", 50_000], ["deploy.user", 70_000], ["deploy.region", 10_000], ["deploy.image", 200_000], ["deploy.provider", 5_000]] as const) {
    mutated(`huge ${key} (${size})`, (m) => setIn(m, path(key), "a".repeat(size - 1) + "!"));
  }
  mutated("huge valid run beside a bad port", (m) => {
    setIn(m, ["deploy", "run"], `node ${"x".repeat(600_000)}`);
    setIn(m, ["deploy", "port"], 0);
  });
  mutated(`huge unknown key`, (m) => setIn(m, ["deploy", "k".repeat(20_000)], 1));
  add("file over 1 MiB (a comment)", `app: fuzz\n# ${"x".repeat(1_100_000)}\n`);
  add("file over 1 MiB (one string)", `app: "${"y".repeat(1_200_000)}"\n`);

  // Deep nesting, flow and block, under a key that exists.
  for (const depth of [33, 40, 200, 1_000, 5_000, 20_000]) {
    const open = r.next() < 0.5 ? ["[", "]"] : ["{a: ", "}"];
    mutated(`flow nesting ${depth}`, (m) => setIn(m, ["deploy", "options", "o"], new Raw(`${open[0].repeat(depth)}1${open[1].repeat(depth)}`)));
  }
  for (const depth of [34, 100, 400]) {
    const block = Array.from({ length: depth }, (_, i) => `${" ".repeat(2 + i)}k${i}:`).join("\n");
    add(`block nesting ${depth}`, `${emit(base())}\nnested:\n${block} 1\n`);
  }
  add("block nesting in a list", `app: fuzz\ndeploy:\n  options:\n${Array.from({ length: 60 }, (_, i) => `${" ".repeat(4 + 2 * i)}- `).join("\n")}x\n`);

  // Aliases: billion laughs of several shapes, and an alias to an unknown anchor.
  for (let i = 0; i < 6; i++) add(`billion laughs ${i}`, `${emit(base())}\nlaughs:\n${billionLaughs(r)}\n`);
  add("undefined alias", `${emit(base())}\nextra: *nowhere\n`);
  add("alias cycle", `app: &a fuzz\ndeploy: &d\n  provider: local\n  self: *d\n`);

  // YAML syntax: unbalanced brackets, tabs, duplicate keys, bad indentation, two documents.
  add("unclosed flow sequence", `${emit(base())}\nplugins: [a, b\n`);
  add("unclosed flow mapping", `${emit(base())}\nstate: {backend: s3\n`);
  add("unclosed quote", `${emit(base())}\nextra: "never closed\n`);
  add("tab indentation", emit(base()).replace("  provider:", "\tprovider:") + "\n");
  add("duplicate key", `${emit(base())}\napp: again\n`);
  add("duplicate nested key", emit(base()).replace("  run:", "  binary: again\n  run:") + "\n");
  add("bad indentation", emit(base()).replace("  binary:", "     binary:") + "\n");
  add("two documents", `${emit(base())}\n---\napp: other\n`);
  add("directive garbage", `%FOO bar\n---\n${emit(base())}\n`);
  add("key without value in flow", `${emit(base())}\nx: {a, b: }\n  - y\n`);

  // Tags that do not give plain values.
  for (const tag of ["!!binary aGVsbG8=", "!!timestamp 2001-12-14", "!!set {a, b}", "!foo x", "!!omap [a: 1]", "!<tag:example.com:x> y"]) {
    mutated(`tag ${tag}`, (m) => setIn(m, ["deploy", "env", "TAGGED"], new Raw(tag)));
  }

  // Not a mapping at all.
  for (const text of ["", "   \n", "# only a comment\n", "null\n", "~\n", "42\n", "hello\n", "- app\n- deploy\n", "[]\n", "\"just a string\"\n", "---\n...\n"]) add(`not a mapping: ${JSON.stringify(text)}`, text);

  // Binary garbage, and garbage spliced into a valid file.
  for (let i = 0; i < 16; i++) {
    const bytes = Buffer.alloc(r.int(1, 4096));
    for (let j = 0; j < bytes.length; j++) bytes[j] = r.int(0, 255);
    add(`garbage ${i} (${bytes.length} bytes)`, bytes);
  }
  for (let i = 0; i < 10; i++) {
    const text = Buffer.from(emit(base()));
    const at = r.int(0, text.length - 1);
    const junk = Buffer.from(Array.from({ length: r.int(1, 8) }, () => r.pick([0x00, 0x01, 0x07, 0x1b, 0x7f, 0xfe, 0xff, 0xc3, 0x80, 0x09, 0x5b, 0x7b, 0x26, 0x2a, 0x21])));
    // Keep the file invalid whatever the junk does: the app name is wrong too.
    add(`spliced junk ${i}`, Buffer.concat([Buffer.from("app: Not_Valid\n"), text.subarray(text.indexOf("\n") + 1, at), junk, text.subarray(at), Buffer.from("\n")]));
  }
  add("UTF-16 file", Buffer.from(`\ufeff${emit(base())}\nport: x\n`, "utf16le"));

  // Out of range and unknown provider.
  for (const [key, v] of [["deploy.port", 70_000], ["deploy.app_port", 0], ["deploy.versions_to_keep", 101], ["deploy.healthcheck.timeout", 3601]] as const) mutated(`${key}: ${v}`, (m) => setIn(m, path(key), v));
  for (const p of ["heroku", "Local", "local driver"]) mutated(`deploy.provider: ${p}`, (m) => setIn(m, ["deploy", "provider"], p));
  mutated("binary outside the project", (m) => setIn(m, ["deploy", "binary"], "../../etc/passwd"));
  mutated("env sets PORT", (m) => setIn(m, ["deploy", "env", "PORT"], 8080));

  return out;
}
