// Fan-out over the hosts of a fleet: a per-host step runs on every host at once (at most `parallel`
// at a time, and at most 30 new connections at a time), each host's line prefixed with its name. The
// step ends when it ended on every host, so the stage after it starts nowhere before this one is done
// everywhere: that is the barrier that keeps any host from switching before every host verified.
import { OperationError, TogoError } from "../core/errors.js";
import { formatMs, type Reporter } from "../core/log.js";

export interface HostWork {
  /** For messages: `user@host:port` or `local`. */
  name: string;
}

export interface FanOut {
  parallel?: number;
  log: Reporter;
  /** The stage, for the per-host lines of a fleet. */
  what: string;
  signal?: AbortSignal;
}

/** Connection starts at once, whatever `parallel` says (sshd's MaxStartups and the user's uplink). */
export const MAX_PARALLEL = 30;

/**
 * Runs `fn` on every host; waits for all of them even when one fails (so every cleanup a host
 * registers is in place), then throws the first failure, naming every host that failed.
 */
export async function eachHost<H extends HostWork>(hosts: H[], o: FanOut, fn: (h: H) => Promise<void>): Promise<void> {
  if (hosts.length === 1) return fn(hosts[0]);
  const limit = Math.max(1, Math.min(o.parallel ?? hosts.length, MAX_PARALLEL));
  const failures: { host: H; err: unknown }[] = [];
  let next = 0;
  const worker = async () => {
    while (next < hosts.length) {
      const h = hosts[next++];
      if (o.signal?.aborted) return;
      const started = performance.now();
      try {
        await fn(h);
        o.log.info(`  ${h.name}: ✓ ${o.what} ${formatMs(performance.now() - started)}`);
      } catch (err) {
        o.log.info(`  ${h.name}: ✗ ${o.what} ${formatMs(performance.now() - started)}`);
        failures.push({ host: h, err });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, hosts.length) }, worker));
  if (failures.length === 0) return;
  const first = failures[0].err;
  if (failures.length === 1) throw first;
  const names = failures.map((f) => f.host.name).join(", ");
  const msg = first instanceof TogoError || first instanceof Error ? first.message : String(first);
  if (first instanceof TogoError && !(first instanceof OperationError)) throw first;
  throw new OperationError(`${o.what} failed on ${failures.length} hosts (${names}); the first: ${msg}`);
}

/** eachHost over a deploy's or rollback's hosts, with its `parallel` and reporter, stopping on the run's signal. */
export function onEveryHost<H extends HostWork>(
  ctx: { hosts: H[]; spec: { parallel?: number }; log: Reporter },
  signal: AbortSignal,
  what: string,
  fn: (h: H) => Promise<void>,
): Promise<void> {
  return eachHost(ctx.hosts, { parallel: ctx.spec.parallel, log: ctx.log, what, signal }, fn);
}

/** The order locks are taken in: fixed (by name), so two fleet deploys never hold half each. */
export function inLockOrder<H extends HostWork>(hosts: H[]): H[] {
  return [...hosts].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Runs `fn` on batches of `size` hosts one after the other (0: all hosts in one batch). */
export async function inBatches<H extends HostWork>(hosts: H[], size: number, log: Reporter, fn: (batch: H[]) => Promise<void>): Promise<void> {
  const n = size > 0 ? size : hosts.length;
  for (let i = 0; i < hosts.length; i += n) {
    const batch = hosts.slice(i, i + n);
    if (n < hosts.length) log.info(`batch ${i / n + 1} of ${Math.ceil(hosts.length / n)}: ${batch.map((h) => h.name).join(", ")}`);
    await fn(batch);
  }
}
