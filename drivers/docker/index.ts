// The `docker` driver: the app as a container on a Docker host. Provision = a CDKTF stack (the
// kreuzwerker/docker provider: network, image pinned by digest, container); Deploy = build, push to
// the registry named in `image` with skopeo, record the digest, apply the stack with it; Status =
// the stack's outputs + the container's state and health from `docker inspect`.
import { createHmac, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { execa } from "execa";
import type { ConfigProblem } from "../../src/core/errors.js";
import { OperationError, UsageError } from "../../src/core/errors.js";
import * as C from "./image/commands.js";
import { dockerHostOf, sshOpts } from "./image/host.js";
import {
  currentRelease,
  historyFile,
  markApplied,
  readHistory,
  recordPush,
  rollbackTarget,
  writeHistory,
  type History,
  type ImageRelease,
} from "./image/history.js";
import { readDockerOptions, type DockerOptions } from "./image/options.js";
import { providerProblem } from "./image/provider.js";
import { dockerBuildToLayout, localDigest, pushImage, remoteDigest } from "./image/push.js";
import { parseImageRef, repository, versionTag, withTag } from "./image/ref.js";
import { inspectContainer, LABEL_APP, mapContainer } from "./image/status.js";
import { registerDriver, type DriverContext } from "../../src/core/registry.js";
import { runBuildCmd } from "../../src/ship/deploy.js";
import { VERSION } from "../../src/ship/scripts.js";
import { resolveSecrets } from "../../src/config/secrets.js";
import type { Driver, LogOptions, Release, Result, Spec, StackSource, Status } from "../../src/core/spec.js";
import { apply, destroy, outputs, stackDir, synth } from "../../src/infra/runner.js";
import type { DockerStackProps } from "../../stacks/docker.js";
import { workspaceOf } from "../../src/core/workspace.js";
import { backendProps } from "../../src/infra/backend.js";

export function dockerStackName(spec: Spec): string {
  return workspaceOf(spec).stackName("docker");
}

function options(spec: Spec): DockerOptions {
  return readDockerOptions(spec).options;
}

function repo(spec: Spec): string {
  return repository(parseImageRef(spec.image!));
}

/** The container's health check command: options.healthcheck_cmd, else a probe of healthcheck.path. */
export function healthcheckTest(spec: Spec, o: DockerOptions): string[] | undefined {
  const cmd = o.healthcheckCmd;
  if (cmd === false) return undefined;
  if (Array.isArray(cmd)) return ["CMD", ...cmd];
  if (typeof cmd === "string") return ["CMD-SHELL", cmd];
  // Whichever HTTP client the image has: curl, busybox/GNU wget, or node (redirects are failures).
  const url = `http://127.0.0.1:${spec.appPort}${spec.healthcheck.path}`;
  return [
    "CMD-SHELL",
    `curl -fsS -o /dev/null ${url} || wget -q -O /dev/null ${url} || node -e "fetch('${url}',{redirect:'manual'}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"`,
  ];
}

export function appUrl(spec: Spec, o: DockerOptions): string {
  if (spec.domain) return `https://${spec.domain}`;
  if (!o.publish) return `http://${o.containerName}:${spec.appPort}`;
  const host = o.publish.ip !== "0.0.0.0" ? o.publish.ip : dockerHostOf(spec).hostname;
  return `http://${host.includes(":") ? `[${host}]` : host}:${o.publish.port}`;
}

/** The stack's whole input for a release (or none yet). Pure. */
export function dockerStackProps(spec: Spec, release?: Pick<ImageRelease, "repository" | "digest" | "version">): DockerStackProps {
  const o = options(spec);
  const test = healthcheckTest(spec, o);
  const intervalMs = Math.max(1000, spec.healthcheck.interval * 1000);
  return {
    ...backendProps(spec),
    app: spec.app,
    dockerHost: dockerHostOf(spec).url,
    sshOpts: dockerHostOf(spec).kind === "ssh" ? sshOpts(spec) : [],
    network: o.network,
    containerName: o.containerName,
    ...(release ? { release: { repository: release.repository, digest: release.digest, version: release.version } } : {}),
    appPort: spec.appPort,
    ...(o.publish ? { publish: o.publish } : {}),
    env: { ...spec.env, PORT: String(spec.appPort), ...(release ? { TOGO_VERSION: release.version } : {}) },
    secretNames: Object.keys(spec.secrets).sort(),
    restart: o.restart,
    ...(test ? { healthcheck: { test, intervalMs, timeoutMs: 5000, startPeriodMs: spec.healthcheck.timeout * 1000, retries: 3 } } : {}),
    ...(spec.run ? { command: ["/bin/sh", "-c", spec.run] } : {}),
    url: appUrl(spec, o),
  };
}

/** The release version: --version, else `git describe --always --dirty`, else the digest. */
async function imageVersion(dir: string, digest: string): Promise<string> {
  const r = await execa("git", ["describe", "--always", "--dirty"], { cwd: dir, reject: false });
  const described = r.exitCode === 0 ? String(r.stdout).trim() : "";
  if (described && /^[A-Za-z0-9][A-Za-z0-9._+-]{0,50}$/.test(described)) {
    return described.endsWith("-dirty") ? `${described}.${digest.slice(7, 15)}` : described;
  }
  return `sha-${digest.slice(7, 19)}`;
}

function checkVersion(version: string): void {
  if (!VERSION.test(version)) {
    throw new UsageError(`--version "${version}" is not a valid version: letters, digits, . _ + -, starting with a letter or digit, at most 64`);
  }
}

/**
 * A keyed fingerprint of the resolved secrets: a changed secret re-applies the stack even when the
 * image is the same. The key is random and local (.togo/docker/<app>/secrets.key, 0600), so the
 * fingerprint says nothing about the values.
 */
function secretsFingerprint(spec: Spec, secrets: Record<string, string>): string {
  const keyFile = join(workspaceOf(spec).driverDir("docker"), "secrets.key");
  if (!existsSync(keyFile)) {
    mkdirSync(dirname(keyFile), { recursive: true });
    writeFileSync(keyFile, randomBytes(32).toString("hex"), { mode: 0o600 });
  }
  chmodSync(keyFile, 0o600);
  const h = createHmac("sha256", readFileSync(keyFile, "utf8").trim());
  for (const k of Object.keys(secrets).sort()) h.update(`${k}\0${secrets[k]}\0`);
  return h.digest("hex");
}

/** How secrets reach the stack (never its JSON): TF_VAR_secret_<NAME> in terraform's environment. */
function secretVars(secrets: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(secrets).map(([k, v]) => [`TF_VAR_secret_${k}`, v]));
}

export class DockerDriver implements Driver {
  readonly name = "docker";
  constructor(private readonly ctx: DriverContext) {}

  validate(spec: Spec): ConfigProblem[] {
    return readDockerOptions(spec).problems;
  }

  private historyPath(spec: Spec): string {
    return historyFile(workspaceOf(spec).driverDir("docker"));
  }

  private history(spec: Spec): History {
    return readHistory(this.historyPath(spec));
  }

  private stack(spec: Spec, release?: ImageRelease): StackSource {
    const name = dockerStackName(spec);
    const props = dockerStackProps(spec, release);
    return {
      name,
      props: props as unknown as Record<string, unknown>,
      define: async (app) => (await import("../../stacks/docker.js")).defineDockerStack(app, name, props),
    };
  }

  /** The stack as it stands: with the release it was last applied with. */
  stacks(spec: Spec): StackSource[] {
    return [this.stack(spec, currentRelease(this.history(spec)))];
  }

  /**
   * Applies the stack for `release` (none: the network only). The stack is synthesized first, so
   * cdktf.out shows what would be applied even when the provider is missing and the apply cannot run.
   */
  private async applyRelease(spec: Spec, release: ImageRelease | undefined, secrets: Record<string, string>) {
    const { log } = this.ctx;
    const stack = this.stack(spec, release);
    const h = this.history(spec);
    const fingerprint = secretsFingerprint(spec, secrets);
    await log.stage("synth", () => synth(spec, [stack]));
    const problem = providerProblem(spec, stackDir(spec, stack.name));
    if (problem) {
      throw new OperationError(
        `${problem}.${release ? ` Version ${release.version} (${release.digest}) is pushed and recorded; the stack pinned to it is in ${stackDir(spec, stack.name)}/cdk.tf.json.` : ""}`,
      );
    }
    const force = this.ctx.opts.force || (h.appliedSecrets !== undefined && h.appliedSecrets !== fingerprint);
    const [r] = await apply(spec, [stack], log, force, secretVars(secrets));
    const after: History = release ? markApplied(h, release.version, new Date().toISOString()) : { ...h };
    writeHistory(this.historyPath(spec), { ...after, appliedSecrets: fingerprint });
    return r;
  }

  async provision(spec: Spec): Promise<Result> {
    const secrets = await this.ctx.log.stage("secrets", () => resolveSecrets(spec.secrets, spec.dir));
    const release = currentRelease(this.history(spec));
    const r = await this.applyRelease(spec, release, secrets);
    const what = release ? `${r.stack} with ${release.version}` : `${r.stack} (network only: deploy to add the container)`;
    return { url: r.outputs.url as string, message: r.applied ? `provisioned ${what}` : `${r.stack} is up to date`, raw: r };
  }

  /** Builds (or finds) the image and returns its skopeo source and digest; undefined source = already in the registry. */
  private async buildImage(spec: Spec, o: DockerOptions): Promise<{ src?: string; digest?: string }> {
    await runBuildCmd(spec, this.ctx.signal);
    const s = o.source;
    if (s.kind === "registry") return {};
    let src: string;
    if (s.kind === "dockerfile") src = await dockerBuildToLayout(s, join(workspaceOf(spec).driverDir("docker"), "build"), spec.app);
    else {
      if (!existsSync(s.path)) throw new OperationError(`the image source ${s.path} (deploy.options.source) does not exist after build_cmd`);
      src = C.sourceRef(s);
    }
    return { src, digest: await localDigest(src) };
  }

  async deploy(spec: Spec): Promise<Result> {
    const { log, opts } = this.ctx;
    const o = options(spec);
    const repository = repo(spec);
    if (opts.version !== undefined) checkVersion(opts.version);
    const secrets = await log.stage("secrets", () => resolveSecrets(spec.secrets, spec.dir));
    const built = await log.stage("build", () => this.buildImage(spec, o));

    let version: string;
    let digest: string;
    let pushed = false;
    if (built.src) {
      digest = built.digest!;
      version = opts.version ?? (await imageVersion(spec.dir, digest));
      checkVersion(version);
      const dest = withTag(repository, versionTag(version));
      recordPush(this.history(spec), { version, digest, repository, pushedAt: "" }, spec.versionsToKeep); // refuses a changed image before anything is sent
      const outcome = await log.stage("push", () => pushImage(built.src!, digest, dest, !o.insecureRegistry));
      pushed = outcome.pushed;
      log.info(pushed ? `pushed ${dest} (${digest})` : `${dest} is already in the registry as ${digest}; nothing sent`);
    } else {
      version = opts.version ?? (await imageVersion(spec.dir, "sha256:"));
      checkVersion(version);
      const ref = withTag(repository, versionTag(version));
      const found = await log.stage("resolve", () => remoteDigest(ref, !o.insecureRegistry));
      if (!found) {
        throw new OperationError(
          `${ref} is not in the registry; push it first (deploy.options.source is registry), or point options.source at the image to push (oci:PATH, docker-archive:PATH, dockerfile)`,
        );
      }
      digest = found;
    }

    const release: ImageRelease = { version, digest, repository, pushedAt: new Date().toISOString() };
    await log.stage("record", async () => writeHistory(this.historyPath(spec), recordPush(this.history(spec), release, spec.versionsToKeep)));
    const r = await this.applyRelease(spec, release, secrets);
    const url = (r.outputs.url as string | undefined) ?? appUrl(spec, o);
    return { url, message: `deployed ${spec.app} ${version} (${digest.slice(0, 19)}…${pushed ? ", pushed" : ", already in the registry"})`, raw: { version, digest, pushed, image: `${repository}@${digest}`, applied: r.applied } };
  }

  async rollback(spec: Spec, version?: string): Promise<Result> {
    const o = options(spec);
    let target = rollbackTarget(this.history(spec), version);
    if (!target && version !== undefined) {
      checkVersion(version);
      // Not in this checkout's history: the registry's tag is the record.
      const ref = withTag(repo(spec), versionTag(version));
      const digest = await this.ctx.log.stage("resolve", () => remoteDigest(ref, !o.insecureRegistry));
      if (!digest) throw new OperationError(`version ${version} is neither in the release history (togo releases) nor in the registry as ${ref}`);
      target = { version, digest, repository: repo(spec), pushedAt: new Date().toISOString() };
      writeHistory(this.historyPath(spec), recordPush(this.history(spec), target, spec.versionsToKeep));
    }
    const secrets = await this.ctx.log.stage("secrets", () => resolveSecrets(spec.secrets, spec.dir));
    await this.applyRelease(spec, target!, secrets);
    return { url: appUrl(spec, o), message: `rolled ${spec.app} back to ${target!.version} (${target!.digest})`, raw: target };
  }

  async releases(spec: Spec): Promise<Release[]> {
    const h = this.history(spec);
    return h.releases.map((r) => ({ version: r.version, current: r.version === h.current, createdAt: r.pushedAt, digest: r.digest }) as Release);
  }

  async status(spec: Spec): Promise<Status> {
    const o = options(spec);
    const out = await outputs(spec, dockerStackName(spec));
    const name = (out.container_name as string | undefined) || o.containerName;
    const host = dockerHostOf(spec).url;
    const url = (out.url as string | undefined) || appUrl(spec, o);
    const c = await inspectContainer(name, host);
    if (!c) {
      const why = Object.keys(out).length === 0 ? "not deployed (run togo deploy)" : `the stack is applied but container ${name} is not on ${host}; togo deploy (or provision) re-creates it`;
      return { state: "not-deployed", healthy: false, outputs: out, url, message: why };
    }
    if (c.Config?.Labels?.[LABEL_APP] !== spec.app) {
      return { state: "not-deployed", healthy: false, outputs: out, url, message: `a container named ${name} exists on ${host} but is not ${spec.app}'s (no ${LABEL_APP}=${spec.app} label)` };
    }
    const live = mapContainer(c);
    const want = out.image_digest as string | undefined;
    const drift = want && live.digest && want !== live.digest ? `; the stack pins ${want} but the container runs ${live.digest}` : "";
    return { state: live.state, healthy: live.healthy, version: live.version, url, outputs: out, message: `${name}: ${live.message}${drift}` };
  }

  async destroy(spec: Spec): Promise<void> {
    const stack = this.stack(spec, currentRelease(this.history(spec)));
    await this.ctx.log.stage("synth", () => synth(spec, [stack]));
    const problem = providerProblem(spec, stackDir(spec, stack.name));
    if (problem) throw new OperationError(problem);
    // The secret variables need values to destroy; what they were does not matter.
    const placeholders = Object.fromEntries(Object.keys(spec.secrets).map((k) => [k, ""]));
    await destroy(spec, [stack], this.ctx.log, secretVars(placeholders));
    const h = this.history(spec);
    writeHistory(this.historyPath(spec), { releases: h.releases, appliedSecrets: h.appliedSecrets });
  }

  async logs(spec: Spec, opts: LogOptions): Promise<void> {
    const name = options(spec).containerName;
    const args = ["logs", "--tail", String(opts.lines), ...(opts.follow ? ["--follow"] : []), name];
    const r = await execa("docker", args, { env: { DOCKER_HOST: dockerHostOf(spec).url }, stdio: "inherit", reject: false });
    if (r.exitCode !== 0) throw new OperationError(`docker logs ${name} failed (exit ${r.exitCode})`);
  }

  async exec(spec: Spec, command: string[]): Promise<number> {
    const name = options(spec).containerName;
    const args = ["exec", "-i", ...(process.stdin.isTTY ? ["-t"] : []), name, ...command];
    const r = await execa("docker", args, { env: { DOCKER_HOST: dockerHostOf(spec).url }, stdio: "inherit", reject: false });
    return r.exitCode ?? 1;
  }
}

registerDriver("docker", (ctx) => new DockerDriver(ctx));
