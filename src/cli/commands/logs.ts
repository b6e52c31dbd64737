import type { CommandModule } from "yargs";
import { UnsupportedOperationError } from "../../core/errors.js";
import { open, reporter, run, type GlobalArgs } from "../common.js";
import { wholeNumber } from "../usage.js";

interface Args extends GlobalArgs {
  follow: boolean;
  lines: number;
}

export const logs: CommandModule<GlobalArgs, Args> = {
  command: "logs",
  describe: "the current release's log",
  builder: (y) =>
    y
      .option("host", { type: "string", requiresArg: true, describe: "work on this host of a fleet (deploy.hosts) only" })
      .option("follow", { alias: "f", type: "boolean", default: false, describe: "keep printing new lines" })
      .option("lines", { alias: "n", default: 100, requiresArg: true, coerce: wholeNumber("--lines (-n)", "how many lines to show"), describe: "how many lines to show first (a whole number)" })
      .example("$0 logs -f -n 20", "follow the log"),
  handler: run(async (args: Args) => {
    const log = reporter(args);
    const { spec, driver } = await open(args, log, { host: args.host });
    if (!driver.logs) throw new UnsupportedOperationError(driver.name, "logs");
    await driver.logs(spec, { follow: args.follow, lines: args.lines });
  }),
};
