import type { CommandModule } from "yargs";
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
    await confirm(`Destroy ${spec.app} (${driver.name}): stop it and delete its infrastructure?`, args.yes, true);
    await driver.destroy(spec);
    log.info(`destroyed ${spec.app}`);
  }),
};
