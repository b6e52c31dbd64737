// The `local` driver: this machine as the target. Provision = a stack of Terraform built-ins that
// makes the app directory; Deploy = the release engine over the local transport with togo's process
// manager; Status = outputs + process + HTTP probe. No cloud account needed.
import { isAbsolute } from "node:path";
import { execa } from "execa";
import type { ConfigProblem } from "../../src/core/errors.js";
import { OperationError } from "../../src/core/errors.js";
import { registerDriver, type DriverContext } from "../../src/core/registry.js";
import { deployRelease, listReleases, liveStatus, processManager, rollbackRelease, type EngineContext } from "../../src/ship/engine.js";
import * as S from "../../src/ship/scripts.js";
import type { Driver, LogOptions, Release, Result, Spec, StackSource, Status } from "../../src/core/spec.js";
import { apply, destroy, outputs } from "../../src/infra/runner.js";
import { LocalTransport } from "../../src/exec/local.js";
import type { LocalStackProps } from "../../stacks/local.js";
import { backendProps } from "../../src/infra/backend.js";

export function localStackName(spec: Spec): string {
  return `${spec.app}-local`;
}

export class LocalDriver implements Driver {
  readonly name = "local";
  constructor(private readonly ctx: DriverContext) {}

  validate(spec: Spec): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    if (!spec.run) problems.push({ path: "deploy.run", expected: "is required for the local driver: the command that starts the app on $PORT, e.g. node server.js" });
    if (!spec.binary) problems.push({ path: "deploy.binary", expected: "is required for the local driver: the file or directory to ship, e.g. server.js" });
    if (!isAbsolute(spec.appDir)) problems.push({ path: "deploy.app_dir", value: spec.appDir, expected: "expected a local directory" });
    return problems;
  }

  stacks(spec: Spec): StackSource[] {
    const name = localStackName(spec);
    const props: LocalStackProps = { ...backendProps(spec), app: spec.app, appDir: spec.appDir, appPort: spec.appPort };
    return [
      {
        name,
        props: props as unknown as Record<string, unknown>,
        define: async (app) => (await import("../../stacks/local.js")).defineLocalStack(app, name, props),
      },
    ];
  }

  private engine(spec: Spec): EngineContext {
    return {
      spec,
      transport: new LocalTransport(),
      log: this.ctx.log,
      service: processManager(spec),
      opts: this.ctx.opts,
      url: `http://127.0.0.1:${spec.appPort}`,
    };
  }

  async provision(spec: Spec): Promise<Result> {
    const [r] = await apply(spec, this.stacks(spec), this.ctx.log, this.ctx.opts.force);
    return { url: r.outputs.url as string, message: r.applied ? `provisioned ${r.stack}` : `${r.stack} is up to date`, raw: r };
  }

  async deploy(spec: Spec): Promise<Result> {
    const out = await outputs(spec, localStackName(spec));
    if (!out.app_dir) throw new OperationError(`${spec.app} is not provisioned yet (no outputs in stack ${localStackName(spec)}); run: togo provision`);
    return deployRelease(this.engine(spec));
  }

  async status(spec: Spec): Promise<Status> {
    const e = this.engine(spec);
    // Outputs and the live probe are independent: read both at once (status is meant to be fast).
    const [out, live] = await Promise.all([outputs(spec, localStackName(spec)), liveStatus(spec, e.transport, e.service)]);
    if (Object.keys(out).length === 0) {
      return { state: "not-deployed", healthy: false, outputs: out, message: "not provisioned (run togo provision)" };
    }
    return { ...live, url: out.url as string, outputs: out };
  }

  async destroy(spec: Spec): Promise<void> {
    const e = this.engine(spec);
    await this.ctx.log.stage("stop", async () => {
      await e.transport.run(e.service.stopScript(), { check: false });
      await e.transport.run(S.processStopScript(spec.appDir, "candidate"), { check: false });
    });
    await destroy(spec, this.stacks(spec), this.ctx.log);
    await this.ctx.log.stage("clean", () => e.transport.run(S.removeAppDirScript(spec.appDir), { what: "removing the app directory" }));
  }

  async rollback(spec: Spec, version?: string): Promise<Result> {
    return rollbackRelease(this.engine(spec), version);
  }

  async releases(spec: Spec): Promise<Release[]> {
    return listReleases(new LocalTransport(), spec.appDir);
  }

  async logs(spec: Spec, opts: LogOptions): Promise<void> {
    const t = new LocalTransport();
    const version = (await t.run(S.currentVersionScript(spec.appDir))).stdout.trim();
    if (!version) throw new OperationError(`${spec.app} has no current release; nothing to show`);
    await t.run(S.tailLogScript(spec.appDir, version, opts.lines, opts.follow), { inherit: true, check: false });
  }

  async exec(spec: Spec, command: string[]): Promise<number> {
    // Same directory and env as the running release; the terminal stays attached.
    const r = await execa("sh", ["-c", S.execInReleaseScript(spec.appDir, command, spec.appPort)], { stdio: "inherit", reject: false });
    return r.exitCode ?? 1;
  }

  async releaseLock(spec: Spec): Promise<Result> {
    await new LocalTransport().run(S.lockReleaseScript(spec.appDir), { what: "releasing the lock" });
    return { message: `released the deploy lock of ${spec.app}`, raw: {} };
  }
}

registerDriver("local", (ctx) => new LocalDriver(ctx));
