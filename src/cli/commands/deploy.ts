import type { CommandModule } from "yargs";
import { interruptible, open, print, reporter, run, type GlobalArgs } from "../common.js";
import { once, wholeNumber } from "../usage.js";

interface Args extends GlobalArgs {
  version?: string;
  "lock-wait": number;
}

export const deploy: CommandModule<GlobalArgs, Args> = {
  command: "deploy",
  describe: "build, ship, verify, switch, record and prune; prints the URL",
  builder: (y) =>
    y
      .option("version", { type: "string", requiresArg: true, coerce: once("--version"), describe: "release version (default: git describe --always --dirty, else a timestamp)" })
      .option("lock-wait", { default: 0, requiresArg: true, coerce: wholeNumber("--lock-wait", "seconds to wait"), describe: "seconds to wait for another deploy's lock (a whole number)" })
      .option("json", { type: "boolean", describe: "print the result as JSON" })
      .example("$0 deploy --version 1.4.0", "ship release v1.4.0"),
  handler: run(async (args: Args) => {
    const log = reporter(args);
    const result = await interruptible(async (signal) => {
      const { spec, driver } = await open(args, log, { version: args.version, lockWait: args["lock-wait"] }, signal);
      return driver.deploy(spec);
    });
    log.info(result.message);
    print(args, result, () => result.url ?? result.message);
  }),
};
