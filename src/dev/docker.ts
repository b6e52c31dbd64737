// The `docker` reloader: the app in a dev container on the dev daemon (DOCKER_HOST, as `docker build`
// reads it). On a change it rebuilds the image and replaces the dev container — built first, so a
// broken build leaves the running one serving — or, with dev.sync, copies the changed files into the
// container's WORKDIR and restarts it. It only ever removes what carries its togo.dev label, so a
// deployed container is never touched, even one sharing the daemon. Aborting removes the dev
// container and network.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join, relative, sep } from "node:path";
import type { ConfigProblem } from "../core/errors.js";
import { OperationError } from "../core/errors.js";
import { runCommand, type Command } from "../exec/command.js";
import { DOCKER_HOST_FORMS } from "../exec/docker-host.js";
import { waitHealthy } from "../ship/health.js";
import * as C from "./docker-commands.js";
import { LABEL_DEV, type DevDocker } from "./docker-commands.js";
import { registerReloader, ReloaderRunError, ReloaderStatusError, ReloaderTargetNotFoundError, type DevConfig, type DevStatus, type Manager } from "./reloader.js";
import { pidAlive } from "../core/pid.js";
import { writeDevState } from "./state-file.js";
import { startWatcher, watchPlan, type ChangeEvent } from "./watcher.js";

export interface Change {
  event: ChangeEvent;
  /** Absolute. */
  path: string;
}

export type ReloadPlan = { kind: "rebuild"; why: string } | { kind: "sync"; files: string[] };

/**
 * How a batch of changes reaches the container. Copying is only right for files the image took
 * verbatim from the context into its WORKDIR; anything else (no sync, a removal, the Dockerfile,
 * .dockerignore, a file outside the context) rebuilds. Pure.
 */
export function reloadPlan(
  d: Pick<DevDocker, "dockerfile" | "context">,
  changes: Change[],
  sync: boolean,
  workdir: string | undefined,
  exists: (path: string) => boolean = existsSync,
): ReloadPlan {
  const files = changes.filter((c) => c.event !== "addDir");
  if (!sync) return { kind: "rebuild", why: "changed" };
  if (!workdir) return { kind: "rebuild", why: "dev.sync needs the image to have a WORKDIR holding the build context (WORKDIR /app + COPY . .)" };
  // An editor's temporary file may be gone before it is copied: that is a removal too.
  if (files.some((c) => c.event === "unlink" || c.event === "unlinkDir" || !exists(c.path))) return { kind: "rebuild", why: "a file was removed" };
  if (files.some((c) => c.path === d.dockerfile || c.path === join(d.context, ".dockerignore"))) return { kind: "rebuild", why: "the Dockerfile changed" };
  const rel = files.map((c) => relative(d.context, c.path));
  if (rel.some((r) => r === "" || r === ".." || r.startsWith(`..${sep}`) || isAbsolute(r))) return { kind: "rebuild", why: "a file outside the build context changed" };
  return { kind: "sync", files: [...new Set(rel)].sort() };
}

/** What the state file holds: the status, plus where the container is (for `togo dev status`). */
interface DockerDevState extends DevStatus {
  container?: string;
  containerId?: string;
  daemon?: string;
}

const lastLines = (text: string, n = 6) => text.trim().split("\n").slice(-n).join("\n");

/** The parts of `docker inspect` the reloader reads. */
interface Inspect {
  Id: string;
  RestartCount?: number;
  State?: { Status?: string; ExitCode?: number };
  Config?: { Labels?: Record<string, string> | null };
}

async function inspect(d: DevDocker): Promise<Inspect | undefined> {
  const r = await runCommand(C.inspectContainer(d), { what: `inspecting ${d.container}`, check: false });
  if (r.code === 0) return (JSON.parse(r.stdout.toString("utf8")) as Inspect[])[0];
  if (/no such (container|object)/i.test(r.stderr)) return undefined;
  throw new OperationError(`cannot read container ${d.container} from Docker at ${d.daemon.url}: ${lastLines(r.stderr, 2)}`);
}

/** Files changed since the last batch, handed over once the tree has been quiet for a moment. */
class ChangeQueue {
  private pending: Change[] = [];
  private timer?: NodeJS.Timeout;
  private waiter?: () => void;
  constructor(private readonly quietMs: number) {}

  push(c: Change): void {
    this.pending.push(c);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.waiter?.();
    }, this.quietMs);
  }

  /** The next batch; empty once `signal` aborts. */
  next(signal: AbortSignal): Promise<Change[]> {
    return new Promise((resolve) => {
      const take = () => {
        this.waiter = undefined;
        signal.removeEventListener("abort", take);
        resolve(signal.aborted ? [] : this.pending.splice(0));
      };
      if (signal.aborted || (this.pending.length > 0 && this.timer === undefined)) return take();
      this.waiter = take;
      signal.addEventListener("abort", take, { once: true });
    });
  }

  close(): void {
    clearTimeout(this.timer);
  }
}

class DockerDevSession {
  private readonly d: DevDocker;
  private readonly state: DockerDevState;
  private containerId?: string;
  private imageId?: string;
  private workdir?: string;
  private readonly queue = new ChangeQueue(150);
  /** The daemon answered: there may be something of togo dev's to remove. */
  private reached = false;

  constructor(
    private readonly config: DevConfig,
    private readonly signal: AbortSignal,
  ) {
    const daemon = C.devDaemon();
    if (!daemon) throw new ReloaderRunError(`DOCKER_HOST=${process.env.DOCKER_HOST} is not a Docker daemon address; expected ${DOCKER_HOST_FORMS}`);
    this.d = C.devDocker(config.spec, daemon);
    this.state = { state: "not-ready", message: "starting", type: "docker", pid: process.pid, url: this.d.url, reloads: 0, restarts: 0, container: this.d.container, daemon: daemon.url };
  }

  private set(patch: Partial<DockerDevState>): void {
    Object.assign(this.state, patch);
    writeDevState(this.config.stateFile, this.state);
  }

  private run(cmd: Command, what: string, input?: Buffer) {
    return runCommand(cmd, { what, signal: this.signal, input });
  }

  async start(): Promise<void> {
    const { d } = this;
    const version = await runCommand(C.daemonVersion(d), { what: "checking for the dev Docker daemon", check: false });
    if (version.code !== 0) {
      throw new ReloaderTargetNotFoundError(`no Docker daemon answers at ${d.daemon.url} (docker version: ${lastLines(version.stderr, 1)}); start Docker or point DOCKER_HOST at the dev daemon`);
    }
    this.reached = true;
    await this.removeOwnContainer();
    const net = await runCommand(C.inspectNetwork(d), { what: `inspecting network ${d.network}`, check: false });
    if (net.code !== 0) await this.run(C.createNetwork(d), `creating network ${d.network}`);
    this.set({});
  }

  /** Removes the dev container by name — only when it carries this app's togo.dev label. */
  private async removeOwnContainer(): Promise<void> {
    const c = await inspect(this.d);
    if (!c) return;
    if (c.Config?.Labels?.[LABEL_DEV] !== this.d.app) {
      throw new ReloaderRunError(
        `a container named ${this.d.container} exists on ${this.d.daemon.url} and is not togo dev's (no ${LABEL_DEV}=${this.d.app} label); togo dev never touches it: remove or rename it`,
      );
    }
    this.state.restarts = (this.state.restarts ?? 0) + (c.RestartCount ?? 0);
    await runCommand(C.removeContainer(this.d, c.Id), { what: `removing ${this.d.container}` });
  }

  async loop(): Promise<void> {
    const { spec } = this.config;
    const stateDir = dirname(this.config.stateFile);
    const plan = watchPlan(spec.dir, spec.dev.watch, [...spec.dev.ignore, `/${relative(spec.dir, stateDir)}`, "/.togo"]);
    const watcher = await startWatcher(spec.dir, plan, (rel, event) => this.queue.push({ event, path: join(spec.dir, rel) }), true);
    try {
      await this.reload({ kind: "rebuild", why: "start" });
      while (!this.signal.aborted) {
        const batch = await this.queue.next(this.signal);
        if (this.signal.aborted) break;
        await this.reload(reloadPlan(this.d, batch, spec.dev.sync, this.workdir));
      }
    } finally {
      this.queue.close();
      await watcher.close();
    }
  }

  private async reload(plan: ReloadPlan): Promise<void> {
    const first = plan.kind === "rebuild" && plan.why === "start";
    const started = performance.now();
    try {
      if (plan.kind === "sync" && this.containerId) {
        this.set({ state: "not-ready", message: `copying ${plan.files.length} file(s) into ${this.d.container}` });
        const tar = await this.run(C.tarFiles(this.d.context, plan.files), "packing the changed files");
        await this.run(C.copyIn(this.d, this.containerId, this.workdir!), `copying into ${this.d.container}`, tar.stdout);
        await this.run(C.restartContainer(this.d, this.containerId), `restarting ${this.d.container}`);
      } else {
        await this.rebuild();
        if (this.signal.aborted || !this.containerId) return;
      }
    } catch (e) {
      if (this.signal.aborted) return;
      this.set({ state: "failed", message: (e as Error).message });
      this.config.log.warn((e as Error).message);
      return;
    }
    const health = await waitHealthy(this.d.healthUrl, {
      timeoutSeconds: this.config.spec.healthcheck.timeout,
      intervalSeconds: Math.min(this.config.spec.healthcheck.interval, 0.2),
      signal: this.signal,
    });
    if (this.signal.aborted) return;
    if (!health.ok) {
      const logs = await runCommand(C.containerLogs(this.d, this.containerId!), { what: "reading the dev container's logs", check: false });
      const message = `${this.d.container} did not answer ${this.d.healthUrl} with 2xx within ${this.config.spec.healthcheck.timeout}s (${health.detail})${logs.code === 0 ? `; its last log lines:\n${lastLines(logs.stdout.toString("utf8") + logs.stderr)}` : ""}`;
      this.set({ state: "failed", message });
      this.config.log.warn(message);
      return;
    }
    const how = plan.kind === "sync" && this.containerId ? "copied and restarted" : "rebuilt and replaced";
    const ms = Math.round(performance.now() - started);
    this.set({
      state: "ready",
      message: first ? `${this.d.container} answers at ${this.d.url}` : `${how} in ${ms}ms; answers at ${this.d.url}`,
      lastReload: new Date().toISOString(),
      reloads: (this.state.reloads ?? 0) + (first ? 0 : 1),
    });
    this.config.log.info(first ? `dev container ${this.d.container} up at ${this.d.url} (${ms}ms)` : `${how} ${this.d.container} (${ms}ms)`);
  }

  /** Builds the image; only once it built is the old container removed and a new one started. */
  private async rebuild(): Promise<void> {
    const { d } = this;
    this.set({ state: this.containerId ? this.state.state : "not-ready", message: `building ${d.image}` });
    const tmp = mkdtempSync(join(tmpdir(), "togo-dev-docker-"));
    let iid: string;
    try {
      const file = join(tmp, "iid");
      if (!existsSync(d.dockerfile)) {
        throw new OperationError(`${d.dockerfile} does not exist; togo dev --type docker builds the dev image from it and does not run deploy.build_cmd: generate it first, or set deploy.options.source: dockerfile:PATH`);
      }
      const built = await runCommand(C.buildImage(d, file), { what: "docker build", check: false, signal: this.signal });
      if (this.signal.aborted) return;
      if (built.code !== 0) {
        const still = this.containerId ? "; the previous dev container still serves" : "";
        throw new OperationError(`docker build of ${d.dockerfile} failed (exit ${built.code})${still}:\n${lastLines(built.stderr || built.stdout.toString("utf8"), 12)}`);
      }
      iid = readFileSync(file, "utf8").trim();
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    const workdir = (await this.run(C.imageWorkdir(d, iid), "reading the image's WORKDIR")).stdout.toString("utf8").trim();
    this.workdir = workdir === "" ? undefined : workdir;
    await this.removeOwnContainer();
    this.containerId = undefined;
    this.set({ containerId: undefined });
    const env = { ...this.config.env, PORT: String(d.port) };
    const out = await this.run(C.runContainer(d, iid, env), `starting ${d.container}`);
    this.containerId = out.stdout.toString("utf8").trim();
    this.set({ containerId: this.containerId, message: `${d.container} started; waiting for ${d.healthUrl}` });
    // The image of the container just replaced is no longer used by anything of togo dev's.
    if (this.imageId && this.imageId !== iid) await runCommand(C.removeImage(d, this.imageId), { what: "removing the previous dev image", check: false });
    this.imageId = iid;
  }

  /** Removes the dev container and network (never anything without the label) and the state file. */
  async cleanup(): Promise<void> {
    const { d } = this;
    try {
      // No daemon answered: nothing was made, and asking it again would only hide why togo dev stopped.
      if (!this.reached) return;
      const c = await inspect(d);
      if (c && c.Config?.Labels?.[LABEL_DEV] === d.app) await runCommand(C.removeContainer(d, c.Id), { what: `removing ${d.container}` });
      const net = await runCommand(C.inspectNetwork(d), { what: `inspecting network ${d.network}`, check: false });
      if (net.code === 0 && net.stdout.toString("utf8").trim() === d.app) await runCommand(C.removeNetwork(d), { what: `removing network ${d.network}`, check: false });
    } finally {
      rmSync(this.config.stateFile, { force: true });
    }
  }
}

export class DockerReloader implements Manager {
  readonly type = "docker";

  validate(config: DevConfig): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    const daemon = C.devDaemon();
    if (!daemon) problems.push({ path: "DOCKER_HOST", value: process.env.DOCKER_HOST, expected: `expected ${DOCKER_HOST_FORMS}: the dev daemon togo dev --type docker builds and runs on` });
    const d = C.devDocker(config.spec, daemon ?? { kind: "unix", url: "", hostname: "127.0.0.1" });
    // A Dockerfile build_cmd generates is not there yet: the first build says so if it never appears.
    if (!existsSync(d.dockerfile) && !config.spec.buildCmd) {
      problems.push({
        path: "dev.type",
        value: "docker",
        expected: `the docker reloader builds the dev image from ${d.dockerfile}, which does not exist; add a Dockerfile or set deploy.options.source: dockerfile:PATH`,
      });
    }
    return problems;
  }

  async run(config: DevConfig, signal: AbortSignal): Promise<void> {
    const session = new DockerDevSession(config, signal);
    try {
      await session.start();
      await session.loop();
    } finally {
      await session.cleanup();
    }
  }

  async status(config: DevConfig): Promise<DevStatus> {
    let s: DockerDevState;
    try {
      s = JSON.parse(readFileSync(config.stateFile, "utf8")) as DockerDevState;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return { state: "not-deployed", type: "docker", message: "togo dev --type docker is not running" };
      throw new ReloaderStatusError(`cannot read ${config.stateFile}: ${(e as Error).message}`);
    }
    const { container: name, containerId, daemon, ...status } = s;
    if (!s.pid || !pidAlive(s.pid)) {
      return { ...status, state: "not-deployed", message: `togo dev (pid ${s.pid}) is not running any more; its dev container ${name ?? ""} may be left over: the next togo dev --type docker removes it` };
    }
    if (!containerId || !daemon) return status;
    // The live container: crashes Docker restarted since the manager last wrote.
    const d = { ...C.devDocker(config.spec, { kind: "unix", url: daemon, hostname: "" }), container: containerId };
    let c: Inspect | undefined;
    try {
      c = await inspect(d);
    } catch (e) {
      throw new ReloaderStatusError((e as Error).message);
    }
    if (!c) return { ...status, state: "failed", message: `the dev container ${name} is gone from ${daemon}; save a file to rebuild it` };
    const restarts = (s.restarts ?? 0) + (c.RestartCount ?? 0);
    const live = c.State?.Status;
    if (live === "restarting" || live === "exited" || live === "dead") {
      return { ...status, restarts, state: "failed", message: `${name} is ${live} (last exit code ${c.State?.ExitCode ?? "?"}); Docker restarted it ${c.RestartCount ?? 0} time(s)` };
    }
    return { ...status, restarts };
  }
}

registerReloader("docker", () => new DockerReloader());
