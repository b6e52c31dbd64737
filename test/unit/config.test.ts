// togo.yaml validation: every bad file is refused as a whole, before anything runs (exit 2), with
// the key path, the value and what is expected; nothing is created on disk.
import { readdirSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { cleanupTempDirs, helloProject, togo } from "../helpers/index.js";
import { parseConfig, stageStateKey } from "../../src/config/load.js";
import { workspaceOf } from "../../src/core/workspace.js";
import { versionTag } from "../../drivers/docker/image/ref.js";
import { ConfigError } from "../../src/core/errors.js";

afterAll(cleanupTempDirs);

const base = (deploy: string, top = "") => `app: hello\n${top}deploy:\n  provider: local\n  binary: server.js\n  run: node server.js\n${deploy}`;

const billionLaughs = ["a: &a [x, x, x, x, x, x, x, x, x]", ..."bcdefgh".split("").map((c, i) => `${c}: &${c} [${Array(9).fill(`*${"abcdefgh"[i]}`).join(", ")}]`)].join("\n");
const SECRET = "hunter2-from-the-environment";

// [name, togo.yaml, a key path the message must name, a fragment of what it must say, environment]
const INVALID: [string, string, string, string, Record<string, string>?][] = [
  ["missing app", "deploy:\n  provider: local\n", "app", "is required"],
  ["app with capitals", base("").replace("app: hello", "app: Hello"), "app", '"Hello"'],
  ["app too long", base("").replace("app: hello", `app: a${"b".repeat(45)}`), "app", "at most 41"],
  ["unknown top-level key", `${base("")}depoly: {}\n`, "depoly", 'did you mean "deploy"'],
  ["unknown deploy key", base("  bild_cmd: make\n"), "deploy.bild_cmd", 'did you mean "build_cmd"'],
  ["unknown healthcheck key", base("  healthcheck: { pth: /up }\n"), "deploy.healthcheck.pth", 'did you mean "path"'],
  ["port not a number", base("  port: twenty-two\n"), "deploy.port", '"twenty-two"'],
  ["port out of range", base("  port: 70000\n"), "deploy.port", "1 to 65535"],
  ["app_port fractional", base("  app_port: 30.5\n"), "deploy.app_port", "whole number"],
  ["healthcheck path without slash", base("  healthcheck: { path: up }\n"), "deploy.healthcheck.path", 'starting with "/"'],
  ["healthcheck timeout zero", base("  healthcheck: { timeout: 0 }\n"), "deploy.healthcheck.timeout", "1 to 3600"],
  ["versions_to_keep zero", base("  versions_to_keep: 0\n"), "deploy.versions_to_keep", "1 to 100"],
  ["env value a mapping", base("  env: { NESTED: { a: 1 } }\n"), "deploy.env.NESTED", "string, number or boolean"],
  ["env name with a dash", base("  env: { BAD-NAME: x }\n"), "deploy.env.BAD-NAME", "letters, digits and _"],
  ["env sets PORT", base("  env: { PORT: 8080 }\n"), "deploy.env.PORT", "app_port"],
  ["secret with an unknown scheme", base("  secrets: { DB: 'vault:x' }\n"), "deploy.secrets.DB", "env:NAME"],
  ["secret also in env", base("  env: { DB: x }\n  secrets: { DB: 'env:DB_URL' }\n"), "deploy.secrets.DB", "also under deploy.env"],
  ["unset variable", base("  domain: ${TOGO_TEST_UNSET_VAR}\n"), "deploy.domain", "TOGO_TEST_UNSET_VAR is not set"],
  ["bad interpolation", base("  domain: ${1x}\n"), "deploy.domain", "not a variable reference"],
  ["YAML syntax error", "app: hello\ndeploy: [\n", "(file)", "YAML syntax error"],
  ["duplicate key", `${base("")}app: again\n`, "(file)", "YAML syntax error"],
  ["a list, not a mapping", "- app\n- deploy\n", "(file)", "expected a mapping"],
  ["engine unknown", base("", "terraform:\n  engine: pulumi\n"), "terraform.engine", "cdktf or terraform"],
  ["plugin mirror missing", base("", "terraform:\n  plugin_mirror: /nonexistent/mirror\n"), "terraform.plugin_mirror", "no such directory"],
  ["state backend unknown", base("", "state:\n  backend: gcs\n  bucket: b\n  key: k\n  region: eu-west-1\n"), "state.backend", "expected s3"],
  ["state without bucket", base("", "state:\n  backend: s3\n  key: k\n  region: eu-west-1\n"), "state.bucket", "is required"],
  ["domain not a domain", base("  domain: 'not a domain'\n"), "deploy.domain", "domain name"],
  ["region malformed", base("  region: Europe\n"), "deploy.region", "eu-west-1"],
  ["user with spaces", base("  user: 'deploy user'\n"), "deploy.user", "Unix user name"],
  ["binary outside project", base("  binary: ../secret.txt\n").replace("  binary: server.js\n", ""), "deploy.binary", "inside the project"],
  ["unknown provider", base("").replace("provider: local", "provider: heroku"), "heroku", "known drivers"],
  ["local driver without run", "app: hello\ndeploy:\n  provider: local\n  binary: server.js\n", "deploy.run", "is required"],
  ["TOGO_PORT not a number", base(""), "deploy.port (from TOGO_PORT)", '"abc"', { TOGO_PORT: "abc" }],
  ["vps option misspelt", base("  host: 10.0.0.5\n  user: deploy\n  options: { instal_caddy: true }\n").replace("provider: local", "provider: vps"), "deploy.options.instal_caddy", 'did you mean "install_caddy"'],
  ["vps without host", base("  user: deploy\n").replace("provider: local", "provider: vps"), "deploy.host", "is required for the vps driver"],
  // YAML reads these unquoted env values as other text than was written.
  ["env 01234 (leading zero)", base("  env: { ZIP: 01234 }\n"), "deploy.env.ZIP", 'read by YAML as 1234; quote it to keep the text: ZIP: "01234"'],
  ["env 1.10 (trailing zero)", base("  env: { VERSION: 1.10 }\n"), "deploy.env.VERSION", 'read by YAML as 1.1; quote it to keep the text: VERSION: "1.10"'],
  ["env 0x1F (hex)", base("  env: { MASK: 0x1F }\n"), "deploy.env.MASK", "read by YAML as 31"],
  ["env 0o17 (octal)", base("  env: { MODE: 0o17 }\n"), "deploy.env.MODE", "read by YAML as 15"],
  ["env 1e3 (exponent)", base("  env: { N: 1e3 }\n"), "deploy.env.N", "read by YAML as 1000"],
  ["env .5", base("  env: { RATIO: .5 }\n"), "deploy.env.RATIO", "read by YAML as 0.5"],
  ["env +1", base("  env: { OFFSET: +1 }\n"), "deploy.env.OFFSET", "read by YAML as 1"],
  ["env TRUE", base("  env: { FLAG: TRUE }\n"), "deploy.env.FLAG", "read by YAML as true"],
  ["env .inf", base("  env: { LIMIT: .inf }\n"), "deploy.env.LIMIT", "read by YAML as Infinity"],
  ["NUL in a value", base('  build_cmd: "make\\0 all"\n'), "deploy.build_cmd", "NUL byte"],
  ["NUL in an env value", base('  env: { A: "x\\0y" }\n'), "deploy.env.A", "NUL byte"],
  ["__proto__ as a key", `${base("")}__proto__: { app: evil }\n`, "__proto__", 'reserved key "__proto__"'],
  ["__proto__ under env", base("  env:\n    __proto__: x\n"), "deploy.env.__proto__", "reserved key"],
  ["constructor under env", base("  env: { constructor: x }\n"), "deploy.env.constructor", "reserved key"],
  ["prototype under options", base("  options: { prototype: 1 }\n"), "deploy.options.prototype", "reserved key"],
  ["alias bomb", `${base("")}x:\n${billionLaughs.replace(/^/gm, "  ")}\n`, "(file)", "too many YAML aliases"],
  ["deep flow nesting", base(`  options: { o: ${"[".repeat(5000)}${"]".repeat(5000)} }\n`), "(file)", "nesting deeper than 32 levels"],
  ["deep block nesting", base(`  options:\n${Array.from({ length: 200 }, (_, i) => `${" ".repeat(4 + i)}k:`).join("\n")} 1\n`), "(file)", "nesting deeper than 32 levels"],
  ["YAML syntax error with its place", "app: hello\ndeploy:\n  provider: local\n  run: [node\n", "(file)", "YAML syntax error at line 5, column 1"],
  ["a YAML 1.1 tag", base("  env: { BLOB: !!binary aGVsbG8= }\n"), "deploy.env.BLOB", "YAML tag !!binary"],
  ["interpolated value redacted", base("  domain: ${TOGO_TEST_DOMAIN}\n"), "deploy.domain", 'got "(redacted)"; expected a domain name such as hello.example.com (the value comes from ${TOGO_TEST_DOMAIN})', { TOGO_TEST_DOMAIN: `${SECRET} x` }],
  ["interpolated option redacted", base("  host: 10.0.0.5\n  user: deploy\n  options: { host_key_checking: '${TOGO_TEST_HKC}' }\n").replace("provider: local", "provider: vps"), "deploy.options.host_key_checking", 'got "(redacted)"; expected one of accept-new, yes (the value comes from ${TOGO_TEST_HKC})', { TOGO_TEST_HKC: SECRET }],
  // Stages: every stage's section is checked; the chosen one is merged, then validated as a whole.
  ["unknown stage (TOGO_STAGE)", `${base("")}stages:\n  staging: { deploy: { app_port: 4000 } }\n`, "stages", 'no stage "prod" (from TOGO_STAGE); known stages: staging', { TOGO_STAGE: "prod" }],
  ["a stage when the file has none", base(""), "stages", "this file defines none", { TOGO_STAGE: "staging" }],
  ["a stage renaming the app", `${base("")}stages:\n  staging: { app: other }\n`, "stages.staging.app", "keeps the app's name"],
  ["a stage key misspelt", `${base("")}stages:\n  staging: { deplyo: { app_port: 4000 } }\n`, "stages.staging.deplyo", "did you mean deploy?"],
  ["a stage name with capitals", `${base("")}stages:\n  Staging: {}\n`, "stages.Staging", "lowercase letters"],
  ["stages not a mapping", `${base("")}stages: [staging]\n`, "stages", "a mapping of stage name to overrides"],
  // artifacts: and deploy.artifact (the artifact store and the build proxy).
  ["deploy.artifact unknown", base("  artifact: registry\n"), "deploy.artifact", "expected build (build_cmd + binary here) or store"],
  ["artifacts key misspelt", base("", "artifacts:\n  sever: http://127.0.0.1:7070\n"), "artifacts.sever", 'did you mean "server"'],
  ["artifacts.server not http", base("", "artifacts:\n  server: ftp://proxy:21\n"), "artifacts.server", "http(s) URL of a build proxy"],
  ["artifacts.server with a query", base("", "artifacts:\n  server: 'http://127.0.0.1:7070/?x=1'\n"), "artifacts.server", "without ?query"],
  ["artifacts.store a bad bucket", base("", "artifacts:\n  store: s3://Bad_Bucket/p\n"), "artifacts.store", "s3://bucket/prefix"],
  ["artifacts.store an http URL", base("", "artifacts:\n  store: http://proxy:7070\n"), "artifacts.store", "for a build proxy set artifacts.server"],
  ["artifacts.git_url without {repo}", base("", "artifacts:\n  git_url: https://git.example.com/app.git\n"), "artifacts.git_url", "with {repo}"],
  ["artifacts.git_url unknown placeholder", base("", "artifacts:\n  git_url: 'https://{host}/{owner}/{repo}.git'\n"), "artifacts.git_url", "only the placeholders {remote}, {owner} and {repo}"],
  ["artifacts.endpoint without an s3 store", base("", "artifacts:\n  endpoint: http://127.0.0.1:9000\n"), "artifacts.endpoint", "s3://bucket/prefix store"],
  ["docker driver with artifact: store", "app: hello\ndeploy:\n  provider: docker\n  image: registry.example.com/hello\n  options: { source: registry }\n  artifact: store\n", "deploy.artifact", "the docker driver ships an image"],
  ["a bad value from the stage", `${base("")}stages:\n  staging: { deploy: { app_port: x } }\n`, "deploy.app_port", '"x"', { TOGO_STAGE: "staging" }],
];

describe("invalid togo.yaml is refused before anything runs", () => {
  // A rest parameter: jest takes a callback with more parameters than a row has for one wanting done().
  test.each(INVALID)("%s", async (...row) => {
    const [, yaml, key, fragment, env] = row;
    const dir = helloProject(yaml);
    const before = readdirSync(dir).sort();
    const started = Date.now();
    const r = await togo(["deploy"], { cwd: dir, env, timeout: 20_000 });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^togo: ${dir}/togo.yaml: \\d+ problems?; nothing was run\n`));
    expect(r.stderr).toContain(key);
    expect(r.stderr).toContain(fragment);
    expect(r.stderr).not.toContain(SECRET);
    expect(r.stderr).not.toMatch(/Maximum call stack|^\s+at /m);
    expect(r.stdout).toBe("");
    expect(readdirSync(dir).sort()).toEqual(before); // no .togo/, no cdktf.out/, no state
  });

  test("at least 20 distinct invalid cases", () => {
    expect(new Set(INVALID.map((c) => c[1])).size).toBeGreaterThanOrEqual(20);
  });

  test("all problems of a file are reported at once", () => {
    const text = base("  port: 0\n  app_port: x\n  versions_to_keep: -1\n");
    try {
      parseConfig(text, "/p/togo.yaml", {});
      throw new Error("no error");
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const paths = (e as ConfigError).problems.map((p) => p.path).sort();
      expect(paths).toEqual(["deploy.app_port", "deploy.port", "deploy.versions_to_keep"]);
    }
  });

  test("a secret reference that is wrong is not echoed back", () => {
    expect(() => parseConfig(base("  secrets: { DB: 'postgres://u:hunter2@db' }\n"), "/p/togo.yaml", {})).toThrow(/\(redacted\)/);
    expect(() => parseConfig(base("  secrets: { DB: 'postgres://u:hunter2@db' }\n"), "/p/togo.yaml", {})).not.toThrow(/hunter2/);
  });
});

describe("what YAML would change or hide", () => {
  const env = (text: string, vars: Record<string, string> = {}) => parseConfig(base(`  env:\n${text}`), "/p/togo.yaml", vars).env;

  test("unquoted env values whose text round-trips stay allowed, as that text", () => {
    expect(env("    A: 3000\n    B: true\n    C: 1.5\n    D: -1\n    E: false\n    F: 0\n    G: yes\n")).toEqual({ A: "3000", B: "true", C: "1.5", D: "-1", E: "false", F: "0", G: "yes" });
    expect(env(`    A: "01234"\n    B: '1.10'\n    C: "0x1F"\n`)).toEqual({ A: "01234", B: "1.10", C: "0x1F" });
  });

  test("every odd number is reported at once, with the key and how to quote it", () => {
    try {
      env("    A: 01234\n    B: 1.0\n    C: -0\n    D: True\n    E: 12345678901234567890\n");
      throw new Error("no error");
    } catch (e) {
      expect((e as ConfigError).problems.map((p) => p.path)).toEqual(["deploy.env.A", "deploy.env.B", "deploy.env.C", "deploy.env.D", "deploy.env.E"]);
      expect((e as ConfigError).message).toContain('deploy.env.E: unquoted 12345678901234567890 is read by YAML as 12345678901234567000; quote it to keep the text: E: "12345678901234567890"');
    }
  });

  test("an env value that is one reference keeps the variable's text", () => {
    expect(env("    ZIP: ${ZIP}\n    ON: ${ON}\n", { ZIP: "01234", ON: "true" })).toEqual({ ZIP: "01234", ON: "true" });
  });

  test("a %YAML 1.1 directive does not bring back 1.1's yes and octals", () => {
    expect(parseConfig(`%YAML 1.1\n---\n${base("  env: { A: yes, B: on }\n")}`, "/p/togo.yaml", {}).env).toEqual({ A: "yes", B: "on" });
  });

  test("a literal NUL byte in the file is refused with its key; one in a key too", () => {
    expect(() => parseConfig(base("  run: node\u0000server.js\n").replace("  run: node server.js\n", ""), "/p/togo.yaml", {})).toThrow(/deploy\.run: got "node\\u0000server\.js"; a NUL byte/);
    expect(() => parseConfig(base('  env: { "A\\0B": x }\n'), "/p/togo.yaml", {})).toThrow(/deploy\.env\."A\\u0000B": a NUL byte in a key/);
  });

  test("a NUL byte in a secret reference is refused without showing it", () => {
    const text = base('  secrets: { DB: "op://v/hunter2\\0/f" }\n');
    expect(() => parseConfig(text, "/p/togo.yaml", {})).toThrow(/deploy\.secrets\.DB: got "\(redacted\)"; a NUL byte/);
    expect(() => parseConfig(text, "/p/togo.yaml", {})).not.toThrow(/hunter2/);
  });

  test("a billion laughs is refused quickly, without expanding it", () => {
    const started = Date.now();
    expect(() => parseConfig(`${base("")}x:\n${billionLaughs.replace(/^/gm, "  ")}\n`, "/p/togo.yaml", {})).toThrow(/too many YAML aliases/);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test("an alias inside the anchor it names (a loop) is refused before anything walks it", () => {
    expect(() => parseConfig("app: hello\ndeploy: &d\n  provider: local\n  self: *d\n", "/p/togo.yaml", {})).toThrow(
      "deploy.self: the alias *d is inside the &d it refers to, a loop; write the values out",
    );
    expect(() => parseConfig("app: hello\nx: *nowhere\n", "/p/togo.yaml", {})).toThrow(/\/p\/togo\.yaml: 1 problem; nothing was run\n  \(file\): /);
  });

  test("nesting 100,000 deep is refused with its place, not a stack overflow", () => {
    const text = `app: ${"[".repeat(100_000)}${"]".repeat(100_000)}\n`;
    expect(() => parseConfig(text, "/p/togo.yaml", {})).toThrow(/\(file\): nesting deeper than 32 levels at line 1, column 37;/);
  });

  test("a file of megabytes is refused before it is parsed", () => {
    expect(() => parseConfig(`app: hello\n# ${"x".repeat(2 * 1024 * 1024)}\n`, "/p/togo.yaml", {})).toThrow(/is \d+ characters; a togo.yaml is a few hundred/);
  });

  test("YAML errors carry their line and column", () => {
    expect(() => parseConfig("app: hello\napp: again\n", "/p/togo.yaml", {})).toThrow("YAML syntax error at line 2, column 1: Map keys must be unique");
    expect(() => parseConfig("app: hello\n---\napp: other\n", "/p/togo.yaml", {})).toThrow(/a second YAML document at line 2, column 1/);
  });

  test("a value that came from the environment is redacted when it is wrong; one from a default is not", () => {
    expect(() => parseConfig(base("  region: ${R}\n"), "/p/togo.yaml", { R: "sk_live_123" })).toThrow('deploy.region: got "(redacted)"; expected a cloud region such as eu-west-1 (the value comes from ${R})');
    expect(() => parseConfig(base("  region: ${R}\n"), "/p/togo.yaml", { R: "sk_live_123" })).not.toThrow(/sk_live/);
    expect(() => parseConfig(base("  region: ${R:-Europe}\n"), "/p/togo.yaml", {})).toThrow('deploy.region: got "Europe"');
  });
});

describe("valid togo.yaml becomes a Spec", () => {
  test("defaults, interpolation and types", () => {
    const spec = parseConfig(base("  app_port: ${P:-4000}\n  env: { A: 1, B: true, C: 'x ${HOME_X}' }\n  domain: $${literal}.example.com\n".replace("$${literal}.example.com", "hello.example.com")), "/p/togo.yaml", { HOME_X: "y" });
    expect(spec.app).toBe("hello");
    expect(spec.provider).toBe("local");
    expect(spec.appPort).toBe(4000);
    expect(spec.env).toEqual({ A: "1", B: "true", C: "x y" });
    expect(spec.appDir).toBe("/p/.togo/hello");
    expect(spec.healthcheck).toEqual({ path: "/up", timeout: 30, interval: 0.25, settle: 2 });
    expect(spec.versionsToKeep).toBe(5);
    expect(spec.terraform).toEqual({ engine: "cdktf", binary: "terraform", pluginMirror: undefined });
    expect(spec.dir).toBe("/p");
  });

  test("$${ is a literal ${", () => {
    const spec = parseConfig(base("  env: { TEMPLATE: 'a $${NAME} b' }\n"), "/p/togo.yaml", {});
    expect(spec.env.TEMPLATE).toBe("a ${NAME} b");
  });

  test("DEPLOY_PROVIDER wins over deploy.provider", () => {
    expect(parseConfig(base(""), "/p/togo.yaml", { DEPLOY_PROVIDER: "vps" }).provider).toBe("vps");
    expect(parseConfig(base(""), "/p/togo.yaml", {}).provider).toBe("local");
  });

  test("TOGO_<KEY> overrides deploy keys", () => {
    const spec = parseConfig(base("  host: 10.0.0.1\n"), "/p/togo.yaml", { TOGO_HOST: "10.0.0.2", TOGO_APP_PORT: "8081" });
    expect(spec.host).toBe("10.0.0.2");
    expect(spec.appPort).toBe(8081);
  });

  test("artifacts: defaults (a store in .togo, the https git_url, artifact: build); paths from the project, ~ from home; a server's trailing / dropped", () => {
    const plain = parseConfig(base(""), "/p/togo.yaml", {});
    expect(plain.artifact).toBe("build");
    expect(plain.artifacts).toEqual({ store: "/p/.togo/artifacts", gitUrl: "https://{remote}/{owner}/{repo}.git", server: undefined, tokenFile: undefined, endpoint: undefined });
    const set = parseConfig(
      base("  artifact: store\n", "artifacts:\n  store: s3://togo-artifacts/builds\n  endpoint: http://127.0.0.1:9000\n  server: http://127.0.0.1:7070/\n  token_file: ~/.config/togo/artifacts.token\n  git_url: 'file:///srv/git/{owner}/{repo}.git'\n"),
      "/p/togo.yaml",
      {},
    );
    expect(set.artifact).toBe("store");
    expect(set.artifacts).toEqual({
      store: "s3://togo-artifacts/builds",
      endpoint: "http://127.0.0.1:9000",
      server: "http://127.0.0.1:7070",
      tokenFile: join(homedir(), ".config/togo/artifacts.token"),
      gitUrl: "file:///srv/git/{owner}/{repo}.git",
    });
    expect(parseConfig(base("", "artifacts:\n  store: builds\n  token_file: secrets/token\n"), "/p/togo.yaml", {}).artifacts).toMatchObject({ store: "/p/builds", tokenFile: "/p/secrets/token" });
    // A stage may point at its own store or proxy.
    const staged = parseConfig(`${base("", "artifacts:\n  server: http://127.0.0.1:7070\n")}stages:\n  ci: { artifacts: { server: 'http://10.0.0.9:7070' } }\n`, "/p/togo.yaml", {}, "ci");
    expect(staged.artifacts.server).toBe("http://10.0.0.9:7070");
  });

  test("state: s3 carries its settings", () => {
    const spec = parseConfig(base("", "state:\n  backend: s3\n  bucket: b\n  key: k.tfstate\n  region: eu-west-1\n  endpoint: http://127.0.0.1:9000\n"), "/p/togo.yaml", {});
    expect(spec.state).toEqual({ backend: "s3", bucket: "b", key: "k.tfstate", region: "eu-west-1", useLockfile: true, endpoint: "http://127.0.0.1:9000", options: {} });
  });
});

describe("stages: --stage NAME deep-merges stages.NAME over the file", () => {
  const file = `app: hello
deploy:
  provider: vps
  hosts: [10.0.0.1, 10.0.0.2]
  user: deploy
  env: { A: base, B: base }
  healthcheck: { path: /up, timeout: 10 }
state: { backend: s3, bucket: b, key: togo/hello.tfstate, region: eu-west-1 }
stages:
  staging:
    deploy: { hosts: [10.0.0.9], env: { B: staging }, healthcheck: { timeout: 20 }, domain: "\${STAGING_DOMAIN}" }
  pinned:
    state: { key: elsewhere/pinned.tfstate }
`;
  test("mappings merge, lists and scalars are replaced; the stage names the app dir and the state key", () => {
    const s = parseConfig(file, "/p/togo.yaml", { STAGING_DOMAIN: "staging.example.com" }, "staging");
    expect(s.stage).toBe("staging");
    expect(s.hosts).toEqual(["10.0.0.9"]);
    expect(s.env).toEqual({ A: "base", B: "staging" });
    expect(s.healthcheck).toMatchObject({ path: "/up", timeout: 20 });
    expect(s.domain).toBe("staging.example.com");
    expect(s.appDir).toBe("~/apps/hello-staging");
    expect(s.state?.key).toBe("togo/staging/hello.tfstate");
    expect(workspaceOf(s).stackName("vps")).toBe("hello-staging-vps");
  });
  test("without a stage the file is as it was: no stage, today's names; another stage's ${VAR} need not be set", () => {
    const s = parseConfig(file, "/p/togo.yaml", {});
    expect(s.stage).toBeUndefined();
    expect(s.hosts).toEqual(["10.0.0.1", "10.0.0.2"]);
    expect(s.appDir).toBe("~/apps/hello");
    expect(s.state?.key).toBe("togo/hello.tfstate");
    expect(workspaceOf(s).stackName("vps")).toBe("hello-vps");
  });
  test("TOGO_STAGE picks the stage when --stage is not given; --stage '' means none", () => {
    expect(parseConfig(file, "/p/togo.yaml", { TOGO_STAGE: "pinned" }).stage).toBe("pinned");
    expect(parseConfig(file, "/p/togo.yaml", { TOGO_STAGE: "pinned" }, "").stage).toBeUndefined();
    expect(parseConfig(file, "/p/togo.yaml", { TOGO_STAGE: "pinned", STAGING_DOMAIN: "s.example.com" }, "staging").stage).toBe("staging");
  });
  test("a stage that names its own state key keeps it", () => {
    expect(parseConfig(file, "/p/togo.yaml", {}, "pinned").state?.key).toBe("elsewhere/pinned.tfstate");
    expect(stageStateKey("hello.tfstate", "qa")).toBe("qa/hello.tfstate");
  });
  test("a stage's local app dir, docker tags and unit names carry it", () => {
    const local = parseConfig(`${base("")}stages: { qa: {} }\n`, "/p/togo.yaml", {}, "qa");
    expect(local.appDir).toBe("/p/.togo/hello-qa");
    expect(workspaceOf(local).qualifiedApp).toBe("hello-qa");
    expect(versionTag("1.2.0", "qa")).toBe("qa-1.2.0");
    expect(versionTag("1.2.0")).toBe("1.2.0");
  });
  test("a prototype name is no stage", () => {
    expect(() => parseConfig(file, "/p/togo.yaml", {}, "constructor")).toThrow(/no stage "constructor" \(from --stage\); known stages: staging, pinned/);
  });
});
