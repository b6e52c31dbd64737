import type { CommandModule } from "yargs";
import { loadConfig, stageNames } from "../../config/load.js";
import { ConfigError } from "../../core/errors.js";
import { print, run, table, type GlobalArgs } from "../common.js";

interface StageRow {
  /** null: the file without a stage. */
  stage: string | null;
  driver?: string;
  hosts?: string[];
  domain?: string;
  app_dir?: string;
  /** Why this stage's config is not usable (each stage is validated as a deploy would). */
  error?: string;
}

export const stages: CommandModule<GlobalArgs, GlobalArgs> = {
  command: "stages",
  describe: "list the stages of togo.yaml (stages:), each validated as a deploy would",
  builder: (y) => y.option("json", { type: "boolean", describe: "print one object per stage" }).example("$0 stages", "(none), staging, production"),
  handler: run(async (args: GlobalArgs) => {
    const names = [null, ...stageNames(args.config)];
    const rows: StageRow[] = names.map((stage) => {
      try {
        const spec = loadConfig(args.config, { stage: stage ?? "", env: { ...process.env, TOGO_STAGE: "" } });
        const hosts = spec.hosts ?? (spec.host ? [spec.host] : undefined);
        return { stage, driver: spec.provider, ...(hosts ? { hosts } : {}), ...(spec.domain ? { domain: spec.domain } : {}), app_dir: spec.appDir };
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        return { stage, error: err.message };
      }
    });
    print(args, rows, () =>
      table(rows.map((r) => [r.stage ?? "(none)", r.error ? `invalid: ${r.error.split("\n").slice(1).join("; ").trim() || r.error}` : [r.driver, r.hosts?.join(","), r.domain, r.app_dir].filter(Boolean).join("  ")])),
    );
    return rows.some((r) => r.error) ? 2 : 0;
  }),
};
