// The artifact store: immutable blobs with their metadata beside them, and the build proxy's state
// (claims, build records, logs) so a restarted server, or a second one sharing the store, knows what
// happened. Two built in: a directory (fs-store.ts) and S3 (s3-store.ts); a plugin may register more
// by URL scheme. The built-ins write nothing a reader could see half-done, and create claims and
// artifacts only if absent (never overwrite).
import type { Readable } from "node:stream";
import { resolve } from "node:path";
import { TogoError } from "../core/errors.js";
import { Registry } from "../core/registry.js";
import { storeScheme } from "../core/spec.js";
import type { ArtifactKey, Coordinates } from "./key.js";

/** Written beside each blob; its presence means the blob is whole. */
export interface ArtifactMeta {
  /** The coordinates of the request that built it (the version is the name asked for then). */
  coordinates: Coordinates;
  key: ArtifactKey;
  commit: string;
  sha256: string;
  size: number;
  built_at: string;
  /** The recipe hash (also in key). */
  recipe: string;
  /** The file name a download gets (Content-Disposition). */
  file_name: string;
  build_id?: string;
}

/** Bytes start..end, both inclusive (as in HTTP's Range). */
export interface ByteRange {
  start: number;
  end: number;
}

export type BuildState = "queued" | "running" | "succeeded" | "failed";

/** Who runs (or last ran) a build: a restarted or second server takes it over when that is gone. */
export interface BuildRunner {
  host: string;
  /** The server's pid. */
  pid: number;
  /** Refreshed while the build is queued or running; a stale one is taken over. */
  heartbeat_at: string;
  /** The build command's process group, and its start time (/proc), so only that one is ever stopped. */
  build_pgid?: number;
  build_started?: string;
}

export interface BuildRecord {
  id: string;
  state: BuildState;
  coordinates: Coordinates;
  commit: string;
  key: ArtifactKey;
  /** Runs of this build so far (an interrupted run is run again, up to a limit). */
  attempt: number;
  created_at: string;
  started_at?: string;
  finished_at?: string;
  sha256?: string;
  size?: number;
  error?: string;
  runner?: BuildRunner;
}

/** A claim: build `build_id` owns (key, attempt). The latest attempt is the key's current build. */
export interface Claim {
  attempt: number;
  build_id: string;
}

export interface LogWriter {
  write(chunk: string | Buffer): void;
  /** Everything written so far is in the store once this resolves. */
  flush(): Promise<void>;
}

export interface ArtifactStore {
  /** The directory or s3://bucket/prefix, for messages. */
  readonly location: string;

  /** The artifact's metadata when it is stored, else undefined. */
  stat(key: ArtifactKey): Promise<ArtifactMeta | undefined>;
  /**
   * Stores `file` as the artifact for key, unless one is already stored: "exists" then, and the
   * stored one stays (artifacts are immutable). The blob is whole before its metadata appears.
   */
  put(key: ArtifactKey, file: string, meta: ArtifactMeta): Promise<"written" | "exists">;
  /** The artifact's bytes, or bytes start..end (inclusive) of them (undefined when it is not stored). */
  open(key: ArtifactKey, meta: ArtifactMeta, range?: ByteRange): Promise<Readable | undefined>;
  /** Every stored artifact's metadata. */
  list(): Promise<ArtifactMeta[]>;

  /** Creates the claim (key, attempt) for build_id if there is none yet; false when another took it. */
  claim(key: ArtifactKey, claim: Claim): Promise<boolean>;
  /** The highest attempt claimed for key. */
  latestClaim(key: ArtifactKey): Promise<Claim | undefined>;

  readBuild(id: string): Promise<BuildRecord | undefined>;
  /** Replaces the record whole (readers see the old one or the new one). */
  writeBuild(record: BuildRecord): Promise<void>;
  listBuilds(): Promise<BuildRecord[]>;
  /** Removes a record that never owned anything (its claim was lost to another server's build). */
  deleteBuild(id: string): Promise<void>;
  /**
   * Marks build id as in the queue (queued or running) or out of it. The marks are the queue a
   * starting server reads, so it never has to read every record the store has ever kept.
   */
  setActive(id: string, active: boolean): Promise<void>;
  /** The ids marked as in the queue. */
  activeBuilds(): Promise<string[]>;

  /** Starts (or, for a re-run, continues) build id's log. */
  logWriter(id: string): Promise<LogWriter>;
  /** The log from byte `from` on, or undefined when there is none. */
  readLog(id: string, from?: number): Promise<Buffer | undefined>;
  /** Removes what writers that are gone left half-done (temp files); nothing a reader could see. */
  sweep?(): Promise<void>;
}

const BUILD_ID = /^[0-9a-f]{16}$/;

/** Build ids are 16 hex digits; anything else is refused before it reaches a path. */
export function isBuildId(id: string): boolean {
  return BUILD_ID.test(id);
}

/** Where a store is and how to reach it: `artifacts.endpoint` (S3-compatible), the project directory. */
export interface StoreOptions {
  endpoint?: string;
  region?: string;
  /** Relative directories are taken from here (the project directory). */
  cwd?: string;
}

/** Opens the store at `location` (`scheme://…`, as written in artifacts.store or --store). */
export type StoreFactory = (location: string, opts: StoreOptions) => ArtifactStore | Promise<ArtifactStore>;

// Stores by URL scheme; a location without one is a directory. s3 is built in and loads the S3 SDK
// only when an s3:// store is opened; a plugin adds its own scheme with registerStore.
const storeRegistry = new Registry<StoreFactory>(
  "artifact store scheme",
  (scheme, known, source) =>
    new TogoError(`${source}: no artifact store handles ${scheme}:// (known: a directory, ${known.map((k) => `${k}://`).join(", ")}); a plugin named under plugins: adds one with registerStore("${scheme}", factory)`, 2),
);
storeRegistry.registerLazy("s3", async () => {
  const { S3Store } = await import("./s3-store.js");
  storeRegistry.register("s3", (location, opts) => S3Store.open(location, opts));
});

/** Adds a store for `scheme://…` locations (a plugin's API, beside registerDriver and registerReloader). */
export function registerStore(scheme: string, factory: StoreFactory): void {
  storeRegistry.register(scheme, factory);
}

/** For tests: forget a scheme registered by the test itself. */
export function unregisterStore(scheme: string): void {
  storeRegistry.unregister(scheme);
}

/**
 * Why no store can open `location` (its scheme is not registered), or undefined when one can: asked
 * before anything runs, once the plugins are loaded.
 */
export function unknownStore(location: string): string | undefined {
  const scheme = storeScheme(location);
  if (scheme === undefined || storeRegistry.has(scheme)) return undefined;
  const known = storeRegistry.names().map((k) => `${k}://`);
  return `expected a directory, ${known.join(", ")}, or a scheme that a plugin under plugins: registers (registerStore("${scheme}", factory)); no store handles ${scheme}://`;
}

/**
 * Opens the store a location names: a directory, `s3://bucket/prefix`, or a plugin's scheme.
 * `source` names where the location came from, for the error about an unknown scheme.
 */
export async function openStore(location: string, opts: StoreOptions = {}, source = "artifacts.store"): Promise<ArtifactStore> {
  const scheme = storeScheme(location);
  if (scheme === undefined) {
    const { FsStore } = await import("./fs-store.js");
    return new FsStore(resolve(opts.cwd ?? process.cwd(), location));
  }
  const factory = await storeRegistry.get(scheme, source);
  return factory(location, opts);
}
