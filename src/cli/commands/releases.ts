import type { CommandModule } from "yargs";
import { UnsupportedOperationError } from "../../core/errors.js";
import { open, print, reporter, run, type GlobalArgs } from "../common.js";

export const releases: CommandModule<GlobalArgs, GlobalArgs> = {
  command: "releases",
  describe: "release history on the target, newest first",
  builder: (y) => y.option("json", { type: "boolean", describe: "print the releases as JSON" }).option("host", { type: "string", requiresArg: true, describe: "work on this host of a fleet (deploy.hosts) only" }).example("$0 releases --json", "machine-readable history"),
  handler: run(async (args: GlobalArgs) => {
    const log = reporter(args);
    const { spec, driver } = await open(args, log, { host: args.host });
    if (!driver.releases) throw new UnsupportedOperationError(driver.name, "releases");
    const list = await driver.releases(spec);
    print(args, list, () =>
      list.length === 0 ? "no releases" : list.map((r) => `${r.current ? "*" : " "} ${r.version.padEnd(24)} ${r.createdAt ?? ""}`).join("\n"),
    );
  }),
};
