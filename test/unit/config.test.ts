// togo.yaml validation: every bad file is refused as a whole, before anything runs (exit 2), with
// the key path, the value and what is expected; nothing is created on disk.
import { readdirSync } from "node:fs";
import { cleanupTempDirs, helloProject, togo } from "../helpers/index.js";
import { parseConfig } from "../../src/config/load.js";
import { ConfigError } from "../../src/core/errors.js";

afterAll(cleanupTempDirs);

const base = (deploy: string, top = "") => `app: hello\n${top}deploy:\n  provider: local\n  binary: server.js\n  run: node server.js\n${deploy}`;

// [name, togo.yaml, a key path the message must name, a fragment of what it must say]
const INVALID: [string, string, string, string][] = [
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
  ["TOGO_PORT not a number", base(""), "deploy.port (from TOGO_PORT)", '"abc"'],
  ["vps option misspelt", base("  host: 10.0.0.5\n  user: deploy\n  options: { instal_caddy: true }\n").replace("provider: local", "provider: vps"), "deploy.options.instal_caddy", 'did you mean "install_caddy"'],
  ["vps without host", base("  user: deploy\n").replace("provider: local", "provider: vps"), "deploy.host", "is required for the vps driver"],
];

describe("invalid togo.yaml is refused before anything runs", () => {
  test.each(INVALID)("%s", async (_name, yaml, key, fragment) => {
    const dir = helloProject(yaml);
    const before = readdirSync(dir).sort();
    const env = _name === "TOGO_PORT not a number" ? { TOGO_PORT: "abc" } : undefined;
    const r = await togo(["deploy"], { cwd: dir, env });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(key);
    expect(r.stderr).toContain(fragment);
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

  test("state: s3 carries its settings", () => {
    const spec = parseConfig(base("", "state:\n  backend: s3\n  bucket: b\n  key: k.tfstate\n  region: eu-west-1\n  endpoint: http://127.0.0.1:9000\n"), "/p/togo.yaml", {});
    expect(spec.state).toEqual({ backend: "s3", bucket: "b", key: "k.tfstate", region: "eu-west-1", useLockfile: true, endpoint: "http://127.0.0.1:9000", options: {} });
  });
});
