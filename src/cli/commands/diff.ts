import type { CommandModule } from "yargs";
import { changeLines, countChanges, renderPlanMarkdown, renderPlanText } from "../../infra/plan-report.js";
import { plan } from "../../infra/runner.js";
import { stageNames } from "../../config/load.js";
import { workspaceOf } from "../../core/workspace.js";
import { open, reporter, run, type GlobalArgs } from "../common.js";

interface Args extends GlobalArgs {
  markdown: boolean;
  "all-stages"?: boolean;
}

export const diff: CommandModule<GlobalArgs, Args> = {
  command: "diff",
  describe: "plan every stack of the app (what cdktf diff shows)",
  builder: (y) =>
    y
      .option("markdown", { type: "boolean", default: false, describe: "print a pull-request comment (summary, then the plan in a collapsible block)" })
      .option("json", { type: "boolean", describe: "print each stack's counts, changes and terraform show -json" })
      .option("all-stages", { type: "boolean", describe: "plan the file without a stage and every stage under stages:" })
      .conflicts("all-stages", "stage")
      .example("$0 diff --markdown > plan.md", "a plan for a PR comment")
      .epilog("The saved plan and its terraform show -json stay in cdktf.out/stacks/<stack>/ (togo.tfplan, togo.tfplan.json)."),
  handler: run(async (args: Args) => {
    const log = reporter(args);
    const stages = args["all-stages"] ? ["", ...stageNames(args.config)] : [args.stage];
    // Every stage is opened (validated) before any is planned: a bad stage plans nothing.
    const opened = [];
    for (const stage of stages) opened.push(await open({ ...args, stage }, log));
    // One comment per stage (its own marker), or one for all of them.
    const { spec } = opened[0];
    const plans = [];
    for (const o of opened) plans.push(...(await plan(o.spec, o.driver.stacks(o.spec), log)));
    if (args.json) {
      const data = plans.map((p) => ({ stack: p.stack, counts: countChanges(p.json), changes: changeLines(p.json), plan: p.json }));
      process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
    } else {
      process.stdout.write(args.markdown ? renderPlanMarkdown(args["all-stages"] ? spec.app : workspaceOf(spec).qualifiedApp, plans) : renderPlanText(plans));
    }
  }),
};
