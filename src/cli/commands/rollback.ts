import type { CommandModule } from "yargs";
import { UnsupportedOperationError } from "../../core/errors.js";
import { interruptible, open, print, reporter, run, type GlobalArgs } from "../common.js";
import { wholeNumber } from "../usage.js";

interface Args extends GlobalArgs {
  version?: string;
  "lock-wait": number;
}

export const rollback: CommandModule<GlobalArgs, Args> = {
  command: "rollback [version]",
  describe: "switch back to the previous release (or VERSION); deletes nothing",
  builder: (y) =>
    y
      .option("host", { type: "string", requiresArg: true, describe: "work on this host of a fleet (deploy.hosts) only" })
      .positional("version", { type: "string", describe: "release to switch to (default: the one before the current)" })
      .option("lock-wait", { default: 0, requiresArg: true, coerce: wholeNumber("--lock-wait", "seconds to wait"), describe: "seconds to wait for another deploy's lock (a whole number)" })
      .option("json", { type: "boolean", describe: "print the result as JSON" })
      .example("$0 rollback", "back to the previous release")
      .example("$0 rollback 1.3.2", "back to release 1.3.2"),
  handler: run(async (args: Args) => {
    const log = reporter(args);
    const result = await interruptible(async (signal) => {
      const { spec, driver } = await open(args, log, { lockWait: args["lock-wait"], host: args.host }, signal);
      if (!driver.rollback) throw new UnsupportedOperationError(driver.name, "rollback");
      return driver.rollback(spec, args.version);
    });
    print(args, result, () => result.message);
  }),
};
