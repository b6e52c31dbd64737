import type { CommandModule } from "yargs";
import { localStateInCi } from "../../infra/backend.js";
import { changeLines, countChanges, renderDeployPlanText, renderPlanMarkdown, renderPlanText } from "../../infra/plan-report.js";
import { plan, type PlanResult } from "../../infra/runner.js";
import { stageNames } from "../../config/load.js";
import { OperationError } from "../../core/errors.js";
import type { DeployPlan } from "../../core/spec.js";
import { workspaceOf } from "../../core/workspace.js";
import { noDeployPlan } from "../../ship/plan.js";
import { open, reporter, run, type GlobalArgs } from "../common.js";
import type { Opened } from "../service.js";

interface Args extends GlobalArgs {
  markdown: boolean;
  "all-stages"?: boolean;
}

/** What `togo deploy` would ship for this stage; a driver without a deploy plan says so. */
export async function deployPlanOf({ spec, driver }: Opened): Promise<DeployPlan> {
  if (!driver.deployPlan) return noDeployPlan(spec, driver.name, `deploy plan: not available for the ${driver.name} driver`);
  try {
    return await driver.deployPlan(spec);
  } catch (err) {
    // The infrastructure plan stands on its own: a deploy plan that cannot be made is said, not fatal.
    if (!(err instanceof OperationError)) throw err;
    return noDeployPlan(spec, driver.name, `deploy plan: could not be made: ${err.message.split("\n")[0]}`);
  }
}

export const diff: CommandModule<GlobalArgs, Args> = {
  command: "diff",
  describe: "plan every stack of the app (what cdktf diff shows) and what a deploy would ship",
  builder: (y) =>
    y
      .option("markdown", { type: "boolean", default: false, describe: "print a pull-request comment (summary, the plan in a collapsible block, the deploy plan); split into numbered comments when too long for one" })
      .option("json", { type: "boolean", describe: "print each stack's counts, changes, terraform show -json and its stage's deploy plan" })
      .option("all-stages", { type: "boolean", describe: "plan the file without a stage and every stage under stages:" })
      .conflicts("all-stages", "stage")
      .example("$0 diff --markdown > plan.md", "a plan for a PR comment")
      .epilog(
        "The saved plan and its terraform show -json stay in cdktf.out/stacks/<stack>/ (togo.tfplan, togo.tfplan.json). The deploy plan reads each host (never writes) and builds nothing: env keys are compared by keyed fingerprints, values are never printed.",
      ),
  handler: run(async (args: Args) => {
    const log = reporter(args);
    const allStages = Boolean(args["all-stages"]);
    const stages = allStages ? ["", ...stageNames(args.config)] : [args.stage];
    // Every stage is opened (validated) before any is planned: a bad stage plans nothing.
    const opened = [];
    for (const stage of stages) opened.push(await open({ ...args, stage }, log));
    const lost = opened.map((o) => localStateInCi(o.spec)).find(Boolean);
    if (lost) log.warn(lost);
    // One comment per stage (its own marker), or one for all of them.
    const { spec } = opened[0];
    const perStage: { plans: PlanResult[]; deploy: DeployPlan }[] = [];
    for (const o of opened) {
      const plans = await plan(o.spec, o.driver.stacks(o.spec), log);
      const deploy = await deployPlanOf(o);
      // With --all-stages the file without a stage is named too.
      perStage.push({ plans, deploy: allStages && deploy.stage === undefined ? { ...deploy, stage: "" } : deploy });
    }
    const plans = perStage.flatMap((s) => s.plans);
    const deploys = perStage.map((s) => s.deploy);
    if (args.json) {
      const data = perStage.flatMap((s) => s.plans.map((p) => ({ stack: p.stack, counts: countChanges(p.json), changes: changeLines(p.json), plan: p.json, deploy: s.deploy })));
      process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
    } else if (args.markdown) {
      process.stdout.write(renderPlanMarkdown(allStages ? spec.app : workspaceOf(spec).qualifiedApp, plans, deploys));
    } else {
      process.stdout.write(`${renderPlanText(plans)}\n${deploys.map(renderDeployPlanText).join("\n")}`);
    }
  }),
};
