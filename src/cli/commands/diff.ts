import type { CommandModule } from "yargs";
import { renderPlanMarkdown, renderPlanText } from "../../terraform/plan-report.js";
import { plan } from "../../terraform/runner.js";
import { open, reporter, run, type GlobalArgs } from "../common.js";

interface Args extends GlobalArgs {
  markdown: boolean;
}

export const diff: CommandModule<GlobalArgs, Args> = {
  command: "diff",
  describe: "plan every stack of the app (what cdktf diff shows)",
  builder: (y) =>
    y
      .option("markdown", { type: "boolean", default: false, describe: "print a pull-request comment (summary, then the plan in a collapsible block)" })
      .option("json", { type: "boolean", describe: "print terraform show -json of each plan" })
      .example("$0 diff --markdown > plan.md", "a plan for a PR comment"),
  handler: run(async (args: Args) => {
    const log = reporter(args);
    const { spec, driver } = await open(args, log);
    const plans = await plan(spec, driver.stacks(spec), log);
    if (args.json) process.stdout.write(`${JSON.stringify(plans.map((p) => ({ stack: p.stack, plan: p.json })), null, 2)}\n`);
    else process.stdout.write(args.markdown ? renderPlanMarkdown(spec.app, plans) : renderPlanText(plans));
  }),
};
