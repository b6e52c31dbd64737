// How the serving release runs on a target: systemd (a user unit) where the host runs it, else
// togo's own process manager (setsid + pid files: containers, minimal VMs, this machine).
import { OperationError } from "../../core/errors.js";
import { q, script } from "../../core/shell.js";
import { command, type Command, type HostFacts } from "../../exec/transport.js";
import {
  paths, portOwnerScript, processGroupOurs, processGroupsOurs, processPromoteScript, processStartScript, processStatusScript, processStopScript, processStopSlotsScript,
  READ_LIVE_PORT, slotName,
} from "../scripts.js";

export interface ServiceManager {
  readonly kind: "process" | "systemd";
  /** Restart-style: stops whatever serves (instances too) and starts release `version` on app_port with the live `.env`. */
  restart(version: string): Command;
  /** Stops what serves now (restart-style app or live instance). */
  stop(): Command;
  /** Prints `running <pid> <port>` for what serves now, or `stopped`. */
  status(): Command;
  /** Stops the app (every instance) and removes what the manager installed (destroy). */
  remove(): Command;
  /** Prints `ours`, `none` or `other <pid> <command>`: who listens on the app's port. */
  owns(port: number): Command;

  // Blue-green: a release runs as its own instance on its own port; run/live.port names the live one.
  /** Starts release `version` on `port` beside what serves, with the env it will get (`.env.next`) or the live one. */
  startSlot(version: string, port: number, env: "env" | "envNext"): Command;
  /** `running <pid>` or `stopped`, for the instance on `port`. */
  slotStatus(port: number): Command;
  /** `ours`, `none` or `other …`: is the instance on `port` the one listening there. */
  slotOwns(port: number): Command;
  stopSlot(port: number): Command;
  /** Makes the instance on `port` the live one (it comes back after a reboot); what served before stops after `drainSeconds`. */
  promote(port: number, drainSeconds: number): Command;
  /** Stops instances a dead deploy left (not live, not draining). */
  stopStale(): Command;
  /**
   * systemd: the unit file a release would get (restart-style, or a blue-green instance on `port`),
   * where it lives, and a Command printing the one on the host now (readFileScript's answer).
   */
  unitFile?(version: string, port: number, slot: boolean): { path: string; text: string; read: Command };
}

export interface ProcessManagerInput {
  appDir: string;
  run: string;
  port: number;
}

export function processManager(m: ProcessManagerInput): ServiceManager {
  const run = paths(m.appDir).run;
  const status = script(
    READ_LIVE_PORT(m.appDir),
    `if [ -n "$live" ]; then name=slot-$live; port=$live; else name=app; port=${q(m.port)}; fi`,
    `p=$(cat ${run}/"$name".pid 2>/dev/null); case $p in ''|0|*[!0-9]*) p=;; esac`,
    `if [ -n "$p" ] && kill -0 "$p" 2>/dev/null && [ "$(sed 's/.*) //' /proc/$p/stat 2>/dev/null | cut -c1)" != Z ]; then echo "running $p $port"; else echo stopped; fi`,
  );
  const stopAll = script(processStopSlotsScript(m.appDir, true), processStopScript(m.appDir, "app"));
  return {
    kind: "process",
    restart: (version) =>
      command("service.restart", script(stopAll, processStartScript({ appDir: m.appDir, name: "app", version, run: m.run, port: m.port, envFile: "env" })), {
        what: `starting release ${version}`,
      }),
    stop: () => command("service.stop", stopAll, { what: "stopping the app" }),
    status: () => command("service.status", status, { what: "checking the app" }),
    remove: () => command("service.remove", stopAll, { what: "stopping the app" }),
    owns: (port) => command("service.owns", portOwnerScript(port, processGroupsOurs(m.appDir, [slotName(port), "app"])), { what: `checking who listens on port ${port}` }),
    startSlot: (version, port, env) =>
      command("slot.start", processStartScript({ appDir: m.appDir, name: slotName(port), version, run: m.run, port, envFile: env }), {
        what: `starting release ${version} on port ${port}`,
      }),
    slotStatus: (port) => command("slot.status", processStatusScript(m.appDir, slotName(port)), { what: "checking the new release" }),
    slotOwns: (port) => command("slot.owns", portOwnerScript(port, processGroupOurs(m.appDir, slotName(port))), { what: `checking who listens on port ${port}` }),
    stopSlot: (port) => command("slot.stop", processStopScript(m.appDir, slotName(port)), { what: `stopping the release on port ${port}` }),
    promote: (port, drain) => command("slot.promote", processPromoteScript(m.appDir, port, drain), { what: `making port ${port} live` }),
    stopStale: () => command("slot.stale", processStopSlotsScript(m.appDir), { what: "stopping releases a dead deploy left" }),
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
