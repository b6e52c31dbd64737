// The togo CLI: one yargs module a command (src/cli/commands/). Exit codes: 0 ok, 1 the operation
// failed, 2 bad usage or bad config (nothing runs), 3 `togo status`: the app is not ready.
import yargs from "yargs";
import { artifacts } from "./commands/artifacts.js";
import { build } from "./commands/build.js";
import { deploy } from "./commands/deploy.js";
import { dev } from "./commands/dev.js";
import { destroy } from "./commands/destroy.js";
import { diff } from "./commands/diff.js";
import { drivers } from "./commands/drivers.js";
import { exec } from "./commands/exec.js";
import { init } from "./commands/init.js";
import { lock } from "./commands/lock.js";
import { logs } from "./commands/logs.js";
import { provision } from "./commands/provision.js";
import { releases } from "./commands/releases.js";
import { rollback } from "./commands/rollback.js";
import { status } from "./commands/status.js";
import { schema } from "./commands/schema.js";
import { stages } from "./commands/stages.js";
import { synth } from "./commands/synth.js";
import type { GlobalArgs } from "./common.js";
import { once, usageError } from "./usage.js";
import { UsageError } from "../core/errors.js";
import { TOGO_VERSION } from "../core/version.js";

const COMMANDS = [init, provision, build, deploy, status, destroy, diff, rollback, releases, drivers, stages, synth, schema, logs, exec, lock, dev, artifacts];
const WORDS = {
  top: [...COMMANDS.map((c) => String(c.command).split(" ")[0]), "completion"],
  sub: { lock: ["release"], dev: ["status"], artifacts: ["serve", "ls"] } as Record<string, string[]>,
};

/** The options the command being parsed accepts (yargs has them while it validates it). */
function optionNames(cli: unknown): string[] {
  return Object.keys((cli as { getOptions(): { key: Record<string, unknown> } }).getOptions().key);
}

function wantsHelp(argv: string[]): boolean {
  return argv.length === 0 || argv.some((a) => a === "--help" || a === "-h" || a === "help");
}

export async function main(argv: string[]): Promise<void> {
  // `--version` belongs to `togo deploy`, so togo's own version is only a bare `togo --version`.
  if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V")) {
    process.stdout.write(`${TOGO_VERSION}\n`);
    return;
  }
  const cli = yargs(argv)
    .scriptName("togo")
    .usage("$0 <command> [options]\n\nProvision infrastructure with Terraform CDK and ship your app onto it.")
    .option("config", { alias: "c", type: "string", default: "togo.yaml", requiresArg: true, coerce: once("--config (-c)"), describe: "path to togo.yaml", global: true })
    .option("stage", { alias: "s", type: "string", requiresArg: true, coerce: once("--stage (-s)"), describe: "the stage (stages: in togo.yaml); default: TOGO_STAGE, else none", global: true })
    .option("quiet", { alias: "q", type: "boolean", describe: "print no progress lines", global: true })
    .command<GlobalArgs>(COMMANDS as never)
    .completion("completion", "print a bash/zsh completion script (togo completion >> ~/.bashrc)")
    .demandCommand(1, "name a command")
    // Everything after `--` is the user's (togo exec -- CMD), byte for byte, and numeric flags are
    // checked as typed (src/cli/usage.ts): yargs' number parsing would turn 0x10 into 16, 1.10
    // into 1.1 and abc into NaN.
    .parserConfiguration({ "populate--": true, "parse-numbers": false, "parse-positional-numbers": false })
    .strict()
    // usageError reads yargs' messages, so they must not follow the user's locale.
    .locale("en")
    .version(false)
    .help()
    .alias("h", "help")
    // Wrapping measures every help line (~25 ms): only worth it when help is printed.
    .wrap(wantsHelp(argv) ? Math.min(110, process.stdout.columns || 100) : null)
    .epilog("Exit codes: 0 ok, 1 the operation failed, 2 bad usage or bad config (nothing was run), 3 status: the app is not ready. Docs: README.md")
    // Validation failures must throw: a fail handler that returns lets yargs go on to run the
    // command's handler with the arguments it has just refused.
    .fail((msg, err) => {
      if (err && err.name !== "YError") throw err;
      throw usageError(msg ?? err?.message ?? "bad usage", argv, optionNames(cli), WORDS);
    });
  try {
    await cli.parseAsync();
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`togo: ${err.message}\n`);
    process.exitCode = 2;
  }
}
