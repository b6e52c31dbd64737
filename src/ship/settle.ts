// A release counts only when it answered its health check AND stayed up and healthy for
// `healthcheck.settle` seconds, AND the process listening on its port is the release itself: an app
// that crashes half a second after its first 2xx, or that died with EADDRINUSE while another server
// answers on the port, is not a deploy.
import type { HealthCheck } from "../core/spec.js";
import type { Command, Transport } from "../exec/transport.js";
import { probe, sleep, waitHealthy } from "./health.js";

export interface HealthyInput {
  transport: Transport;
  port: number;
  check: HealthCheck;
  /** Prints `running …` while the release's process runs (a crash fails at once, not at the timeout). */
  status: Command;
  /** Prints `ours`, `none` or `other <pid> <command>`: who listens on the port. */
  owner: Command;
  signal?: AbortSignal;
}

export interface HealthyOutcome {
  ok: boolean;
  /** What happened, for messages: the probe's answer, a crash, another process on the port. */
  detail: string;
  attempts: number;
  ms: number;
}

/** Waits for the first healthy answer, then holds the release to it for the settle window. */
export async function waitSettled(i: HealthyInput): Promise<HealthyOutcome> {
  const started = performance.now();
  const { transport: t, check } = i;
  const url = `${await t.reach(i.port)}${check.path}`;
  const first = await waitHealthy(url, {
    timeoutSeconds: check.timeout,
    intervalSeconds: check.interval,
    signal: i.signal,
    stillRunning: async () => (await t.run(i.status, { check: false })).stdout.startsWith("running"),
  });
  const done = (ok: boolean, detail: string): HealthyOutcome => ({ ok, detail, attempts: first.attempts, ms: performance.now() - started });
  if (!first.ok) return done(false, first.detail);
  const owner = async () => {
    const said = (await t.run(i.owner, { check: false })).stdout.trim();
    if (said === "ours") return undefined;
    if (said === "none") return `nothing listens on port ${i.port} any more (the process exited)`;
    const [, pid, ...cmd] = said.split(" ");
    return `port ${i.port} is held by another process (${pid === "?" ? "of another user" : `pid ${pid}${cmd.length ? `, ${cmd.join(" ")}` : ""}`}), not by this release`;
  };
  const taken = await owner();
  if (taken) return done(false, taken);
  const deadline = performance.now() + check.settle * 1000;
  while (performance.now() < deadline) {
    await sleep(Math.min(check.interval * 1000, Math.max(0, deadline - performance.now())), i.signal);
    if (i.signal?.aborted) return done(false, "interrupted");
    const p = await probe(url, Math.max(100, Math.min(5000, check.interval * 1000 * 4)));
    if (!p.ok) {
      const secs = ((performance.now() - (deadline - check.settle * 1000)) / 1000).toFixed(1);
      return done(false, `it answered, then ${p.detail} ${secs}s into the ${check.settle}s settle window`);
    }
  }
  if (check.settle > 0) {
    const gone = await owner();
    if (gone) return done(false, `${gone} at the end of the ${check.settle}s settle window`);
  }
  return done(true, first.detail);
}
