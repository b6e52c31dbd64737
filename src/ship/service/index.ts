// How the serving release runs on a target: systemd (a user unit) where the host runs it, else
// togo's own process manager (setsid + pid files: containers, minimal VMs, this machine).
import { OperationError } from "../../core/errors.js";
import { script } from "../../core/shell.js";
import { command, type Command, type HostFacts } from "../../exec/transport.js";
import { portOwnerScript, processGroupOurs, processStartScript, processStatusScript, processStopScript } from "../scripts.js";

export interface ServiceManager {
  readonly kind: "process" | "systemd";
  /** Stops whatever serves and starts release `version` on app_port with the live `.env`. */
  restart(version: string): Command;
  stop(): Command;
  /** Prints `running <pid>` or `stopped`. */
  status(): Command;
  /** Stops the app and removes what the manager installed (destroy). */
  remove(): Command;
  /** Prints `ours`, `none` or `other <pid> <command>`: who listens on the app's port. */
  owns(port: number): Command;
}

export interface ProcessManagerInput {
  appDir: string;
  run: string;
  port: number;
}

export function processManager(m: ProcessManagerInput): ServiceManager {
  const stop = () => command("service.stop", processStopScript(m.appDir, "app"), { what: "stopping the app" });
  return {
    kind: "process",
    restart: (version) =>
      command(
        "service.restart",
        script(processStopScript(m.appDir, "app"), processStartScript({ appDir: m.appDir, name: "app", version, run: m.run, port: m.port, envFile: "env" })),
        { what: `starting release ${version}` },
      ),
    stop,
    status: () => command("service.status", processStatusScript(m.appDir, "app"), { what: "checking the app" }),
    remove: stop,
    owns: (port) => command("service.owns", portOwnerScript(port, processGroupOurs(m.appDir, "app")), { what: `checking who listens on port ${port}` }),
  };
}

export type ServiceMode = "auto" | "systemd" | "process";

/** systemd or the process manager, from the option and what the host has. */
export function chooseService(mode: ServiceMode, facts: Pick<HostFacts, "systemd" | "userSystemd">, target: string): "systemd" | "process" {
  if (mode === "process") return "process";
  const usable = facts.systemd && facts.userSystemd;
  if (mode === "systemd" && !usable) {
    throw new OperationError(
      facts.systemd
        ? `options.service is systemd but on ${target} the user systemd manager does not answer or lingering is off (a user unit would stop at logout); enable lingering as root (loginctl enable-linger USER) or run togo provision`
        : `options.service is systemd but ${target} does not run systemd; use service: auto or process`,
    );
  }
  return usable ? "systemd" : "process";
}
