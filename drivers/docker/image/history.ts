// The docker driver's release history: which version was pushed as which digest, and which one the
// stack was last applied with. Kept in the project at .togo/docker/<app>/releases.json (newest
// first), written atomically. The registry's tags stay the durable record: a version missing here
// is looked up there by `togo rollback VERSION`.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { OperationError } from "../../../src/core/errors.js";

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

/**
 * What `togo rollback [VERSION]` switches to: the named version, else the newest release older than
 * the current one. Undefined when the named version is not in the history (look in the registry).
 */
export function rollbackTarget(h: History, version?: string): ImageRelease | undefined {
  if (version !== undefined) return h.releases.find((r) => r.version === version);
  if (!h.current) throw new OperationError("nothing is deployed yet (no release was applied); there is nothing to roll back from");
  const i = h.releases.findIndex((r) => r.version === h.current);
  const previous = h.releases.slice(i + 1).find((r) => r.digest !== h.releases[i].digest);
  if (!previous) throw new OperationError(`${h.current} is the oldest release in the history; name a version: togo rollback VERSION`);
  return previous;
}
