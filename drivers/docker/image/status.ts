// A container's live state, read with `docker inspect` (the docker CLI: one way to reach a local
// socket, tcp:// with TLS settings and ssh:// alike), and mapped onto togo's four states.
import type { State } from "../../../src/core/spec.js";
import * as C from "./commands.js";
import { OperationError } from "../../../src/core/errors.js";

/** The parts of `docker inspect` (a container) togo reads. */
export interface ContainerInspect {
  Name?: string;
  Image?: string;
  RestartCount?: number;
  State?: {
    Status?: string;
    Running?: boolean;
    Restarting?: boolean;
    ExitCode?: number;
    StartedAt?: string;
    FinishedAt?: string;
    Error?: string;
    Health?: { Status?: string; FailingStreak?: number; Log?: { ExitCode?: number; Output?: string }[] };
  };
  Config?: { Labels?: Record<string, string> | null; Healthcheck?: { Test?: string[] } };
}

export interface ContainerState {
  state: State;
  healthy: boolean;
  message: string;
  version?: string;
  digest?: string;
}

export const LABEL_APP = "togo.app";
export const LABEL_VERSION = "togo.version";
export const LABEL_DIGEST = "togo.digest";

function lastProbe(c: ContainerInspect): string {
  const log = c.State?.Health?.Log ?? [];
  const last = log[log.length - 1];
  if (!last) return "";
  const out = (last.Output ?? "").trim().split("\n")[0].slice(0, 160);
  return ` (last probe exit ${last.ExitCode ?? "?"}${out ? `: ${out}` : ""})`;
}

/**
 * How long after a restart a container without a health check still counts as crash-looping: a
 * loop is caught running between exits, and Docker's restart delay tops out at a minute.
 */
export const CRASH_WINDOW_MS = 60_000;

const times = (n: number) => `${n} time${n === 1 ? "" : "s"}`;

/**
 * running + healthy → ready; running + starting/unhealthy/no health check → not-ready;
 * exited, dead or restarting → failed; created/paused → not-ready. A crash loop is caught between
 * exits as often as in them, so a container Docker has restarted (RestartCount) that is running but
 * not healthy is failed too: with a health check still starting or failing, or without one within
 * CRASH_WINDOW_MS of its last start.
 */
export function mapContainer(c: ContainerInspect, now = Date.now()): ContainerState {
  const labels = c.Config?.Labels ?? {};
  const base = { version: labels[LABEL_VERSION], digest: labels[LABEL_DIGEST] };
  const s = c.State ?? {};
  const status = s.Status ?? (s.Running ? "running" : "unknown");
  const restarts = c.RestartCount ?? 0;
  if (status === "restarting" || s.Restarting) {
    return { ...base, state: "failed", healthy: false, message: `crash loop: the container keeps exiting (last exit code ${s.ExitCode ?? "?"}); Docker restarted it ${times(restarts)}` };
  }
  if (status === "exited" || status === "dead") {
    const after = restarts ? ` after Docker restarted it ${times(restarts)}` : "";
    return { ...base, state: "failed", healthy: false, message: `${status} with code ${s.ExitCode ?? "?"}${s.FinishedAt ? ` at ${s.FinishedAt}` : ""}${after}${s.Error ? `: ${s.Error}` : ""}` };
  }
  if (status !== "running") return { ...base, state: "not-ready", healthy: false, message: `container is ${status}` };
  const health = s.Health?.Status;
  if (health === "healthy") return { ...base, state: "ready", healthy: true, message: `running and healthy${restarts ? ` (Docker restarted it ${times(restarts)} before)` : ""}` };
  if (restarts > 0) {
    const started = s.StartedAt ? Date.parse(s.StartedAt) : NaN;
    // An unknown start time counts as recent: a loop is never reported as merely starting.
    const recent = Number.isNaN(started) || now - started < CRASH_WINDOW_MS;
    const since = Number.isNaN(started) ? "" : ` ${Math.max(0, Math.round((now - started) / 1000))}s ago`;
    if (health === "starting" || health === "unhealthy" || recent) {
      const why =
        health === "unhealthy"
          ? `is unhealthy (${s.Health?.FailingStreak ?? "?"} failed probes in a row${lastProbe(c)})`
          : health === "starting"
            ? `its health check has not passed since${lastProbe(c)}`
            : "it has no health check to say it is up";
      return { ...base, state: "failed", healthy: false, message: `crash loop: Docker restarted the container ${times(restarts)}; it started again${since} and ${why}` };
    }
  }
  if (health === "starting") return { ...base, state: "not-ready", healthy: false, message: `running; health check starting${lastProbe(c)}` };
  if (health === "unhealthy") {
    return { ...base, state: "not-ready", healthy: false, message: `running but unhealthy: ${s.Health?.FailingStreak ?? "?"} failed probes in a row${lastProbe(c)}` };
  }
  const note = restarts ? `; Docker restarted it ${times(restarts)}, the last over ${CRASH_WINDOW_MS / 1000}s ago` : "";
  return { ...base, state: "not-ready", healthy: false, message: `running, but the container has no Docker health check, so readiness is unknown (set deploy.healthcheck or options.healthcheck_cmd)${note}` };
}

/** Inspects a container; undefined when there is none of that name. Throws when Docker is unreachable. */
export async function inspectContainer(name: string, dockerHost: string): Promise<ContainerInspect | undefined> {
  const r = await C.runCommand(C.dockerInspectContainer(name, dockerHost), { what: `inspecting container ${name}`, check: false });
  if (r.code === 0) {
    const list = JSON.parse(r.stdout.toString("utf8")) as ContainerInspect[];
    return list[0];
  }
  if (/no such (container|object)/i.test(r.stderr)) return undefined;
  throw new OperationError(`cannot read container ${name} from Docker at ${dockerHost}: ${r.stderr.trim().split("\n").slice(-2).join(" ")}`);
}
