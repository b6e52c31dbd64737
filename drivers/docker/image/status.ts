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
 * running + healthy → ready; running + starting/unhealthy/no health check → not-ready;
 * exited, dead or restarting (a crash loop) → failed; created/paused → not-ready.
 */
export function mapContainer(c: ContainerInspect): ContainerState {
  const labels = c.Config?.Labels ?? {};
  const base = { version: labels[LABEL_VERSION], digest: labels[LABEL_DIGEST] };
  const s = c.State ?? {};
  const status = s.Status ?? (s.Running ? "running" : "unknown");
  const restarts = c.RestartCount ?? 0;
  if (status === "restarting" || s.Restarting) {
    return { ...base, state: "failed", healthy: false, message: `restarting: the container keeps exiting (exit code ${s.ExitCode ?? "?"}, restarted ${restarts} times)` };
  }
  if (status === "exited" || status === "dead") {
    return { ...base, state: "failed", healthy: false, message: `${status} with code ${s.ExitCode ?? "?"}${s.FinishedAt ? ` at ${s.FinishedAt}` : ""}${s.Error ? `: ${s.Error}` : ""}` };
  }
  if (status !== "running") return { ...base, state: "not-ready", healthy: false, message: `container is ${status}` };
  const health = s.Health?.Status;
  if (health === "healthy") return { ...base, state: "ready", healthy: true, message: `running and healthy${restarts ? ` (restarted ${restarts} times)` : ""}` };
  if (health === "starting") return { ...base, state: "not-ready", healthy: false, message: `running; health check starting${lastProbe(c)}` };
  if (health === "unhealthy") {
    return { ...base, state: "not-ready", healthy: false, message: `running but unhealthy: ${s.Health?.FailingStreak ?? "?"} failed probes in a row${lastProbe(c)}` };
  }
  return { ...base, state: "not-ready", healthy: false, message: "running, but the container has no Docker health check, so readiness is unknown (set deploy.healthcheck or options.healthcheck_cmd)" };
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
