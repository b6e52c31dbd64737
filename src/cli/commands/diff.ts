import type { CommandModule } from "yargs";
import { changeLines, countChanges, renderPlanMarkdown, renderPlanText } from "../../infra/plan-report.js";
import { plan } from "../../infra/runner.js";
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
      .option("json", { type: "boolean", describe: "print each stack's counts, changes and terraform show -json" })
      .example("$0 diff --markdown > plan.md", "a plan for a PR comment")
      .epilog("The saved plan and its terraform show -json stay in cdktf.out/stacks/<stack>/ (togo.tfplan, togo.tfplan.json)."),
  handler: run(async (args: Args) => {
    const log = reporter(args);
    const { spec, driver } = await open(args, log);
    const plans = await plan(spec, driver.stacks(spec), log);
    if (args.json) {
      const data = plans.map((p) => ({ stack: p.stack, counts: countChanges(p.json), changes: changeLines(p.json), plan: p.json }));
      process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
    } else {
      process.stdout.write(args.markdown ? renderPlanMarkdown(spec.app, plans) : renderPlanText(plans));
    }
  }),
};
