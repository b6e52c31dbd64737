// The `process` reloader: the app runs on this machine from the project folder. togo dev listens on
// dev.port and forwards to the live app process, which runs on a private port ($PORT). A change
// under dev.watch runs build_cmd (if any), starts a new process beside the live one and health-checks
// it; only a healthy one takes over, so a build error or a change that breaks the app leaves the last
// good process serving. A crash restarts with backoff; crashes in a row make the state `failed`.
import type { ConfigProblem } from "../core/errors.js";
import { formatMs } from "../core/log.js";
import { freeLocalPort } from "../exec/ports.js";
import { waitHealthy } from "../ship/health.js";
import { exitText, startGroup, type ProcessGroup } from "./process-group.js";
import { DevProxy } from "./proxy.js";
import { registerReloader, ReloaderRunError, type DevConfig, type DevState, type DevStatus, type Manager } from "./reloader.js";
import { pidAlive, pidZombie, processStartTime } from "../core/pid.js";
import { readDevState, recordedDevState, removeDevState, writeDevState } from "./state-file.js";
import { startWatcher, watchPlan, type Watcher } from "./watcher.js";
import { backoffMs, countCrash, FAILED_AFTER } from "./crashes.js";

/** Events this close together are one change (an editor's save, a checkout). */
const DEBOUNCE_MS = 15;

/**
 * The app a `togo dev` killed with -9 left serving: its state file names the app's process group
 * and when its leader started, so a pid since reused by another process is never signalled.
 */
async function stopLeftApp(left: Record<string, unknown>, log: DevConfig["log"]): Promise<void> {
  const pid = left.appPid;
  if (typeof pid !== "number" || !Number.isInteger(pid) || pid <= 1 || typeof left.appStart !== "string" || processStartTime(pid) !== left.appStart) return;
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
      return true;
    } catch {
      return false;
    }
  };
  if (!signal("SIGTERM")) return;
  for (const end = Date.now() + 5000; Date.now() < end && processStartTime(pid) === left.appStart && !pidZombie(pid); ) await new Promise((r) => setTimeout(r, 25));
  signal("SIGKILL");
  log.info(`stopped the app (pid ${pid}) an earlier togo dev left running when it was killed`);
}

/** `server.js`, `a.ts, b.ts`, `a.ts, b.ts, c.ts and 4 more`. */
export function describeChanges(paths: string[]): string {
  const shown = paths.slice(0, 3).join(", ");
  return paths.length > 3 ? `${shown} and ${paths.length - 3} more changed` : `${shown} changed`;
}

/** The line of a failed process's output that says what went wrong: the first naming an error, else the last. */
export function errorLine(output: string): string {
  const lines = output.split("\n").map((l) => l.trim()).filter(Boolean);
  return lines.find((l) => /error\b|exception|cannot |not found/i.test(l) && !/^at /.test(l)) ?? lines.at(-1) ?? "";
}


interface Live {
  group: ProcessGroup;
  port: number;
  /** When it first answered the health check. */
  healthyAt: number;
}

interface Trigger {
  what: string;
  at: number;
  kind: "start" | "reload" | "restart";
}

class Supervisor {
  private serving?: Live;
  private readonly retiring = new Set<Promise<void>>();
  private running?: ProcessGroup;
  private crashed?: Live;
  private readonly pending = new Set<string>();
  private firstChangeAt = 0;
  private changesReady = false;
  private debounce?: NodeJS.Timeout;
  private retryDue = false;
  private retryTimer?: NodeJS.Timeout;
  private wakeUp?: () => void;
  private crashes = 0;
  /** A build or start is under way; changes meanwhile are noted (the first few) and make one more reload. */
  private busy = false;
  private notedMeanwhile = 0;
  private state: DevState = "not-ready";
  private message = "starting";
  private reloads = 0;
  private restarts = 0;
  private lastReload?: string;
  private readonly proxy = new DevProxy();
  private readonly url: string;

  constructor(
    private readonly config: DevConfig,
    private readonly signal: AbortSignal,
  ) {
    this.url = `http://127.0.0.1:${config.spec.dev.port}`;
  }

  async run(): Promise<void> {
    const { spec, log, stateFile } = this.config;
    // A state file that is not one (cut short by a crash) names no running manager: it is replaced.
    const other = (() => {
      try {
        return recordedDevState(stateFile);
      } catch {
        return undefined;
      }
    })();
    if (other && typeof other.pid === "number" && other.pid !== process.pid && pidAlive(other.pid)) {
      throw new ReloaderRunError(`togo dev is already running for ${spec.app} (pid ${other.pid}); stop it first (togo dev status shows it)`);
    }
    if (other) await stopLeftApp(other, log);
    try {
      await this.proxy.listen(spec.dev.port);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new ReloaderRunError(
        code === "EADDRINUSE"
          ? `dev.port ${spec.dev.port} is in use on 127.0.0.1 (a local deploy of this app listens on deploy.app_port, the default dev.port); stop what listens there or set dev.port`
          : `cannot listen on 127.0.0.1:${spec.dev.port}: ${(e as Error).message}`,
      );
    }
    let watcher: Watcher | undefined;
    const onAbort = () => this.wake();
    this.signal.addEventListener("abort", onAbort);
    try {
      const extraIgnore = ["/.togo/dev"];
      // The artifact build_cmd writes is an output: watching it would rebuild forever.
      const binary = spec.binary?.replace(/^\.\//, "").replace(/\/+$/, "");
      if (spec.buildCmd && binary && binary !== ".") extraIgnore.push(`/${binary}`);
      const plan = watchPlan(spec.dir, spec.dev.watch, [...spec.dev.ignore, ...extraIgnore]);
      watcher = await startWatcher(spec.dir, plan, (rel) => this.changed(rel));
      log.info(`togo dev: ${spec.app} on ${this.url} (process: ${spec.run}; watching ${spec.dev.watch.length ? spec.dev.watch.join(", ") : "the project"})`);
      this.save();
      if (!this.signal.aborted) await this.attempt({ what: "started", at: performance.now(), kind: "start" });
      await this.loop();
    } finally {
      this.signal.removeEventListener("abort", onAbort);
      clearTimeout(this.debounce);
      clearTimeout(this.retryTimer);
      await watcher?.close();
      await Promise.all([this.running?.stop(), this.serving?.group.stop(), this.crashed?.group.stop(), ...this.retiring]);
      await this.proxy.close();
      removeDevState(stateFile);
    }
  }

  private async loop(): Promise<void> {
    for (;;) {
      if (this.signal.aborted) return;
      if (this.crashed) await this.onCrash(this.crashed);
      else if (this.changesReady) await this.reload();
      else if (this.retryDue) {
        this.retryDue = false;
        await this.attempt({ what: "restarted after a crash", at: performance.now(), kind: "restart" });
      } else await new Promise<void>((resolve) => (this.wakeUp = resolve));
    }
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  private changed(rel: string): void {
    if (this.busy && !this.pending.has(rel) && this.notedMeanwhile++ < 3) this.config.log.info(`  ${rel} changed during the reload; one more reload follows it`);
    if (this.pending.size === 0) this.firstChangeAt = performance.now();
    this.pending.add(rel);
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.changesReady = true;
      this.wake();
    }, DEBOUNCE_MS);
  }

  private async reload(): Promise<void> {
    this.changesReady = false;
    const changes = [...this.pending].sort();
    this.pending.clear();
    // A change is a fresh attempt: the crash count and a pending retry start over.
    clearTimeout(this.retryTimer);
    this.retryDue = false;
    this.crashes = 0;
    await this.attempt({ what: describeChanges(changes), at: this.firstChangeAt, kind: "reload" });
  }

  private set(state: DevState, message: string): void {
    this.state = state;
    this.message = message;
    // While nothing serves, dev.port answers 503 with the reason.
    if (!this.serving) this.proxy.point(undefined, message);
    this.save();
  }

  private save(): void {
    const appPid = this.serving?.group.pid;
    const status: DevStatus & { appPid?: number; appStart?: string } = {
      state: this.state,
      message: this.message,
      type: "process",
      pid: process.pid,
      url: this.url,
      lastReload: this.lastReload,
      reloads: this.reloads,
      restarts: this.restarts,
      appPid,
      // With the pid, names the app's process for a later run (see stopLeftApp).
      appStart: appPid === undefined ? undefined : processStartTime(appPid),
    };
    writeDevState(this.config.stateFile, status);
  }

  /** Runs build_cmd as its own process group; its output shows only when it fails. */
  private async build(): Promise<{ ok: boolean; detail: string }> {
    const { spec } = this.config;
    const group = startGroup(spec.buildCmd!, { cwd: spec.dir, env: { ...process.env, TOGO_APP: spec.app, TOGO_STAGE: spec.stage ?? "" }, forward: false });
    this.running = group;
    const stop = () => void group.stop();
    this.signal.addEventListener("abort", stop);
    const exit = await group.exited;
    this.signal.removeEventListener("abort", stop);
    await group.stop();
    this.running = undefined;
    return { ok: exit.code === 0, detail: `build_cmd failed (${exitText(exit)}): ${spec.buildCmd}\n${group.tail(20)}` };
  }

  private async attempt(t: Trigger): Promise<void> {
    this.busy = true;
    this.notedMeanwhile = 0;
    try {
      await this.attemptOnce(t);
    } finally {
      this.busy = false;
    }
  }

  private async attemptOnce(t: Trigger): Promise<void> {
    const { spec, log } = this.config;
    let buildMs = 0;
    if (spec.buildCmd && t.kind !== "restart") {
      const b0 = performance.now();
      const b = await this.build();
      buildMs = performance.now() - b0;
      if (this.signal.aborted) return;
      if (!b.ok) {
        const indented = b.detail.replace(/\n/g, "\n    ");
        if (this.serving) {
          log.info(`✗ ${t.what} → ${indented}\n  still serving the last good build`);
          this.set("ready", `serving the last good build; the build after "${t.what}" failed`);
        } else {
          log.info(`✗ ${t.what} → ${indented}\n  nothing is serving; waiting for a change`);
          this.set("failed", `the build failed; waiting for a change (${b.detail.split("\n")[0]})`);
        }
        return;
      }
    }
    const port = await freeLocalPort();
    const group = startGroup(spec.run!, { cwd: spec.dir, env: { ...process.env, ...this.config.env, PORT: String(port) }, forward: true });
    this.running = group;
    const hc = spec.healthcheck;
    const h = await waitHealthy(`http://127.0.0.1:${port}${hc.path}`, {
      timeoutSeconds: hc.timeout,
      // Local and cheap: probe often, so a reload is served as soon as the app answers.
      intervalSeconds: Math.min(hc.interval, 0.01),
      stillRunning: async () => group.exit === undefined,
      signal: this.signal,
    });
    this.running = undefined;
    if (this.signal.aborted) {
      await group.stop();
      return;
    }
    if (!h.ok) {
      const exited = group.exit;
      await group.stop();
      const why = exited ? `exited (${exitText(exited)}) before answering ${hc.path}` : `did not answer ${hc.path} with a 2xx within ${hc.timeout}s (last: ${h.detail})`;
      const error = errorLine(group.tail(40));
      const shown = error ? `: ${error}` : "";
      if (this.serving) {
        log.info(`✗ ${t.what} → the new process ${why}${shown}; still serving the previous one`);
        this.set("ready", `serving the previous process; the new one after "${t.what}" ${why}`);
        return;
      }
      this.crashes++;
      this.scheduleRetry(`the app ${why}${shown}`);
      return;
    }
    const live: Live = { group, port, healthyAt: performance.now() };
    const old = this.serving;
    this.serving = live;
    this.proxy.point(port);
    void group.exited.then(() => {
      if (this.serving === live && !group.stopping) {
        this.crashed = live;
        this.wake();
      }
    });
    if (old) this.retire(old);
    const ms = performance.now() - t.at;
    if (t.kind === "reload") this.reloads++;
    if (t.kind === "restart") this.restarts++;
    this.lastReload = new Date().toISOString();
    const timing = buildMs ? `built in ${formatMs(buildMs)}, served in ${formatMs(ms)}` : `served in ${formatMs(ms)}`;
    log.info(`↻ ${t.what} → ${timing}`);
    this.set("ready", `${t.what}; served in ${formatMs(ms)}`);
  }

  /** Stops a replaced process; its connections close with it. */
  private retire(old: Live): void {
    const p = old.group.stop().then(() => {
      this.proxy.drop(old.port);
      this.retiring.delete(p);
    });
    this.retiring.add(p);
  }

  private async onCrash(live: Live): Promise<void> {
    this.crashed = undefined;
    if (this.serving === live) this.serving = undefined;
    const why = `the app exited (${exitText(live.group.exit)})`;
    this.proxy.point(undefined, `${why}; restarting`);
    await live.group.stop();
    this.proxy.drop(live.port);
    this.crashes = countCrash(this.crashes, live.healthyAt, performance.now());
    this.scheduleRetry(why);
  }

  private scheduleRetry(why: string): void {
    const delay = backoffMs(this.crashes);
    const failed = this.crashes >= FAILED_AFTER;
    const next = `restarting in ${formatMs(delay)} or on the next change`;
    const line = failed ? `${why}; failed: ${this.crashes} crashes in a row; ${next}` : `${why}; ${next}`;
    this.config.log.info(`✗ ${line}`);
    this.set(failed ? "failed" : "not-ready", line);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryDue = true;
      this.wake();
    }, delay);
  }
}

export class ProcessReloader implements Manager {
  readonly type = "process";

  validate(config: DevConfig): ConfigProblem[] {
    if (!config.spec.run) return [{ path: "deploy.run", expected: "is required for togo dev (process): the command that starts the app on $PORT, e.g. node server.js" }];
    return [];
  }

  run(config: DevConfig, signal: AbortSignal): Promise<void> {
    return new Supervisor(config, signal).run();
  }

  async status(config: DevConfig): Promise<DevStatus> {
    return readDevState(config.stateFile);
  }
}

registerReloader("process", () => new ProcessReloader());
