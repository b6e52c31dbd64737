// The togo CLI: one yargs module a command (src/cli/commands/). Exit codes: 0 ok, 1 the operation
// failed, 2 bad usage or bad config.
import yargs from "yargs";
import { deploy } from "./commands/deploy.js";
import { destroy } from "./commands/destroy.js";
import { diff } from "./commands/diff.js";
import { drivers } from "./commands/drivers.js";
import { exec } from "./commands/exec.js";
import { lock } from "./commands/lock.js";
import { logs } from "./commands/logs.js";
import { provision } from "./commands/provision.js";
import { releases } from "./commands/releases.js";
import { rollback } from "./commands/rollback.js";
import { status } from "./commands/status.js";
import { synth } from "./commands/synth.js";
import type { GlobalArgs } from "./common.js";
import { TOGO_VERSION } from "../core/version.js";

function wantsHelp(argv: string[]): boolean {
  return argv.length === 0 || argv.some((a) => a === "--help" || a === "-h" || a === "help");
}

export async function main(argv: string[]): Promise<void> {
  // `--version` belongs to `togo deploy`, so togo's own version is only a bare `togo --version`.
  if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V")) {
    process.stdout.write(`${TOGO_VERSION}\n`);
    return;
  }
  let usageFailed = false;
  const cli = yargs(argv)
    .scriptName("togo")
    .usage("$0 <command> [options]\n\nProvision infrastructure with Terraform CDK and ship your app onto it.")
    .option("config", { alias: "c", type: "string", default: "togo.yaml", describe: "path to togo.yaml", global: true })
    .option("quiet", { alias: "q", type: "boolean", describe: "print no progress lines", global: true })
    .command<GlobalArgs>([provision, deploy, status, destroy, diff, rollback, releases, drivers, synth, logs, exec, lock] as never)
    .completion("completion", "print a bash/zsh completion script (togo completion >> ~/.bashrc)")
    .demandCommand(1, "name a command (togo --help lists them)")
    .parserConfiguration({ "populate--": true })
    .strict()
    .version(false)
    .help()
    .alias("h", "help")
    // Wrapping measures every help line (~25 ms): only worth it when help is printed.
    .wrap(wantsHelp(argv) ? Math.min(110, process.stdout.columns || 100) : null)
    .epilog("Exit codes: 0 ok, 1 the operation failed, 2 bad usage or bad config. Docs: README.md")
    .fail((msg, err, y) => {
      if (err) throw err;
      usageFailed = true;
      void y;
      process.stderr.write(`togo: ${msg}\nRun togo --help for usage.\n`);
    });
  await cli.parseAsync();
  if (usageFailed) process.exitCode = 2;
}
