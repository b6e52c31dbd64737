import type { CommandModule } from "yargs";
import { open, print, reporter, run, table, type GlobalArgs } from "../common.js";

/** Exit code of `togo status` when it could tell, but the app is not ready (as `systemctl is-active`). */
export const NOT_READY = 3;

export const status: CommandModule<GlobalArgs, GlobalArgs> = {
  command: "status",
  describe: "Terraform outputs and the live state of the app (release, health); exits 3 when it is not ready",
  builder: (y) =>
    y
      .option("host", { type: "string", requiresArg: true, describe: "work on this host of a fleet (deploy.hosts) only" })
      .option("json", { type: "boolean", describe: "print one JSON object: app, driver, state, url, version, healthy, outputs, message" })
      .example("$0 status --json", "machine-readable status")
      .example("$0 status > /dev/null && echo ready", "exit 0 when the app is ready, 3 when it is not"),
  handler: run(async (args: GlobalArgs) => {
    const log = reporter({ ...args, quiet: true });
    const { spec, driver } = await open(args, log, { host: args.host });
    const s = await driver.status(spec);
    const data = {
      app: spec.app,
      driver: driver.name,
      state: s.state,
      url: s.url ?? null,
      version: s.version ?? null,
      healthy: s.healthy,
      outputs: s.outputs,
      message: s.message,
      ...(s.hosts ? { hosts: s.hosts } : {}),
    };
    print(args, data, () =>
      table([
        ["app", spec.app],
        ["driver", driver.name],
        ["state", s.state],
        ["version", s.version ?? "-"],
        ["url", s.url ?? "-"],
        ["healthy", s.healthy ? "yes" : "no"],
        ["message", s.message],
        ...(s.hosts ?? []).map((h) => [`host ${h.host}`, `${h.state}${h.version ? ` ${h.version}` : ""}: ${h.message}`] as [string, string]),
        ...Object.entries(s.outputs).map(([k, v]) => [`output.${k}`, typeof v === "string" ? v : JSON.stringify(v)] as [string, string]),
      ]),
    );
    return s.state === "ready" ? 0 : NOT_READY;
  }),
};
