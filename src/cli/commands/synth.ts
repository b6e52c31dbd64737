import type { CommandModule } from "yargs";
import { outDir, synth as synthStacks } from "../../infra/runner.js";
import { open, reporter, run, type GlobalArgs } from "../common.js";

export const synth: CommandModule<GlobalArgs, GlobalArgs> = {
  command: "synth",
  describe: "write the stacks to cdktf.out/ (what cdktf.json's app runs)",
  builder: (y) => y.example("$0 synth", "cdktf.out/stacks/<app>-<driver>/cdk.tf.json"),
  handler: run(async (args: GlobalArgs) => {
    const log = reporter(args);
    const { spec, driver } = await open(args, log);
    const out = outDir(spec);
    const names = await synthStacks(spec, driver.stacks(spec), out);
    log.info(`synthesized ${names.join(", ")} to ${out}`);
  }),
};
