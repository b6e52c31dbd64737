// The vps stack (synthesized JSON, cdktf Testing), the bootstrap script (run for real under sh as
// root against temp paths, twice, to show it is idempotent) and the driver's pure decisions:
// validation, options, service choice, host key pinning, URL.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { Testing } from "cdktf";
import type {} from "cdktf/lib/testing/adapters/jest.js";
import { appUrl, bootstrapScript, pinHostKey, readVpsOptions, VpsDriver } from "../../drivers/vps/index.js";
import { chooseService } from "../../src/ship/service/index.js";
import { parseConfig } from "../../src/config/load.js";
import { createReporter } from "../../src/core/log.js";
import type { Spec } from "../../src/core/spec.js";
import { UNKNOWN_HOST_KEY, VpsStack, type VpsStackProps } from "../../stacks/vps.js";
import { cleanupTempDirs, tempDir } from "../helpers/index.js";

afterAll(cleanupTempDirs);
Testing.setupJest();

const ED = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
const EC = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrPo=";

function props(over: Partial<VpsStackProps> = {}): VpsStackProps {
  return {
    projectDir: "/tmp/project",
    app: "hello",
    host: "203.0.113.10",
    user: "deploy",
    port: 2222,
    appDir: "~/apps/hello",
    identityFile: "/home/me/.ssh/id_ed25519",
    hostKey: ED,
    bootstrap: "echo bootstrap",
    bootstrapSha256: "abc",
    url: "https://hello.example.com",
    hasSystemd: "true",
    hasCaddy: "false",
    ...over,
  };
}

function synth(p: VpsStackProps): { json: string; stack: Record<string, any> } {
  const json = Testing.synth(new VpsStack(Testing.app(), "hello-vps", p));
  return { json, stack: JSON.parse(json) };
}

test("one terraform_data: remote-exec over a pinned ssh connection, replaced when the script or host fields change", () => {
  const { json, stack } = synth(props());
  expect(json).toHaveResource({ tfResourceType: "terraform_data" });
  const data = stack.resource.terraform_data.bootstrap;
  expect(data.triggers_replace).toEqual({ bootstrap_sha256: "abc", host: "203.0.113.10", user: "deploy", port: "2222", app_dir: "~/apps/hello" });
  expect(data.input).toEqual({ host: "203.0.113.10", user: "deploy", app_dir: "~/apps/hello", url: "https://hello.example.com", has_systemd: "true", has_caddy: "false" });
  expect(data.connection).toEqual({
    type: "ssh",
    host: "203.0.113.10",
    user: "deploy",
    port: 2222,
    host_key: ED,
    private_key: '${file("/home/me/.ssh/id_ed25519")}',
    agent: "false",
    timeout: "1m",
  });
  expect(data.provisioner).toEqual([{ "remote-exec": { inline: ["echo bootstrap"] } }]);
  expect(Object.keys(stack.output).sort()).toEqual(["app_dir", "has_caddy", "has_systemd", "host", "url", "user"]);
  expect(stack.output.has_systemd.value).toBe(`${"$"}{terraform_data.bootstrap.output["has_systemd"]}`);
  expect(stack.terraform.backend.local.path).toBe("/tmp/project/terraform.hello-vps.tfstate");
  expect(stack.provider).toBeUndefined(); // built-ins only: nothing to download
});

test("no key file means the ssh-agent; an unknown host key fails closed instead of skipping verification", () => {
  const { stack } = synth(props({ identityFile: undefined, hostKey: undefined }));
  const c = stack.resource.terraform_data.bootstrap.connection;
  expect(c.agent).toBe("true");
  expect(c.private_key).toBeUndefined();
  expect(c.host_key).toBe(UNKNOWN_HOST_KEY);
});

test("the bootstrap is idempotent: layout, systemd check, Caddy dir and import line, exactly once", async () => {
  const root = tempDir();
  const home = join(root, "home");
  mkdirSync(home);
  const caddyfile = join(root, "Caddyfile");
  writeFileSync(caddyfile, ":80 {\n\trespond hi\n}\n");
  const s = bootstrapScript({ appDir: "~/apps/hello", installCaddy: false, caddyDir: join(root, "togo.d"), caddyfile });
  const run = () => execa("sh", ["-c", s], { env: { HOME: home, PATH: process.env.PATH! }, extendEnv: false, all: true, reject: false });
  const first = await run();
  expect({ code: first.exitCode, out: first.all }).toMatchObject({ code: 0 });
  expect(first.all).toContain("systemd: no (PID 1 is");
  expect(first.all).toMatch(/caddy: v?2\./);
  const second = await run();
  expect(second.exitCode).toBe(0);
  const appDir = join(home, "apps", "hello");
  expect(statSync(appDir).mode & 0o777).toBe(0o700);
  for (const d of ["logs", "run", ".uploads"]) expect(existsSync(join(appDir, d))).toBe(true);
  expect(statSync(join(root, "togo.d")).isDirectory()).toBe(true);
  expect(readFileSync(caddyfile, "utf8")).toBe(`:80 {\n\trespond hi\n}\n\nimport ${join(root, "togo.d")}/*.caddy\n`);

  const withInstall = bootstrapScript({ appDir: "~/apps/hello", installCaddy: true, caddyDir: "/etc/caddy/togo.d", caddyfile: "/etc/caddy/Caddyfile" });
  expect(withInstall).toContain("apt-get install -y -q caddy");
  expect(withInstall).toContain("dnf install -y caddy");
  expect(withInstall).toContain("apk add --no-cache caddy");
  expect(s).not.toContain("apt-get");
});

function spec(yaml: string): Spec {
  const dir = tempDir();
  writeFileSync(join(dir, "id"), "not a real key");
  return parseConfig(yaml.replaceAll("$DIR", dir), join(dir, "togo.yaml"), {});
}

const BASE = `app: hello\ndeploy:\n  provider: vps\n  host: 203.0.113.10\n  user: deploy\n  identity_file: $DIR/id\n  binary: server.js\n  run: node server.js\n`;

test("validate names every missing or bad key before anything runs", () => {
  const driver = new VpsDriver({ log: createReporter({ quiet: true }), opts: { force: false, yes: false, lockWait: 0, json: false } });
  expect(driver.validate(spec(BASE))).toEqual([]);
  const bad = driver.validate(spec(`app: hello\ndeploy:\n  provider: vps\n  identity_file: $DIR/missing\n  options: { service: launchd, install_caddy: "yes", caddy_dir: "etc/caddy", unit_template: nope.tmpl, upload: ftp }\n`));
  expect(bad.map((p) => p.path)).toEqual([
    "deploy.host",
    "deploy.user",
    "deploy.run",
    "deploy.binary",
    "deploy.identity_file",
    "deploy.options.service",
    "deploy.options.install_caddy",
    "deploy.options.caddy_dir",
    "deploy.options.unit_template",
    "deploy.options.upload",
  ]);
  expect(bad.find((p) => p.path === "deploy.options.service")).toEqual({ path: "deploy.options.service", value: "launchd", expected: "expected one of auto, systemd, process" });
});

test("options, service choice, URL", () => {
  const s = spec(`${BASE}  domain: hello.example.com\n  options: { install_caddy: true, https: false, bwlimit: 512 }\n`);
  const { options, problems } = readVpsOptions(s);
  expect(problems).toEqual([]);
  expect(options).toMatchObject({ service: "auto", installCaddy: true, https: false, bwlimit: 512, caddyDir: "/etc/caddy/togo.d", caddyfile: "/etc/caddy/Caddyfile", hostKeyChecking: "accept-new", upload: "auto" });
  expect(appUrl(s, options!)).toBe("http://hello.example.com");
  expect(appUrl(spec(BASE), readVpsOptions(spec(BASE)).options!)).toBe("http://203.0.113.10:3000");

  expect(chooseService("auto", { systemd: true, userSystemd: true }, "h")).toBe("systemd");
  expect(chooseService("auto", { systemd: true, userSystemd: false }, "h")).toBe("process");
  expect(chooseService("auto", { systemd: false, userSystemd: false }, "h")).toBe("process");
  expect(chooseService("process", { systemd: true, userSystemd: true }, "h")).toBe("process");
  expect(() => chooseService("systemd", { systemd: true, userSystemd: false }, "h")).toThrow(/loginctl enable-linger/);
  expect(() => chooseService("systemd", { systemd: false, userSystemd: false }, "h")).toThrow(/does not run systemd/);
});

test("the pinned host key follows terraform's client preference among the known keys", () => {
  expect(pinHostKey(`[h]:2222 ${ED}\n`, "h", 2222)).toBe(ED);
  expect(pinHostKey(`[h]:2222 ${ED}\n[h]:2222 ${EC}\n`, "h", 2222)).toBe(EC);
  expect(pinHostKey(`h ${ED}\n`, "h", 2222)).toBeUndefined();
});

test("stacks(): the host key recorded by provision, never key contents", () => {
  const s = spec(BASE);
  const driver = new VpsDriver({ log: createReporter({ quiet: true }), opts: { force: false, yes: false, lockWait: 0, json: false } });
  mkdirSync(join(s.dir, ".togo", "hosts"), { recursive: true });
  writeFileSync(join(s.dir, ".togo", "hosts", "hello-vps.json"), JSON.stringify({ hostKey: ED, hasSystemd: "true", hasCaddy: "false" }));
  const [stack] = driver.stacks(s);
  expect(stack.name).toBe("hello-vps");
  expect(stack.props).toMatchObject({ host: "203.0.113.10", user: "deploy", port: 22, appDir: "~/apps/hello", hostKey: ED, hasSystemd: "true", identityFile: join(s.dir, "id") });
  expect(JSON.stringify(stack.props)).not.toContain("not a real key");
});
