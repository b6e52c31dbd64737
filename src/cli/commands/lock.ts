import type { CommandModule } from "yargs";
import { UnsupportedOperationError } from "../../core/errors.js";
import { open, reporter, run, type GlobalArgs } from "../common.js";

export const lock: CommandModule<GlobalArgs, GlobalArgs> = {
  command: "lock release",
  describe: "break a stale deploy lock (only when no deploy is running)",
  builder: (y) => y.example("$0 lock release", "remove the lock a crashed deploy left"),
  handler: run(async (args: GlobalArgs) => {
    const log = reporter(args);
    const { spec, driver } = await open(args, log);
    if (!driver.releaseLock) throw new UnsupportedOperationError(driver.name, "lock release");
    const r = await driver.releaseLock(spec);
    log.info(r.message);
  }),
};
