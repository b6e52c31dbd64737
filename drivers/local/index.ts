// The `local` driver: this machine as the target. Provision = a stack of Terraform built-ins that
// makes the app directory; Deploy = the versioned-release strategy over the local shell with togo's
// process manager; Status = outputs + process + HTTP probe. No cloud account needed.
import { isAbsolute } from "node:path";
import { options, parseOptions } from "../../src/config/options.js";
import type { ConfigProblem } from "../../src/core/errors.js";
import { OperationError } from "../../src/core/errors.js";
import { registerDriver, type DriverContext } from "../../src/core/registry.js";
import type { DeployPlan, Driver, LogOptions, Release, Result, Shipping, Spec, StackSource, Status, Target } from "../../src/core/spec.js";
import { workspaceOf } from "../../src/core/workspace.js";
import { backendProps } from "../../src/infra/backend.js";
import { apply, destroy, outputs } from "../../src/infra/runner.js";
import { shippingOptions, shippingSchema } from "../../src/ship/options.js";
import { versionedRelease } from "../../src/ship/release.js";
import type { LocalStackProps } from "../../stacks/local.js";

/** The local driver takes no options: the app runs under togo's process manager on this machine. */
const localOptions = options({});

export function localStackName(spec: Spec): string {
  return workspaceOf(spec).stackName("local");
}

export class LocalDriver implements Driver {
  readonly name = "local";
  private readonly shipping: Shipping;

  constructor(private readonly ctx: DriverContext) {
    this.shipping = versionedRelease({
      driver: this.name,
      ctx,
      options: shippingOptions(shippingSchema.parse({ service: "process" })),
      front: "own",
      open: { serviceMode: "process" },
    });
  }

  validate(spec: Spec): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    if (!spec.run) problems.push({ path: "deploy.run", expected: "is required for the local driver: the command that starts the app on $PORT, e.g. node server.js" });
    if (!spec.binary) problems.push({ path: "deploy.binary", expected: "is required for the local driver: the file or directory to ship, e.g. server.js" });
    if (!isAbsolute(spec.appDir)) problems.push({ path: "deploy.app_dir", value: spec.appDir, expected: "expected a local directory" });
    problems.push(...parseOptions(spec.options, localOptions, this.name).problems);
    return problems;
  }

  stacks(spec: Spec): StackSource[] {
    const name = localStackName(spec);
    const props: LocalStackProps = { ...backendProps(spec), app: workspaceOf(spec).qualifiedApp, appDir: spec.appDir, appPort: spec.appPort };
    return [
      {
        name,
        props: props as unknown as Record<string, unknown>,
        define: async (app) => (await import("../../stacks/local.js")).defineLocalStack(app, name, props),
      },
    ];
  }

  private targets(spec: Spec): Target[] {
    return [{ appDir: spec.appDir, url: `http://127.0.0.1:${spec.appPort}` }];
  }

  async provision(spec: Spec): Promise<Result> {
    const [r] = await apply(spec, this.stacks(spec), this.ctx.log, this.ctx.opts.force);
    return { url: r.outputs.url as string, message: r.applied ? `provisioned ${r.stack}` : `${r.stack} is up to date`, raw: r };
  }

  async deploy(spec: Spec): Promise<Result> {
    const out = await outputs(spec, localStackName(spec));
    if (!out.app_dir) throw new OperationError(`${spec.app} is not provisioned yet (no outputs in stack ${localStackName(spec)}); run: togo provision`);
    return this.shipping.deploy(spec, this.targets(spec));
  }

  async status(spec: Spec): Promise<Status> {
    // Outputs and the live probe are independent: read both at once (status is meant to be fast).
    const [out, live] = await Promise.all([outputs(spec, localStackName(spec)), this.shipping.live(spec, this.targets(spec))]);
    if (Object.keys(out).length === 0) {
      return { state: "not-deployed", healthy: false, outputs: out, message: "not provisioned (run togo provision)" };
    }
    return { ...live, url: out.url as string, outputs: out };
  }

  async destroy(spec: Spec): Promise<void> {
    await this.shipping.remove(spec, this.targets(spec));
    await destroy(spec, this.stacks(spec), this.ctx.log);
  }

  rollback(spec: Spec, version?: string): Promise<Result> {
    return this.shipping.rollback(spec, this.targets(spec), version);
  }

  releases(spec: Spec): Promise<Release[]> {
    return this.shipping.releases(spec, this.targets(spec));
  }

  logs(spec: Spec, opts: LogOptions): Promise<void> {
    return this.shipping.logs(spec, this.targets(spec), opts);
  }

  exec(spec: Spec, command: string[]): Promise<number> {
    return this.shipping.exec(spec, this.targets(spec), command);
  }

  deployPlan(spec: Spec): Promise<DeployPlan> {
    return this.shipping.plan!(spec, this.targets(spec));
  }

  releaseLock(spec: Spec): Promise<Result> {
    return this.shipping.releaseLock(spec, this.targets(spec));
  }
}

registerDriver("local", (ctx) => new LocalDriver(ctx));
