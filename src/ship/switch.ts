// The switch: the one step that makes a release live, used by deploy and rollback alike.
// Restart-style: `current` is pointed at the release (and, on a deploy, the verified env made
// live), the service restarted on app_port and health-checked; if that fails, the previous release
// (and its env) come back. Blue-green: the new release already runs (verified) on its own port;
// `current` moves, the front (Caddy) is pointed at it gracefully and it must settle there; only
// when every host is through does the old one get its drain (goLive). Until then revertLive puts
// everything back.
import type { Reporter } from "../core/log.js";
import type { Spec } from "../core/spec.js";
import { script } from "../core/shell.js";
import { checkResult } from "../exec/local.js";
import { command, type Command } from "../exec/transport.js";
import { SWITCH_NOT_MOVED, toTheEnd } from "./scripts.js";
import { waitSettled } from "./settle.js";
import type { OpenTarget } from "./target.js";

/** What routes users to a host's live release: a Caddy site on the host, or the app's own Caddy. */
export interface Front {
  /** true, or why this host has no front (blue-green needs one). */
  available(t: OpenTarget): Promise<true | string>;
  /** Points the front at the release listening on `port` (a graceful reload). */
  site(t: OpenTarget, port: number, log: Reporter): Promise<void>;
  /** Before a restart-style switch: the front as it must be for a release on app_port. */
  forRestart(t: OpenTarget, log: Reporter): Promise<void>;
}

export interface SwitchInput {
  spec: Spec;
  t: OpenTarget;
  version: string;
  /** What served before: switched back to when the new release fails (nothing when undefined). */
  previous?: string;
  /** A deploy makes `.env.next` live; a rollback keeps the live env. */
  takeNextEnv: boolean;
  /** Stopped first, in the switch's own command (a deploy's verified candidate): one round trip less. */
  stopFirst?: Command;
  signal?: AbortSignal;
}

export interface SwitchOutcome {
  ok: boolean;
  /** Why it failed: the health check's answer, or the service's error. */
  detail: string;
}

export async function switchRelease(s: SwitchInput): Promise<SwitchOutcome> {
  const { spec, t } = s;
  const service = await t.service();
  // One command that runs to its end: `current` never names a release that was not started.
  const switchTo = t.dir.switchTo(s.version, s.takeNextEnv);
  const body = script(s.stopFirst ? `(${s.stopFirst.script}) || true` : "", `(${switchTo.script}) || exit ${SWITCH_NOT_MOVED}`, service.restart(s.version).script);
  const restarted = await t.transport.run(command(switchTo.op, toTheEnd(body), { what: "switching current and restarting" }), { check: false });
  if (restarted.code === SWITCH_NOT_MOVED) checkResult(restarted, t.transport.target, switchTo, {});
  // The same bar as the candidate's: healthy, settled, and the one listening on app_port.
  const health =
    restarted.code === 0
      ? await waitSettled({ transport: t.transport, port: spec.appPort, check: spec.healthcheck, status: service.status(), owner: service.owns(spec.appPort), signal: s.signal })
      : { ok: false, detail: `the service did not start: ${restarted.stderr.trim()}` };
  if (health.ok) return { ok: true, detail: health.detail };
  await undoRestart(s);
  return { ok: false, detail: health.detail };
}

/** Back to the previous release (and the env it ran with), restarted on app_port; or nothing. */
async function undoRestart(s: Omit<SwitchInput, "signal">): Promise<void> {
  const { t } = s;
  const service = await t.service();
  await t.transport.run(t.dir.restore(s.previous, s.takeNextEnv), { check: false });
  if (s.previous) await t.transport.run(service.restart(s.previous), { check: false });
  else await t.transport.run(service.stop(), { check: false });
}

export interface LiveInput extends Omit<SwitchInput, "signal"> {
  log: Reporter;
  front: Front;
  strategy?: "blue-green" | "restart";
  /** Blue-green: the port the new release runs on. */
  port: number;
  /** Blue-green: the port of what served before (read by frontSwitch); undefined: app_port. */
  oldPort?: number;
  signal?: AbortSignal;
}

/** Blue-green: `current` to the release, the front to its port, and it must settle there; else all back. */
export async function frontSwitch(i: LiveInput): Promise<SwitchOutcome> {
  const { t, spec } = i;
  const service = await t.service();
  i.oldPort = Number((await t.transport.run(t.dir.livePort())).stdout.trim()) || undefined;
  await t.transport.run(t.dir.switchTo(i.version, i.takeNextEnv));
  let health: { ok: boolean; detail: string };
  try {
    await i.front.site(t, i.port, i.log);
    health = await waitSettled({ transport: t.transport, port: i.port, check: spec.healthcheck, status: service.slotStatus(i.port), owner: service.slotOwns(i.port), signal: i.signal });
  } catch (err) {
    health = { ok: false, detail: err instanceof Error ? err.message : String(err) };
  }
  if (health.ok) return { ok: true, detail: health.detail };
  await revertLive(i);
  return { ok: false, detail: health.detail };
}

/** After a successful switch: the new release is the live one for good, and the old one gets its drain. */
export async function goLive(i: LiveInput): Promise<void> {
  const service = await i.t.service();
  await i.t.transport.run(service.promote(i.port, i.spec.drain));
}

/** Undoes a switch that went through on this host (another host failed): what served before serves again. */
export async function revertLive(i: LiveInput): Promise<void> {
  if (i.strategy === "restart") return undoRestart(i);
  const { t } = i;
  const service = await t.service();
  if (i.previous) await i.front.site(t, i.oldPort ?? i.spec.appPort, i.log).catch((e: unknown) => i.log.warn(`while pointing Caddy back on ${t.name}: ${String(e)}`));
  await t.transport.run(t.dir.restore(i.previous, i.takeNextEnv), { check: false });
  await t.transport.run(service.stopSlot(i.port), { check: false });
}
