// The docker driver's release history: which version was pushed as which digest, and which one the
// stack was last applied with. Kept in the project at .togo/docker/<app>/releases.json (newest
// first), written atomically. The registry's tags stay the durable record: a version missing here
// is looked up there by `togo rollback VERSION`.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { OperationError, TogoError } from "../../../src/core/errors.js";
import { VERSION } from "../../../src/ship/scripts.js";
import { isDigest } from "./ref.js";

export interface ImageRelease {
  version: string;
  digest: string;
  /** `registry/path` it was pushed to. */
  repository: string;
  pushedAt: string;
  /** When the stack was last applied with this digest. */
  appliedAt?: string;
}

export interface History {
  /** The version the stack was last applied with. */
  current?: string;
  releases: ImageRelease[];
  /** A keyed fingerprint of the secrets the stack was last applied with (never their values). */
  appliedSecrets?: string;
}

/** The history says something no togo run writes (a hand edit, a bad merge): exit 2, nothing done. */
export class HistoryError extends TogoError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** The history file in the driver's own record dir (the workspace's `.togo/docker/<app>`). */
export function historyFile(driverDir: string): string {
  return join(driverDir, "releases.json");
}

export function readHistory(file: string): History {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return { releases: [] };
  }
  try {
    const h = JSON.parse(text) as History;
    if (!Array.isArray(h.releases)) throw new Error("no releases array");
    return h;
  } catch (err) {
    throw new OperationError(`${file} is not a togo release history (${(err as Error).message}); move it away to start a new one`);
  }
}

export function writeHistory(file: string, h: History): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(h, null, 2)}\n`);
  renameSync(tmp, file);
}

/**
 * Records a push (newest first). A version is immutable: pushing another digest under a version
 * already recorded is refused, as the local and vps drivers refuse a changed artifact.
 */
export function recordPush(h: History, r: ImageRelease, keep: number): History {
  const existing = h.releases.find((x) => x.version === r.version);
  if (existing && existing.digest !== r.digest) {
    throw new OperationError(
      `version ${r.version} was pushed before as ${existing.digest}, and this build is ${r.digest}; deploy the change under a new version (--version, or commit so git describe changes)`,
    );
  }
  const releases = [existing ? { ...existing, pushedAt: r.pushedAt } : r, ...h.releases.filter((x) => x.version !== r.version)];
  return { ...h, releases: prune(releases, keep, h.current) };
}

/** Keeps `keep` releases, never dropping the current one. */
function prune(releases: ImageRelease[], keep: number, current?: string): ImageRelease[] {
  return releases.filter((r, i) => i < keep || r.version === current);
}

export function markApplied(h: History, version: string, at: string): History {
  return { ...h, current: version, releases: h.releases.map((r) => (r.version === version ? { ...r, appliedAt: at } : r)) };
}

export function currentRelease(h: History): ImageRelease | undefined {
  return h.current ? h.releases.find((r) => r.version === h.current) : undefined;
}

const show = (v: unknown) => (typeof v === "string" ? JSON.stringify(v.length > 100 ? `${v.slice(0, 97)}...` : v) : String(v));

/**
 * What is wrong with a history entry as a thing to pin (undefined: nothing). Its digest goes into the
 * stack verbatim and its version into labels and the environment, so both must be what togo writes.
 */
export function entryProblem(r: unknown): string | undefined {
  if (typeof r !== "object" || r === null || Array.isArray(r)) return `is ${show(r)}, not a release ({version, digest, repository, pushedAt})`;
  const e = r as Record<string, unknown>;
  if (typeof e.version !== "string" || !VERSION.test(e.version)) return `has version ${show(e.version)}, not a release version (letters, digits, . _ + -)`;
  if (e.digest === undefined) return "has no digest";
  if (typeof e.digest !== "string" || !isDigest(e.digest)) return `has digest ${show(e.digest)}, not a sha256 digest (sha256: and 64 lowercase hex digits)`;
  if (typeof e.repository !== "string" || e.repository === "") return `has repository ${show(e.repository)}, not the registry/path it was pushed to`;
  return undefined;
}

/** How an entry is named in messages: its version and index, as it stands in the file. */
export function entryName(h: History, r: ImageRelease): string {
  const i = h.releases.indexOf(r);
  const version = typeof r?.version === "string" ? `release ${show(r.version)}` : "a release";
  return `${version} (releases[${i}])`;
}

/**
 * What `togo rollback [VERSION]` switches to: the named version, else the newest release older than
 * the current one. Undefined when the named version is not in the history (look in the registry).
 * `file` names the history in errors.
 */
export function rollbackTarget(h: History, version?: string, file = "releases.json"): ImageRelease | undefined {
  if (version !== undefined) return h.releases.find((r) => r?.version === version);
  if (!h.current) throw new OperationError("nothing is deployed yet (no release was applied); there is nothing to roll back from");
  const i = h.releases.findIndex((r) => r?.version === h.current);
  if (i < 0) {
    throw new HistoryError(
      `${file} says the current version is ${show(h.current)}, but lists no such release, so there is no "release before it"; ` +
        "name the version to roll back to: togo rollback VERSION (togo releases lists them)",
    );
  }
  const previous = h.releases.slice(i + 1).find((r) => r?.digest !== h.releases[i].digest);
  if (!previous) throw new OperationError(`${h.current} is the oldest release in the history; name a version: togo rollback VERSION`);
  return previous;
}
