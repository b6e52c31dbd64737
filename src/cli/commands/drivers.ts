import type { CommandModule } from "yargs";
import { drivers as registered } from "../../core/registry.js";
import { print, run, type GlobalArgs } from "../common.js";

export const drivers: CommandModule<GlobalArgs, GlobalArgs> = {
  command: "drivers",
  describe: "list the registered drivers",
  builder: (y) => y.option("json", { type: "boolean", describe: "print the names as a JSON array" }).example("$0 drivers", "local, vps, aws, docker and plugins"),
  handler: run(async (args: GlobalArgs) => {
    const names = registered();
    print(args, names, () => names.join("\n"));
  }),
};
