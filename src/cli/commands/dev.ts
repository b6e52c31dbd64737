import type { CommandModule } from "yargs";
import { InterruptedError } from "../../core/errors.js";
import { interruptible, print, reporter, run, table, type GlobalArgs } from "../common.js";
import { openDev } from "../service.js";
import { once } from "../usage.js";
import { NOT_READY } from "./status.js";

interface DevArgs extends GlobalArgs {
  type?: string;
}

const devStatus: CommandModule<GlobalArgs, DevArgs> = {
  command: "status",
  describe: "the state of a running togo dev (pid, state, last reload, restarts); exits 3 when it is not ready",
  builder: (y) => y.option("json", { type: "boolean", describe: "print one JSON object: app, type, state, url, pid, last_reload, reloads, restarts, message" }),
  handler: run(async (args: DevArgs) => {
    const log = reporter({ ...args, quiet: true });
    const { recordedDevState } = await import("../../dev/state-file.js");
    const { workspaceOf } = await import("../../core/workspace.js");
    const { loadConfig } = await import("../../config/load.js");
    // --type, else the type the running manager recorded (`togo dev --type T` is read by T's status).
    const recorded = recordedDevState(workspaceOf(loadConfig(args.config, { env: process.env, stage: args.stage })).devStateFile);
    const { config, manager } = await openDev(args.config, log, { stage: args.stage, withEnv: false, type: args.type ?? (typeof recorded?.type === "string" ? recorded.type : undefined) });
    const s = await manager.status(config);
    const data = {
      app: config.spec.app,
      type: manager.type,
      state: s.state,
      url: s.url ?? null,
      pid: s.pid ?? null,
      last_reload: s.lastReload ?? null,
      reloads: s.reloads ?? 0,
      restarts: s.restarts ?? 0,
      message: s.message,
    };
    print(args, data, () =>
      table([
        ["app", data.app],
        ["type", data.type],
        ["state", data.state],
        ["url", data.url ?? "-"],
        ["pid", data.pid === null ? "-" : String(data.pid)],
        ["last reload", data.last_reload ?? "-"],
        ["reloads", String(data.reloads)],
        ["restarts", String(data.restarts)],
        ["message", data.message],
      ]),
    );
    return s.state === "ready" ? 0 : NOT_READY;
  }),
};

export const dev: CommandModule<GlobalArgs, DevArgs> = {
  command: "dev",
  describe: "run the app for development and reload it on every change (dev: in togo.yaml); togo dev status shows its state",
  builder: (y) =>
    y
      .command(devStatus)
      .option("type", { type: "string", requiresArg: true, coerce: once("--type"), describe: "the reloader type (overrides dev.type): process, or one a plugin registers" })
      .example("$0 dev", "run the app on dev.port and reload it when a watched file changes (Ctrl-C stops it)")
      .example("$0 dev status --json", "the running togo dev's state") as never,
  handler: run(async (args: DevArgs) => {
    const log = reporter(args);
    const { config, manager } = await openDev(args.config, log, { type: args.type, stage: args.stage, withEnv: true });
    await interruptible(async (signal) => {
      // A manager may wait for the signal holding nothing open (a plugin's may); without a handle
      // Node would end the process there, before Ctrl-C could stop anything.
      const keepAlive = setInterval(() => undefined, 2 ** 30);
      try {
        await manager.run(config, signal);
      } finally {
        clearInterval(keepAlive);
      }
      if (signal.aborted) {
        const sig = String(signal.reason ?? "SIGINT");
        throw new InterruptedError(sig, `togo dev stopped (${sig}); what it started has stopped`);
      }
    });
  }),
};
