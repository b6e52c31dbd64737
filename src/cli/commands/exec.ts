import type { CommandModule } from "yargs";
import { UnsupportedOperationError, UsageError } from "../../core/errors.js";
import { open, reporter, run, type GlobalArgs } from "../common.js";

interface Args extends GlobalArgs {
  command?: string[];
}

export const exec: CommandModule<GlobalArgs, Args> = {
  command: "exec [command..]",
  describe: "run a command in the current release on the target",
  builder: (y) => y.positional("command", { type: "string", array: true }).option("host", { type: "string", requiresArg: true, describe: "work on this host of a fleet (deploy.hosts) only" }).example("$0 exec -- node migrate.js", "run a one-off command"),
  handler: run(async (args: Args) => {
    const cmd = [...(args.command ?? []), ...((args as { "--"?: string[] })["--"] ?? [])].map(String);
    if (cmd.length === 0) throw new UsageError("give the command after --, e.g. togo exec -- node migrate.js");
    const log = reporter(args);
    const { spec, driver } = await open(args, log, { host: args.host });
    if (!driver.exec) throw new UnsupportedOperationError(driver.name, "exec");
    return driver.exec(spec, cmd);
  }),
};
