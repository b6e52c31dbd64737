// The `sync` reloader: development against a vps/aws host without touching the live release. A
// development copy (`<app_dir>-dev`, its own port, its own process under togo's process manager) is
// made on the host; each change is built (build_cmd, when set), the artifact rsynced over the one
// multiplexed SSH connection, the copy restarted and health-checked through a local port forward
// on dev.port; its log streams back. When the signal aborts, the copy is stopped and removed and the
// connection closed. The remote work is data (src/ship/dev-copy.ts); this file only sequences it.
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { isAbsolute, join } from "node:path";
import { execa } from "execa";
import { OperationError } from "../core/errors.js";
import { formatMs } from "../core/log.js";
import type { ConfigProblem } from "../core/errors.js";
import { SshTransport } from "../exec/ssh.js";
import { devArtifactPath, devCopy, devTarget, DEV_PORTS } from "../ship/dev-copy.js";
import { formatDotenv } from "../ship/dotenv.js";
import { sleep, waitHealthy } from "../ship/health.js";
import { shippingOptions, shippingSchema } from "../ship/options.js";
import { transportFor } from "../ship/target.js";
import {
  registerReloader, ReloaderRunError, ReloaderTargetNotFoundError, type DevConfig, type DevStatus, type Manager,
} from "./reloader.js";
import { backoffMs, countCrash, FAILED_AFTER } from "./crashes.js";
import { readDevState, writeDevState } from "./state-file.js";
import { startWatcher, watchPlan, type Watcher } from "./watcher.js";

/** How often the copy is checked for a crash while nothing is being reloaded. */
const CRASH_CHECK_MS = 1000;
/** Changes closer together than this are one reload (an editor's save is several events). */
const DEBOUNCE_MS = 25;
/** Health probes of a reload: dev wants the first answer, not a steady pace. */
const PROBE_INTERVAL_S = 0.05;

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

export class SyncReloader implements Manager {
  readonly type = "sync";

  validate(config: DevConfig): ConfigProblem[] {
    const { spec } = config;
    const problems: ConfigProblem[] = [];
    if (spec.provider !== "vps" && spec.provider !== "aws") {
      problems.push({ path: "dev.type", value: "sync", expected: `sync runs a copy on a vps or aws host; deploy.provider is ${spec.provider}: use dev.type process (or docker)` });
    }
    if (spec.provider === "vps" && !spec.host && !spec.hosts?.length) problems.push({ path: "deploy.host", expected: "is required for dev.type sync: the host the development copy runs on" });
    if (spec.provider === "vps" && !spec.user) problems.push({ path: "deploy.user", expected: "is required for dev.type sync: the user togo logs in as" });
    if (!spec.run) problems.push({ path: "deploy.run", expected: "is required for dev.type sync: the command that starts the app on $PORT" });
    if (!spec.binary) problems.push({ path: "deploy.binary", expected: "is required for dev.type sync: the file or directory synced to the copy, e.g. server.js" });
    const options = shippingSchema.safeParse(spec.options);
    if (!options.success) problems.push({ path: "deploy.options", value: spec.options, expected: options.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ") });
    return problems;
  }

  async status(config: DevConfig): Promise<DevStatus> {
    return readDevState(config.stateFile);
  }

  async run(config: DevConfig, signal: AbortSignal): Promise<void> {
    const { spec, log } = config;
    const state: DevStatus = { state: "not-ready", message: "starting", type: this.type, pid: process.pid, url: `http://127.0.0.1:${spec.dev.port}`, reloads: 0, restarts: 0 };
    const save = (patch: Partial<DevStatus>) => writeDevState(config.stateFile, Object.assign(state, patch));
    save({});

    const target = await devTarget(spec);
    if (!target) {
      save({ state: "not-deployed", message: "no host" });
      throw new ReloaderTargetNotFoundError(`${spec.app} has no host to run a development copy on${spec.provider === "aws" ? " (the aws stack has no public_ip output): run togo provision" : ": set deploy.host"}`);
    }
    if (!(await portFree(spec.dev.port))) {
      save({ state: "failed", message: `port ${spec.dev.port} is taken` });
      throw new ReloaderRunError(`dev.port ${spec.dev.port} is already in use on this machine; stop what listens there or set dev.port to a free port`);
    }
    const transport = transportFor(target, shippingOptions(shippingSchema.parse(spec.options)));
    if (!(transport instanceof SshTransport)) throw new ReloaderRunError("dev.type sync needs a remote host (deploy.host)");
    const copy = devCopy(spec.appDir);
    const following = new AbortController();
    let watcher: Watcher | undefined;
    let made = false;
    try {
      try {
        await transport.connect();
      } catch (e) {
        if (!(e instanceof OperationError)) throw e;
        save({ state: "not-deployed", message: `${transport.target} is unreachable` });
        throw new ReloaderTargetNotFoundError(`the development copy's host ${transport.target} is unreachable or not provisioned (run togo provision, check deploy.host/user/port): ${e.message}`);
      }
      if (signal.aborted) return;
      made = true;
      await transport.run(copy.layout());
      await transport.run(copy.env(formatDotenv(config.env)));
      const start = DEV_PORTS.from + Math.floor(Math.random() * (DEV_PORTS.to - DEV_PORTS.from));
      const remotePort = Number((await transport.run(copy.freePort(start))).stdout.trim());
      if (!Number.isInteger(remotePort) || remotePort <= 0) throw new ReloaderRunError(`no free port on ${transport.target} for the development copy`);
      const url = await transport.forward(spec.dev.port, remotePort);
      log.info(`development copy on ${transport.target}:${copy.dir} (port ${remotePort}), forwarded to ${url}`);

      // The copy's log, line by line, for as long as togo dev runs (tail -F follows it across restarts).
      let partial = "";
      const follow = transport
        .run(copy.followLog(), {
          signal: following.signal,
          check: false,
          onStdout: (text) => {
            const lines = (partial + text).split("\n");
            partial = lines.pop()!;
            for (const l of lines) log.info(`[${spec.app}] ${l}`);
          },
        })
        .catch(() => undefined);

      const build = async () => {
        if (!spec.buildCmd) return;
        const r = await execa("sh", ["-c", spec.buildCmd], { cwd: spec.dir, reject: false, all: true, cancelSignal: signal });
        if (r.exitCode !== 0) throw new ReloaderRunError(`build_cmd failed (exit ${r.exitCode}):\n${String(r.all ?? "").trim().split("\n").slice(-10).join("\n")}`);
      };
      const local = isAbsolute(spec.binary!) ? spec.binary! : join(spec.dir, spec.binary!);
      let ours = false; // we stopped it on purpose (a reload): not a crash
      // Crashes in a row, as the process reloader counts them: restarts wait 1 s, 2 s, … 30 s, and
      // after FAILED_AFTER the state is `failed` (restarts go on; a change is tried at once).
      let crashes = 0;
      let healthyAt: number | undefined;
      let retryAt: number | undefined;
      let startFailure = "";
      /** Restarts the copy and waits for its health check; a restart after a crash reports its own failure. */
      const startCopy = async (why: string, afterCrash = false): Promise<boolean> => {
        ours = true;
        try {
          await transport.run(copy.restart(spec.run!, remotePort), { signal });
          const h = await waitHealthy(`${url}${spec.healthcheck.path}`, {
            timeoutSeconds: spec.healthcheck.timeout,
            intervalSeconds: PROBE_INTERVAL_S,
            signal,
            stillRunning: async () => (await transport.run(copy.status(), { check: false })).stdout.startsWith("running"),
          });
          if (signal.aborted) return false;
          if (!h.ok) {
            startFailure = `it did not answer ${spec.healthcheck.path} (${h.detail})`;
            if (afterCrash) return false;
            save({ state: "failed", message: `${why}: the copy did not answer ${spec.healthcheck.path} (${h.detail}); fix and save again` });
            log.warn(state.message);
            return false;
          }
          healthyAt = performance.now();
          save({ state: "ready", message: `serving (${why})`, lastReload: new Date().toISOString() });
          return true;
        } finally {
          ours = false;
        }
      };
      const sync = async (why: string) => {
        await build();
        if (!existsSync(local)) throw new ReloaderRunError(`deploy.binary ${spec.binary} does not exist${spec.buildCmd ? " after build_cmd" : ""}`);
        await transport.upload(local, devArtifactPath(spec.appDir, spec.binary!), { signal, checksum: true });
        return startCopy(why);
      };

      // Reloads are one at a time; changes during one make exactly one more.
      let running: Promise<void> | undefined;
      let again = false;
      let timer: NodeJS.Timeout | undefined;
      const reload = (): Promise<void> => {
        if (running) {
          again = true;
          return running;
        }
        // A change is a fresh attempt: the crash count and a pending restart start over.
        crashes = 0;
        retryAt = undefined;
        running = (async () => {
          do {
            again = false;
            try {
              const started = performance.now();
              if (await sync("change")) {
                state.reloads = (state.reloads ?? 0) + 1;
                save({});
                log.info(`reloaded in ${Math.round(performance.now() - started)} ms`);
              }
            } catch (e) {
              if (signal.aborted) return;
              save({ state: "failed", message: (e as Error).message });
              log.warn(`reload failed: ${(e as Error).message}`);
            }
          } while (again && !signal.aborted);
        })().finally(() => (running = undefined));
        return running;
      };

      // Watching starts before the first start, so an edit saved while the copy comes up is not lost.
      // The artifact build_cmd writes is an output (anchored: only that path, not a name anywhere).
      const binary = spec.binary?.replace(/^\.\//, "").replace(/\/+$/, "");
      const plan = watchPlan(spec.dir, spec.dev.watch, [...spec.dev.ignore, ...(spec.buildCmd && binary && binary !== "." ? [`/${binary}`] : [])]);
      watcher = await startWatcher(spec.dir, plan, () => {
        clearTimeout(timer);
        timer = setTimeout(() => void reload(), DEBOUNCE_MS);
      });

      // The first start counts as a reload under way: changes during it make one reload after it.
      const first = log.stage("dev copy", () => sync("first start"));
      running = first.then(() => undefined, () => undefined);
      try {
        await first;
      } finally {
        running = undefined;
      }
      save({ message: `${state.message}; watching` });
      if (again) void reload();

      const scheduleRestart = (why: string) => {
        const delay = backoffMs(crashes);
        const failed = crashes >= FAILED_AFTER;
        const line = `${why}; ${failed ? `failed: ${crashes} crashes in a row; ` : ""}restarting in ${formatMs(delay)} or on the next change`;
        log.warn(line);
        save({ state: failed ? "failed" : "not-ready", message: line });
        retryAt = performance.now() + delay;
      };

      // Restart on crash: the copy stopped while no reload was under way.
      while (!signal.aborted) {
        await sleep(retryAt === undefined ? CRASH_CHECK_MS : Math.max(10, retryAt - performance.now()), signal);
        if (signal.aborted || running || ours) continue;
        if (retryAt !== undefined) {
          if (performance.now() < retryAt) continue;
          retryAt = undefined;
          state.restarts = (state.restarts ?? 0) + 1;
          log.warn(`restarting the development copy (restart ${state.restarts})`);
          const ok = await startCopy("restart after a crash", true).catch((e: Error) => ((startFailure = e.message), false));
          if (!ok && !signal.aborted && !running) {
            crashes++;
            scheduleRestart(`the development copy's restart failed: ${startFailure}`);
          }
          continue;
        }
        // A copy that failed a reload waits for the next change, rather than being restarted in a loop.
        if (state.state !== "ready") continue;
        const r = await transport.run(copy.status(), { check: false }).catch(() => undefined);
        if (!r || signal.aborted || running || ours || r.stdout.startsWith("running")) continue;
        crashes = countCrash(crashes, healthyAt, performance.now());
        scheduleRestart("the development copy exited");
      }
      clearTimeout(timer);
      await running;
      following.abort();
      await follow;
    } catch (e) {
      // Stopped part-way (a command, an upload or a build cut off by the signal): that is a stop, not a failure.
      if (!signal.aborted) throw e;
    } finally {
      following.abort();
      await watcher?.close();
      if (made) {
        // Cleanup runs after an abort too: its commands take no signal.
        const r = await transport.run(copy.remove(), { check: false }).catch((e: Error) => ({ code: 1, stdout: "", stderr: e.message }));
        if (r.code !== 0) log.warn(`could not remove the development copy ${copy.dir} on ${transport.target}: ${r.stderr.trim()}`);
      }
      await transport.close();
      save({ state: "not-deployed", message: signal.aborted ? "stopped; the development copy was removed" : state.message });
    }
  }
}

registerReloader("sync", () => new SyncReloader());
