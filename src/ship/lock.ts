// The deploy lock on a target: `mkdir` of app_dir/.lock (atomic), holding who, when and which
// version. A second deploy is refused naming the holder; --lock-wait waits; an old lock is called
// stale with the way to break it. A fleet takes the lock on every host or on none.
import { hostname, userInfo } from "node:os";
import { LockHeldError, OperationError } from "../core/errors.js";
import type { Reporter } from "../core/log.js";
import { eachHost, inLockOrder, type HostWork } from "./fleet.js";
import { LOCK_HELD } from "./scripts.js";
import { checkParts, runBatch } from "../exec/batch.js";
import type { Command, CommandResult } from "../exec/transport.js";
import type { OpenTarget } from "./target.js";

/** A lock stays valid this long; an older one is reported as stale with how to break it. */
export const LOCK_TTL_SECONDS = 30 * 60;

export interface HeldLock {
  token: string;
  text: string;
}

/** Work that travels in the lock's round trip: `before` the first ask, `after` it once the lock is taken. */
export interface AroundLock {
  before?: Command[];
  after?: Command[];
}

export async function acquireLock(t: OpenTarget, app: string, version: string, waitSeconds: number, signal?: AbortSignal, around: AroundLock = {}): Promise<HeldLock & { after: CommandResult[] }> {
  const token = `${userInfo().username}@${hostname()}:${process.pid}:${Date.now()}`;
  const text = `holder=${token} time=${new Date().toISOString()} version=${version} app=${app}`;
  const deadline = Date.now() + waitSeconds * 1000;
  let before = around.before ?? [];
  const after = around.after ?? [];
  for (;;) {
    const results = await runBatch(t.transport, [...before, t.dir.lockAcquire(text), ...after], { check: false, signal });
    const r = results[before.length] ?? { code: 1, stdout: "", stderr: "the lock was not asked for" };
    // Neither taken nor held by another: cut off (an interrupt, a lost connection), the lock may have
    // been taken before the command stopped. Given back if it is this deploy's (its token), else kept.
    if (r.code !== 0 && r.code !== LOCK_HELD) await releaseLock(t, { token, text }).catch(() => undefined);
    // What must come first is checked as if it had run alone (the batch stopped there if it failed).
    checkParts(t.name, before, results);
    const taken = results.slice(before.length + 1);
    before = [];
    if (r.code === 0) return { token, text, after: taken };
    if (r.code !== LOCK_HELD) throw new OperationError(`could not take the deploy lock on ${t.name}: ${r.stderr.trim()}`);
    if (Date.now() >= deadline || signal?.aborted) {
      const held = r.stdout.trim();
      const time = /time=(\S+)/.exec(held)?.[1];
      const age = time ? (Date.now() - Date.parse(time)) / 1000 : 0;
      const dead = holderGone(held);
      const stale = dead
        ? ` Its holder (pid ${dead} on this machine) is no longer running: a deploy was killed. Check what serves (togo status), then break the lock with: togo lock release`
        : age > LOCK_TTL_SECONDS
          ? ` It is stale (${Math.round(age / 60)} min old); if no deploy is running, break it with: togo lock release`
          : " Wait for it (--lock-wait SECONDS), or if no deploy is running: togo lock release";
      throw new LockHeldError(`another deploy of ${app} holds the lock on ${t.name}: ${held}.${stale}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The pid of a lock holder that ran on this machine and is gone, else undefined. */
function holderGone(held: string): number | undefined {
  const m = /holder=[^@\s]+@([^:\s]+):(\d+):/.exec(held);
  if (!m || m[1] !== hostname()) return undefined;
  const pid = Number(m[2]);
  try {
    process.kill(pid, 0);
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ESRCH" ? pid : undefined;
  }
}

export async function releaseLock(t: OpenTarget, lock: HeldLock): Promise<void> {
  await t.transport.run(t.dir.lockRelease(lock.token), { check: false });
}

export interface LockRun {
  signal: AbortSignal;
  /** Registers the release, run when the deploy or rollback ends whatever happened. */
  finally(what: string, fn: () => Promise<unknown>): void;
  forget(what: string): void;
}

export interface LockEveryHost<H> {
  app: string;
  version: string;
  waitSeconds: number;
  parallel?: number;
  log: Reporter;
  /** Runs on a host before its lock is first asked for, in the same round trip (the deploy makes the layout). */
  before?: (t: OpenTarget) => Command[];
  /**
   * Runs on a host as soon as its lock is taken, in the same round trip (work that needs the lock);
   * each result is checked as if it had run alone, then handed to `locked`.
   */
  after?: (t: OpenTarget) => Promise<Command[]>;
  locked?: (h: H, results: CommandResult[]) => void;
}

/**
 * The lock on every host of a fleet, or a refusal before anything changed. First on every host at
 * once without waiting, the usual case: one round trip however many hosts. If a lock is held
 * anywhere, the ones this attempt took go back at once, then the locks are taken one host after
 * the other in a fixed order, waiting up to `waitSeconds` each: two fleet deploys never hold half
 * each, and the first host refusing refuses the deploy with its holder named.
 */
export async function lockEveryHost<H extends HostWork & { t: OpenTarget }>(hosts: H[], o: LockEveryHost<H>, run: LockRun): Promise<void> {
  const prepared = new Set<H>();
  const releasing = (h: H) => `releasing the lock on ${h.t.name}`;
  const locked = (h: H, after: Command[], results: CommandResult[]) => {
    checkParts(h.t.name, after, results);
    o.locked?.(h, results);
  };
  // One host: its `after` work rides in the lock's round trip. A fleet changes nothing anywhere
  // before every lock is held: `after` runs on every host once they all are.
  const take = async (h: H, wait: number, after: Command[] = []): Promise<HeldLock> => {
    const before = prepared.has(h) ? [] : (o.before?.(h.t) ?? []);
    const lock = await acquireLock(h.t, o.app, o.version, wait, run.signal, { before, after });
    prepared.add(h);
    run.finally(releasing(h), () => releaseLock(h.t, lock));
    if (after.length > 0) locked(h, after, lock.after);
    return lock;
  };
  if (hosts.length === 1) {
    await take(hosts[0], o.waitSeconds, (await o.after?.(hosts[0].t)) ?? []);
    return;
  }
  const afterEveryLock = () =>
    eachHost(hosts, { parallel: o.parallel, log: o.log, what: "locked", signal: run.signal }, async (h) => {
      const after = (await o.after?.(h.t)) ?? [];
      if (after.length > 0) locked(h, after, await runBatch(h.t.transport, after, { check: false, signal: run.signal }));
    });
  const taken: { h: H; lock: HeldLock }[] = [];
  const refused: unknown[] = [];
  const failed: unknown[] = [];
  try {
    await eachHost(hosts, { parallel: o.parallel, log: o.log, what: "lock", signal: run.signal }, async (h) => {
      try {
        taken.push({ h, lock: await take(h, 0) });
      } catch (err) {
        (err instanceof LockHeldError ? refused : failed).push(err);
        throw err;
      }
    });
    return await afterEveryLock();
  } catch (err) {
    if (taken.length === hosts.length || failed.length > 0 || refused.length === 0 || run.signal.aborted) throw failed[0] ?? err;
  }
  await Promise.all(
    taken.map(async ({ h, lock }) => {
      await releaseLock(h.t, lock);
      run.forget(releasing(h));
    }),
  );
  o.log.info(`a lock is held: taking the locks one host after the other${o.waitSeconds > 0 ? `, waiting up to ${o.waitSeconds}s each` : ""}`);
  for (const h of inLockOrder(hosts)) await take(h, o.waitSeconds);
  await afterEveryLock();
}
