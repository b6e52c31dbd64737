// The build proxy without its HTTP: requests for coordinates become builds, at most one per
// artifact key at a time, run at most `jobs` at once, with every build's record and log in the store.
//
// Single flight: within this process identical requests share one promise; between processes (two
// servers on one bucket) the store's create-if-absent claim (key, attempt) decides which build owns
// the key. The queue is the set of records in state queued/running: a restarted server takes over
// the ones whose server is gone (same host: its pid is dead; another host: its heartbeat is stale),
// by claiming the key's next attempt, so two servers never take over the same build.
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import { mkdir, readdir, rm, rmdir } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { pidAlive } from "../../core/pid.js";
import { buildArtifact, type BuildRequest, type BuiltArtifact } from "../builder.js";
import { artifactKey, cloneUrl, keyPath, recipeHash, type ArtifactKey, type Coordinates, type Recipe } from "../key.js";
import { Resolver } from "../resolve.js";
import type { ArtifactMeta, ArtifactStore, BuildRecord } from "../store.js";

export interface ProxyOptions {
  store: ArtifactStore;
  gitUrl: string;
  recipe: Recipe;
  /** Builds run at once. */
  jobs: number;
  /** A build running longer is stopped and failed (seconds; default one hour). */
  buildTimeout?: number;
  /** Where checkouts are made (one fresh folder a run, removed after). */
  workRoot: string;
  /** A record whose server has not refreshed it for this long is taken over (another host). */
  leaseMs?: number;
  /** How often records of live builds are refreshed and stale ones looked for. */
  heartbeatMs?: number;
  /** A build interrupted this many times is marked failed instead of run again. */
  maxAttempts?: number;
  /** Event lines (build queued/started/finished, take-overs) for the server's own log. */
  note?: (line: string) => void;
  /** The builder (tests count or replace its runs). */
  build?: (req: BuildRequest) => Promise<BuiltArtifact>;
  resolver?: Resolver;
}

export type Lookup =
  | { kind: "built"; meta: ArtifactMeta; key: ArtifactKey }
  | { kind: "building"; record: BuildRecord }
  | { kind: "failed"; record: BuildRecord }
  | { kind: "unknown"; reason: string };

export type Requested = { kind: "built"; meta: ArtifactMeta; key: ArtifactKey } | { kind: "building"; record: BuildRecord } | { kind: "unknown"; reason: string };

/** A live build's log in memory, for followers on this server. */
class LiveLog extends EventEmitter {
  readonly chunks: Buffer[] = [];
  size = 0;
  ended = false;
  push(c: Buffer): void {
    this.chunks.push(c);
    this.size += c.length;
    this.emit("data");
  }
  end(): void {
    this.ended = true;
    this.emit("data");
  }
}

const newId = () => randomBytes(8).toString("hex");
const nowIso = () => new Date().toISOString();

/** The start time of a process (field 22 of /proc/PID/stat), so a recycled pid is never mistaken for it. */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

export class BuildProxy {
  readonly recipe: string;
  private readonly host = hostname();
  private readonly resolver: Resolver;
  private readonly flights = new Map<string, Promise<Requested>>();
  private readonly metaCache = new Map<string, ArtifactMeta>();
  private readonly queue: string[] = [];
  /** Builds this server owns (queued or running here). */
  private readonly owned = new Set<string>();
  private running = 0;
  private readonly live = new Map<string, LiveLog>();
  private readonly aborts = new Map<string, AbortController>();
  private timer?: NodeJS.Timeout;
  private closed = false;
  private readonly leaseMs: number;
  private readonly heartbeatMs: number;
  private readonly maxAttempts: number;
  private readonly build: (req: BuildRequest) => Promise<BuiltArtifact>;
  private readonly note: (line: string) => void;
  private readonly idle = new Set<() => void>();
  /** The records of builds this server owns, and the chain their writes go through (one at a time, in order). */
  private readonly records = new Map<string, { record: BuildRecord; chain: Promise<void> }>();

  constructor(private readonly opts: ProxyOptions) {
    this.recipe = recipeHash(opts.recipe);
    this.resolver = opts.resolver ?? new Resolver();
    this.leaseMs = opts.leaseMs ?? 60_000;
    this.heartbeatMs = opts.heartbeatMs ?? 10_000;
    this.maxAttempts = opts.maxAttempts ?? 3;
    this.build = opts.build ?? buildArtifact;
    this.note = opts.note ?? (() => undefined);
  }

  get store(): ArtifactStore {
    return this.opts.store;
  }

  /** Takes over what an earlier server left, then keeps records fresh and looks for stale ones. */
  async start(): Promise<void> {
    await mkdir(this.opts.workRoot, { recursive: true });
    await this.cleanWorkRoot();
    await this.opts.store.sweep?.();
    await this.recover();
    const tick = () => {
      this.timer = setTimeout(() => {
        void this.heartbeat()
          .then(() => this.recover())
          .catch((e: unknown) => this.note(`heartbeat: ${(e as Error).message}`))
          .finally(() => {
            if (!this.closed) tick();
          });
      }, this.heartbeatMs);
      this.timer.unref();
    };
    tick();
  }

  /** Stops taking work; running builds are stopped (their records stay running: the next server re-runs them). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const a of this.aborts.values()) a.abort();
    if (this.running > 0) await new Promise<void>((r) => this.idle.add(r));
    // The work root goes too when nothing is left in it (rmdir refuses a folder that is not empty).
    await rmdir(this.opts.workRoot).catch(() => undefined);
  }

  private url(c: Coordinates): string {
    return cloneUrl(this.opts.gitUrl, c);
  }

  private async resolve(c: Coordinates, fresh: boolean): Promise<{ commit?: string; reason?: string }> {
    try {
      const commit = await this.resolver.resolve(this.url(c), c.version, fresh);
      return commit ? { commit } : { reason: `${c.remote}/${c.owner}/${c.repo} has no tag or branch "${c.version}"` };
    } catch (e) {
      this.note(`resolve ${c.remote}/${c.owner}/${c.repo} ${c.version}: ${(e as Error).message}`);
      return { reason: `${c.remote}/${c.owner}/${c.repo} could not be read (no such repository, or it is unreachable from the build server)` };
    }
  }

  private async stat(key: ArtifactKey): Promise<ArtifactMeta | undefined> {
    const p = keyPath(key);
    const hit = this.metaCache.get(p);
    if (hit) return hit;
    const meta = await this.opts.store.stat(key);
    // Artifacts are immutable: once stored, the metadata never changes.
    if (meta) this.metaCache.set(p, meta);
    return meta;
  }

  /** GET: what there is for these coordinates now. */
  async lookup(c: Coordinates): Promise<Lookup> {
    const { commit, reason } = await this.resolve(c, false);
    if (!commit) return { kind: "unknown", reason: reason ?? "unknown" };
    const key = artifactKey(c, commit, this.recipe);
    const meta = await this.stat(key);
    if (meta) return { kind: "built", meta, key };
    const claim = await this.opts.store.latestClaim(key);
    const record = claim ? await this.opts.store.readBuild(claim.build_id) : undefined;
    if (!record) return { kind: "unknown", reason: `no build of ${c.remote}/${c.owner}/${c.repo} ${c.version} (${commit.slice(0, 12)}) for ${c.os}/${c.arch}; POST the same path to build it` };
    if (record.state === "failed") return { kind: "failed", record };
    if (record.state === "succeeded") {
      // Succeeded but no metadata: only a store emptied by hand; say so rather than serve nothing.
      return { kind: "unknown", reason: `build ${record.id} succeeded but its artifact is no longer in the store; POST to build it again` };
    }
    return { kind: "building", record };
  }

  /** POST: the artifact if it is built, else the build that makes it (joined, or started). */
  async request(c: Coordinates): Promise<Requested> {
    const { commit, reason } = await this.resolve(c, true);
    if (!commit) return { kind: "unknown", reason: reason ?? "unknown" };
    const key = artifactKey(c, commit, this.recipe);
    const p = keyPath(key);
    const flying = this.flights.get(p);
    if (flying) return flying;
    const flight = this.ensure(c, key).finally(() => this.flights.delete(p));
    this.flights.set(p, flight);
    return flight;
  }

  private async ensure(c: Coordinates, key: ArtifactKey): Promise<Requested> {
    for (;;) {
      const meta = await this.stat(key);
      if (meta) return { kind: "built", meta, key };
      const claim = await this.opts.store.latestClaim(key);
      if (claim) {
        const record = await this.opts.store.readBuild(claim.build_id);
        if (record && (record.state === "queued" || record.state === "running")) return { kind: "building", record };
        if (record?.state === "succeeded" && (await this.opts.store.stat(key))) continue;
      }
      // A new build: its record first, then the claim; a lost claim means another server's build owns the key.
      const record: BuildRecord = {
        id: newId(),
        state: "queued",
        coordinates: c,
        commit: key.commit,
        key,
        attempt: 1,
        created_at: nowIso(),
        runner: { host: this.host, pid: process.pid, heartbeat_at: nowIso() },
      };
      await this.opts.store.writeBuild(record);
      await this.opts.store.setActive(record.id, true);
      const won = await this.opts.store.claim(key, { attempt: (claim?.attempt ?? 0) + 1, build_id: record.id });
      if (!won) {
        await this.opts.store.deleteBuild(record.id);
        await this.opts.store.setActive(record.id, false);
        continue;
      }
      this.note(`build ${record.id} queued: ${c.remote}/${c.owner}/${c.repo} ${c.version} (${key.commit.slice(0, 12)}) ${c.os}/${c.arch}`);
      this.enqueue(record);
      return { kind: "building", record };
    }
  }

  /** Changes an owned build's record (here and in the store); writes of one record never overlap or reorder. */
  private update(id: string, change: (r: BuildRecord) => BuildRecord): Promise<void> {
    const entry = this.records.get(id);
    if (!entry) return Promise.resolve();
    entry.record = change(entry.record);
    const snapshot = entry.record;
    entry.chain = entry.chain.then(() => this.opts.store.writeBuild(snapshot));
    return entry.chain;
  }

  private enqueue(record: BuildRecord): void {
    const id = record.id;
    this.records.set(id, { record, chain: Promise.resolve() });
    this.owned.add(id);
    this.live.set(id, this.live.get(id) ?? new LiveLog());
    this.queue.push(id);
    this.pump();
  }

  private pump(): void {
    while (!this.closed && this.running < this.opts.jobs && this.queue.length > 0) {
      const id = this.queue.shift() as string;
      this.running++;
      void this.runBuild(id)
        .catch((e: unknown) => this.note(`build ${id}: ${(e as Error).message}`))
        .finally(() => {
          this.running--;
          this.owned.delete(id);
          this.records.delete(id);
          if (this.running === 0) for (const r of this.idle) r();
          this.idle.clear();
          this.pump();
        });
    }
  }

  private async runBuild(id: string): Promise<void> {
    const record = this.records.get(id)?.record;
    if (!record || (record.state !== "queued" && record.state !== "running")) return;
    const live = this.live.get(id) ?? new LiveLog();
    this.live.set(id, live);
    // A re-run continues the log of the runs before it; followers here see it whole.
    const prior = await this.opts.store.readLog(id);
    if (prior && prior.length > 0) live.push(prior);
    const writer = await this.opts.store.logWriter(id);
    const log = (chunk: string | Buffer) => {
      const b = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      live.push(b);
      writer.write(b);
    };
    const abort = new AbortController();
    const limit = this.opts.buildTimeout ?? 3600;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, limit * 1000);
    this.aborts.set(id, abort);
    const work = join(this.opts.workRoot, `${id}-${record.attempt}`);
    await this.update(id, (r) => ({ ...r, state: "running", started_at: nowIso(), runner: { host: this.host, pid: process.pid, heartbeat_at: nowIso() } }));
    this.note(`build ${id} running (run ${record.attempt})`);
    if (record.attempt > 1) log(`togo: run ${record.attempt} of this build (the server running the previous run stopped before it finished)\n`);
    try {
      await rm(work, { recursive: true, force: true });
      // The interrupted run's checkout, when it was made on this machine in this work root.
      if (record.attempt > 1) await rm(join(this.opts.workRoot, `${id}-${record.attempt - 1}`), { recursive: true, force: true });
      await mkdir(work, { recursive: true });
      const built = await this.build({
        coordinates: record.coordinates,
        commit: record.commit,
        cloneUrl: this.url(record.coordinates),
        recipe: this.opts.recipe,
        workDir: work,
        log,
        signal: abort.signal,
        onSpawn: (pid) => {
          const started = processStart(pid);
          void this.update(id, (r) => ({ ...r, runner: { ...(r.runner as NonNullable<BuildRecord["runner"]>), build_pgid: pid, build_started: started } })).catch(() => undefined);
        },
      });
      if (abort.signal.aborted) throw new Error("stopped");
      const meta: ArtifactMeta = {
        coordinates: record.coordinates,
        key: record.key,
        commit: record.commit,
        sha256: built.sha256,
        size: built.size,
        built_at: nowIso(),
        recipe: record.key.recipe,
        file_name: built.fileName,
        build_id: id,
      };
      const stored = await this.opts.store.put(record.key, built.file, meta);
      const final = stored === "written" ? meta : ((await this.opts.store.stat(record.key)) ?? meta);
      if (stored === "exists") log(`togo: the store already held this artifact (sha256 ${final.sha256}); it is kept\n`);
      await writer.flush();
      await this.update(id, (r) => {
        const next: BuildRecord = { ...r, state: "succeeded", finished_at: nowIso(), sha256: final.sha256, size: final.size };
        delete next.runner;
        return next;
      });
      await this.opts.store.setActive(id, false);
      this.note(`build ${id} succeeded: ${final.file_name} ${final.size} bytes sha256 ${final.sha256}`);
    } catch (e) {
      if (abort.signal.aborted && this.closed && !timedOut) {
        // Shutting down: the record stays running, so the next server runs it again.
        await writer.flush().catch(() => undefined);
        return;
      }
      const message = timedOut ? `timed out after ${limit} s (--build-timeout)` : (e as Error).message;
      log(`togo: build failed: ${message}\n`);
      await writer.flush();
      await this.update(id, (r) => {
        const next: BuildRecord = { ...r, state: "failed", finished_at: nowIso(), error: message };
        delete next.runner;
        return next;
      });
      await this.opts.store.setActive(id, false);
      this.note(`build ${id} failed: ${message}`);
    } finally {
      clearTimeout(timer);
      this.aborts.delete(id);
      live.end();
      // Followers that joined late read the store; the memory copy goes a little later.
      setTimeout(() => {
        if (this.live.get(id) === live) this.live.delete(id);
      }, 5000).unref();
      await rm(work, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /** Refreshes the heartbeat of every build this server owns. */
  private async heartbeat(): Promise<void> {
    for (const [id, { record }] of this.records) {
      if (record.state !== "queued" && record.state !== "running") continue;
      await this.update(id, (r) => (r.runner ? { ...r, runner: { ...r.runner, heartbeat_at: nowIso() } } : r));
    }
  }

  /** Is the server that owns r gone? */
  private abandoned(r: BuildRecord): boolean {
    const runner = r.runner;
    if (!runner) return true;
    if (runner.host === this.host) return runner.pid !== process.pid && !pidAlive(runner.pid);
    return Date.now() - Date.parse(runner.heartbeat_at) > this.leaseMs;
  }

  /** Takes over the queued/running builds whose server is gone: re-runs them, or fails them after maxAttempts runs. */
  async recover(): Promise<void> {
    if (this.closed) return;
    for (const id of await this.opts.store.activeBuilds()) {
      if (this.owned.has(id)) continue;
      const r = await this.opts.store.readBuild(id);
      if (!r || (r.state !== "queued" && r.state !== "running")) {
        // A server that stopped between finishing a build and clearing its mark.
        if (!r || r.state === "succeeded" || r.state === "failed") await this.opts.store.setActive(id, false);
        continue;
      }
      if (!this.abandoned(r)) continue;
      const claim = await this.opts.store.latestClaim(r.key);
      if (!claim || claim.build_id !== r.id) continue;
      // Whoever creates the next attempt's claim takes the build over; another server trying too loses.
      if (!(await this.opts.store.claim(r.key, { attempt: claim.attempt + 1, build_id: r.id }))) continue;
      this.stopOrphan(r);
      const ran = r.state === "running" ? r.attempt : r.attempt - 1;
      if (ran >= this.maxAttempts) {
        const failed: BuildRecord = { ...r, state: "failed", finished_at: nowIso(), error: `interrupted ${ran} times (its server stopped mid-build each time); not run again` };
        delete failed.runner;
        await this.opts.store.writeBuild(failed);
        await this.opts.store.setActive(r.id, false);
        this.note(`build ${r.id} failed: ${failed.error}`);
        continue;
      }
      const requeued: BuildRecord = { ...r, state: "queued", attempt: r.state === "running" ? r.attempt + 1 : r.attempt, runner: { host: this.host, pid: process.pid, heartbeat_at: nowIso() } };
      await this.opts.store.writeBuild(requeued);
      this.note(`build ${r.id} taken over (was ${r.state} on ${r.runner?.host ?? "?"} pid ${r.runner?.pid ?? "?"}); queued again`);
      this.enqueue(requeued);
    }
  }

  /** A dead server's build command may still run (it was its own process group): stop exactly that one. */
  private stopOrphan(r: BuildRecord): void {
    const pg = r.runner?.build_pgid;
    if (!pg || r.runner?.host !== this.host || !r.runner.build_started) return;
    if (processStart(pg) !== r.runner.build_started) return;
    try {
      process.kill(-pg, "SIGKILL");
      this.note(`build ${r.id}: stopped the interrupted run's process group ${pg}`);
    } catch {
      // gone meanwhile
    }
  }

  /** Removes checkouts left by runs whose server is gone (another live server on this host may share the work root). */
  private async cleanWorkRoot(): Promise<void> {
    for (const n of await readdir(this.opts.workRoot).catch(() => [] as string[])) {
      const m = /^([0-9a-f]{16})-\d+$/.exec(n);
      if (!m) continue;
      const runner = (await this.opts.store.readBuild(m[1]))?.runner;
      if (runner && runner.host === this.host && runner.pid !== process.pid && pidAlive(runner.pid)) continue;
      await rm(join(this.opts.workRoot, n), { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /**
   * The build's log from the start, then as it grows, until the build has finished. Served from
   * memory when this server runs it, else from the store (polled).
   */
  async *followLog(id: string, signal?: AbortSignal): AsyncGenerator<Buffer> {
    let offset = 0;
    for (;;) {
      if (signal?.aborted) return;
      const live = this.live.get(id);
      if (live) {
        let seen = 0;
        let skip = offset;
        // Bytes already sent from the store are skipped in the memory copy.
        for (;;) {
          while (seen < live.chunks.length) {
            let c = live.chunks[seen++];
            if (skip > 0) {
              const cut = Math.min(skip, c.length);
              skip -= cut;
              c = c.subarray(cut);
            }
            if (c.length > 0) {
              offset += c.length;
              yield c;
            }
          }
          if (live.ended || signal?.aborted) return;
          await new Promise<void>((r) => {
            const done = () => {
              live.off("data", done);
              signal?.removeEventListener("abort", done);
              r();
            };
            live.on("data", done);
            signal?.addEventListener("abort", done, { once: true });
          });
        }
      }
      const record = await this.opts.store.readBuild(id);
      const more = await this.opts.store.readLog(id, offset);
      if (more && more.length > 0) {
        offset += more.length;
        yield more;
      }
      if (!record || record.state === "succeeded" || record.state === "failed") {
        // A final read: the log is flushed before the record says finished.
        const last = await this.opts.store.readLog(id, offset);
        if (last && last.length > 0) yield last;
        return;
      }
      if (this.live.has(id)) continue;
      await new Promise<void>((r) => {
        const t = setTimeout(r, 500);
        signal?.addEventListener("abort", () => {
          clearTimeout(t);
          r();
        }, { once: true });
      });
    }
  }
}
