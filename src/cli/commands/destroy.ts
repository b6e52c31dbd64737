import type { CommandModule } from "yargs";
import { requireTerraform } from "../../infra/runner.js";
import { confirm, open, reporter, run, type GlobalArgs } from "../common.js";

interface Args extends GlobalArgs {
  yes: boolean;
}

export const destroy: CommandModule<GlobalArgs, Args> = {
  command: "destroy",
  describe: "stop the app and destroy its stack",
  builder: (y) => y.option("yes", { alias: "y", type: "boolean", default: false, describe: "do not ask (required when not on a terminal)" }).example("$0 destroy --yes", "tear everything down"),
  handler: run(async (args: Args) => {
    const log = reporter(args);
    const { spec, driver } = await open(args, log, { yes: args.yes });
    // Before the driver stops the app: a destroy that cannot reach terraform must change nothing.
    if (driver.stacks(spec).length > 0) requireTerraform(spec);
    await confirm(`Destroy ${spec.app} (${driver.name}): stop it and delete its infrastructure?`, args.yes, true);
    await driver.destroy(spec);
    log.info(`destroyed ${spec.app}`);
  }),
};
