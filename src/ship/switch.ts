// The switch: the one step that makes a release live, used by deploy and rollback alike. `current`
// is pointed at the release (and, on a deploy, the verified env made live), the service restarted
// on app_port and health-checked; if that fails, the previous release (and its env) come back.
import type { Spec } from "../core/spec.js";
import { waitSettled } from "./settle.js";
import type { OpenTarget } from "./target.js";

export interface SwitchInput {
  spec: Spec;
  t: OpenTarget;
  version: string;
  /** What served before: switched back to when the new release fails (nothing when undefined). */
  previous?: string;
  /** A deploy makes `.env.next` live; a rollback keeps the live env. */
  takeNextEnv: boolean;
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
  await t.transport.run(t.dir.switchTo(s.version, s.takeNextEnv));
  const restarted = await t.transport.run(service.restart(s.version), { check: false });
  // The same bar as the candidate's: healthy, settled, and the one listening on app_port.
  const health =
    restarted.code === 0
      ? await waitSettled({ transport: t.transport, port: spec.appPort, check: spec.healthcheck, status: service.status(), owner: service.owns(spec.appPort), signal: s.signal })
      : { ok: false, detail: `the service did not start: ${restarted.stderr.trim()}` };
  if (health.ok) return { ok: true, detail: health.detail };
  // Undo the cutover: the previous release (and the env it ran with) serve again.
  await t.transport.run(t.dir.restore(s.previous, s.takeNextEnv), { check: false });
  if (s.previous) await t.transport.run(service.restart(s.previous), { check: false });
  else await t.transport.run(service.stop(), { check: false });
  return { ok: false, detail: health.detail };
}
