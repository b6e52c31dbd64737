import type { CommandModule } from "yargs";
import { UnsupportedOperationError } from "../../core/errors.js";
import { open, reporter, run, type GlobalArgs } from "../common.js";

// `release` is a subcommand, not a positional: `togo lock relase` must be refused, not run.
const release: CommandModule<GlobalArgs, GlobalArgs> = {
  command: "release",
  describe: "break a stale deploy lock (only when no deploy is running)",
  builder: (y) => y.option("host", { type: "string", requiresArg: true, describe: "work on this host of a fleet (deploy.hosts) only" }).example("$0 lock release", "remove the lock a crashed deploy left"),
  handler: run(async (args: GlobalArgs) => {
    const log = reporter(args);
    const { spec, driver } = await open(args, log, { host: args.host });
    if (!driver.releaseLock) throw new UnsupportedOperationError(driver.name, "lock release");
    const r = await driver.releaseLock(spec);
    log.info(r.message);
  }),
};

export const lock: CommandModule<GlobalArgs, GlobalArgs> = {
  command: "lock",
  describe: "the deploy lock: togo lock release breaks a stale one",
  builder: (y) => y.command(release).demandCommand(1, "name what to do with the lock: togo lock release"),
  handler: () => undefined,
};
