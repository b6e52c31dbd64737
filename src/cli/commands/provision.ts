import type { CommandModule } from "yargs";
import { localStateInCi } from "../../infra/backend.js";
import { confirm, open, print, reporter, run, type GlobalArgs } from "../common.js";

interface Args extends GlobalArgs {
  yes: boolean;
  force: boolean;
}

export const provision: CommandModule<GlobalArgs, Args> = {
  command: "provision",
  describe: "synthesize the driver's stack from togo.yaml and apply it",
  builder: (y) =>
    y
      .option("yes", { alias: "y", type: "boolean", default: false, describe: "do not ask before applying" })
      .option("force", { type: "boolean", default: false, describe: "apply even when nothing changed since the last apply" })
      .example("$0 provision --yes", "create or update the infrastructure without asking"),
  handler: run(async (args: Args) => {
    const log = reporter(args);
    const { spec, driver } = await open(args, log, { yes: args.yes, force: args.force });
    const lost = localStateInCi(spec);
    if (lost) log.warn(lost);
    await confirm(`Apply the ${driver.name} stack of ${spec.app}?`, args.yes, false);
    const result = await driver.provision(spec);
    print(args, result, () => [result.message, result.url].filter(Boolean).join("\n"));
  }),
};
