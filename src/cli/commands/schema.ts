import type { CommandModule } from "yargs";
import { run, type GlobalArgs } from "../common.js";

export const schema: CommandModule<GlobalArgs, GlobalArgs> = {
  command: "schema",
  describe: "print the JSON Schema of togo.yaml (for editors)",
  builder: (y) => y.example("$0 schema > togo.schema.json", "then point your editor's YAML support at it"),
  handler: run(async () => {
    const { togoJsonSchema } = await import("../../config/json-schema.js");
    process.stdout.write(`${JSON.stringify(togoJsonSchema(), null, 2)}\n`);
  }),
};
