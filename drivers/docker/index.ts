// The `docker` driver: the app as a container on a Docker host. Provision = a CDKTF stack (the
// kreuzwerker/docker provider: network, image pinned by digest, container); Deploy = build, push to
// the registry named in `image` with skopeo, record the digest, apply the stack with it, as
// pipeline stages (release.ts) with the user's hooks; Status = the stack's outputs + the
// container's state and health from `docker inspect`.
import { execa } from "execa";
import type { ConfigProblem } from "../../src/core/errors.js";
import { OperationError } from "../../src/core/errors.js";
import { registerDriver, type DriverContext } from "../../src/core/registry.js";
import type { Driver, LogOptions, Release, Result, Spec, StackSource, Status } from "../../src/core/spec.js";
import { workspaceOf } from "../../src/core/workspace.js";
import { resolveSecrets } from "../../src/config/secrets.js";
import { backendProps } from "../../src/infra/backend.js";
import { apply, destroy, outputs, stackDir, synth } from "../../src/infra/runner.js";
import { runPipeline, type PipelineOptions, type StageHooks } from "../../src/pipeline/pipeline.js";
import type { DockerStackProps } from "../../stacks/docker.js";
import { dockerHostOf, sshOpts } from "./image/host.js";
import { currentRelease, historyFile, readHistory, writeHistory, type History, type ImageRelease } from "./image/history.js";
import { readDockerOptions, type DockerOptions } from "./image/options.js";
import { providerProblem } from "./image/provider.js";
import { parseImageRef, repository } from "./image/ref.js";
import { inspectContainer, LABEL_APP, mapContainer } from "./image/status.js";
import {
  applyRelease,
  checkVersion,
  dockerDeployHooks,
  dockerDeployStages,
  dockerRollbackStages,
  secretVars,
  type DockerDeployContext,
  type DockerRollbackContext,
  type DockerRun,
  type StackApply,
} from "./release.js";

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
    app: workspaceOf(spec).qualifiedApp,
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

export class DockerDriver implements Driver {
  readonly name = "docker";
  constructor(
    private readonly ctx: DriverContext,
    /** The terraform apply of the stack; a test may stand in for it where the provider cannot run. */
    private readonly applyStack: StackApply = apply,
  ) {}

  validate(spec: Spec): ConfigProblem[] {
    const problems = readDockerOptions(spec).problems;
    if (spec.artifact === "store") {
      problems.push({ path: "deploy.artifact", value: "store", expected: "the docker driver ships an image (deploy.image or a Dockerfile), not a store artifact; remove deploy.artifact or use the vps, aws or local driver" });
    }
    return problems;
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

  /**
   * The stack as it stands: with the release it was last applied with. Its secret variables are
   * required, so whatever plans it (togo diff) gets them as an apply does: resolved when terraform
   * is about to run, and only when the stack has a container (the variables exist only then).
   */
  stacks(spec: Spec): StackSource[] {
    const release = currentRelease(this.history(spec));
    const stack = this.stack(spec, release);
    if (!release || Object.keys(spec.secrets).length === 0) return [stack];
    let resolved: Promise<Record<string, string>> | undefined;
    const env = () => (resolved ??= resolveSecrets(spec.secrets, spec.dir).then(secretVars));
    return [{ ...stack, env }];
  }

  /** What the deploy and rollback stages share, before any of them ran. */
  private run(spec: Spec): DockerRun {
    const historyPath = this.historyPath(spec);
    return {
      spec,
      log: this.ctx.log,
      opts: this.ctx.opts,
      o: options(spec),
      repository: repo(spec),
      historyFile: historyPath,
      stack: (release) => this.stack(spec, release),
      applyStack: this.applyStack,
      previous: readHistory(historyPath).current,
      secrets: {},
    };
  }

  private pipeline<C extends DockerRun>(command: "deploy" | "rollback", spec: Spec, version: (ctx: C) => string | undefined, hooks?: StageHooks<C>): PipelineOptions<C> {
    const hosts = [dockerHostOf(spec).url];
    return { command, spec, driver: this.name, log: this.ctx.log, signal: this.ctx.signal, hooks, facts: (c) => ({ version: version(c), previous: c.previous, hosts }) };
  }

  async provision(spec: Spec): Promise<Result> {
    const { log } = this.ctx;
    const run = this.run(spec);
    run.secrets = await log.stage("secrets", () => resolveSecrets(spec.secrets, spec.dir));
    const release = currentRelease(this.history(spec));
    // Synthesized first, so cdktf.out shows what would be applied even when the provider is missing.
    await log.stage("synth", () => synth(spec, [this.stack(spec, release)]));
    const r = await applyRelease(run, release, log);
    const what = release ? `${r.stack} with ${release.version}` : `${r.stack} (network only: deploy to add the container)`;
    return { url: r.outputs.url as string, message: r.applied ? `provisioned ${what}` : `${r.stack} is up to date`, raw: r };
  }

  async deploy(spec: Spec): Promise<Result> {
    if (this.ctx.opts.version !== undefined) checkVersion(this.ctx.opts.version);
    const ctx: DockerDeployContext = { ...this.run(spec), pushed: false };
    await runPipeline(dockerDeployStages(dockerStackName(spec)), ctx, this.pipeline("deploy", spec, (c: DockerDeployContext) => c.version, dockerDeployHooks));
    // Every stage ran, so each of these was learnt.
    const [version, digest, outcome, pushed] = [ctx.version!, ctx.digest!, ctx.outcome!, ctx.pushed];
    const url = (outcome.outputs.url as string | undefined) ?? appUrl(spec, ctx.o);
    return {
      url,
      message: `deployed ${spec.app} ${version} (${digest.slice(0, 19)}…${pushed ? ", pushed" : ", already in the registry"})`,
      raw: { version, digest, pushed, image: `${ctx.repository}@${digest}`, applied: outcome.applied },
    };
  }

  async rollback(spec: Spec, version?: string): Promise<Result> {
    const ctx: DockerRollbackContext = { ...this.run(spec), wanted: version };
    await runPipeline(dockerRollbackStages(dockerStackName(spec)), ctx, this.pipeline("rollback", spec, (c: DockerRollbackContext) => c.release?.version ?? c.wanted));
    const target = ctx.release!;
    return { url: appUrl(spec, ctx.o), message: `rolled ${spec.app} back to ${target.version} (${target.digest})`, raw: target };
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
    if (c.Config?.Labels?.[LABEL_APP] !== workspaceOf(spec).qualifiedApp) {
      return { state: "not-deployed", healthy: false, outputs: out, url, message: `a container named ${name} exists on ${host} but is not ${spec.app}'s (no ${LABEL_APP}=${workspaceOf(spec).qualifiedApp} label)` };
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
