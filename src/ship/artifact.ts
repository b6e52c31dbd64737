// The artifact: what build_cmd made and deploy ships. Content-addressed by sha256 so an unchanged
// artifact is never sent twice.
//
// A directory's files are hashed once and remembered in a digest cache (as git's index does): a
// file whose (size, mtime, ctime, inode, device, mode) has not changed since it was read is not
// read again. An entry is only kept when the file was last changed well before the hashing began,
// so a change made within the filesystem's timestamp granularity of that read ("racy git") can
// never hide behind an unchanged stat.
import { createHash } from "node:crypto";
import { closeSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, renameSync, rmSync, statSync, writeFileSync, type Stats } from "node:fs";
import { basename, dirname, isAbsolute, relative, resolve, sep } from "node:path";
import { execa } from "execa";
import { OperationError } from "../core/errors.js";

export interface HashProgress {
  /** Files read so far, of `totalFiles` that need reading (the rest came from the cache). */
  files: number;
  totalFiles: number;
  bytes: number;
  totalBytes: number;
}

export interface HashOptions {
  /** The digest cache file (Workspace.digestCache); without it every file is read. */
  cache?: string;
  /** Called at most every 100 ms while a long tree (over 1 s, or over 2,000 files to read) is hashed. */
  onProgress?: (p: HashProgress) => void;
  /** The wall clock in ms, read once when hashing begins (tests use it to age the tree). */
  now?: () => number;
  /** Stops the hashing (it rejects) when aborted. */
  signal?: AbortSignal;
}

export interface ArtifactDigest {
  sha256: string;
  /** Regular files in the artifact, and their bytes. */
  files: number;
  bytes: number;
  /** What had to be read this time (the rest came from the cache). */
  hashedFiles: number;
  hashedBytes: number;
  /** How long the digest took. */
  ms: number;
}

const CACHE_FORMAT = 1;
const CHUNK = 1 << 20;
/** Files to read before progress is shown, and how long before it is shown anyway. */
const PROGRESS_FILES = 2000;
const PROGRESS_AFTER_MS = 1000;

function hashFd(fd: number, buf: Buffer, onChunk?: (n: number) => void): string {
  const h = createHash("sha256");
  for (;;) {
    const n = readSync(fd, buf, 0, buf.length, null);
    if (n === 0) break;
    h.update(n === buf.length ? buf : buf.subarray(0, n));
    onChunk?.(n);
  }
  return h.digest("hex");
}

function hashFile(path: string, buf: Buffer, onChunk?: (n: number) => void): string {
  const fd = openSync(path, "r");
  try {
    return hashFd(fd, buf, onChunk);
  } finally {
    closeSync(fd);
  }
}

/**
 * What identifies a file's content without reading it; any change to a file changes its ctime.
 * Times are Node's float milliseconds: exact to a quarter microsecond, far below the trust margin.
 */
function statKey(s: Stats): string {
  return `${s.size}:${s.mtimeMs}:${s.ctimeMs}:${s.ino}:${s.dev}:${s.mode}`;
}

interface CacheFile {
  format: number;
  root: string;
  /** Flat triples (one array parses far faster than 30,000): relative path, stat key, sha256. */
  files: string[];
}

/**
 * A cache read back. Looked up in walk order, the order it was written in, so an unchanged tree
 * is matched entry by entry without building an index; by name after the first surprise.
 */
class Known {
  private next = 0;
  private byName?: Map<string, number>;
  constructor(private readonly flat: string[] = []) {}

  get size(): number {
    return this.flat.length / 3;
  }

  /** [stat key, sha256] remembered for `rel`. */
  get(rel: string): [string, string] | undefined {
    const f = this.flat;
    let i = this.next;
    if (f[i] !== rel) {
      if (!this.byName) {
        this.byName = new Map();
        for (let j = 0; j < f.length; j += 3) this.byName.set(f[j], j);
      }
      const at = this.byName.get(rel);
      if (at === undefined) return undefined;
      i = at;
    }
    this.next = i + 3;
    return [f[i + 1], f[i + 2]];
  }
}

function readCache(file: string, root: string): Known {
  try {
    const c = JSON.parse(readFileSync(file, "utf8")) as CacheFile;
    const ok = c.format === CACHE_FORMAT && c.root === root && Array.isArray(c.files) && c.files.length % 3 === 0 && c.files.every((x) => typeof x === "string");
    return new Known(ok ? c.files : []);
  } catch {
    return new Known(); // missing or unreadable: a cold cache
  }
}

/** Written beside its name and renamed: a concurrent reader never sees half a file. Best effort. */
function writeCache(file: string, root: string, files: string[]): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(tmp, JSON.stringify({ format: CACHE_FORMAT, root, files } satisfies CacheFile));
    renameSync(tmp, file);
  } catch {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // its folder could not be made (ENOTDIR): no file was written either
    }
  }
}

/** A regular file of the tree; only what the digest and the cache need (30,000 Stats are garbage). */
interface FileEntry {
  rel: string;
  key: string;
  size: number;
  exec: boolean;
  /** When it was last changed (mtime or ctime, ms). */
  changed: number;
  coarse: boolean;
  sha: string;
  cached: boolean;
}

function entry(rel: string, st: Stats): FileEntry {
  return {
    rel,
    key: statKey(st),
    size: st.size,
    exec: (st.mode & 0o111) !== 0,
    changed: Math.max(st.mtimeMs, st.ctimeMs),
    coarse: st.mtimeMs % 1000 === 0 && st.ctimeMs % 1000 === 0,
    sha: "",
    cached: false,
  };
}

function isOutside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel);
}

/** sha256 of a file, or of a directory tree (names, modes, link targets and contents, sorted). */
export async function artifactSha256(path: string, opts: HashOptions = {}): Promise<string> {
  return (await hashArtifact(path, opts)).sha256;
}

/** artifactSha256 with what it took; see the file comment for the cache. */
export async function hashArtifact(path: string, opts: HashOptions = {}): Promise<ArtifactDigest> {
  // One turn of the event loop first: what the caller began beside it (the SSH connection a deploy
  // opens meanwhile) gets going before the synchronous reads below hold the thread.
  await new Promise((r) => setImmediate(r));
  const start = performance.now();
  const startMs = (opts.now ?? Date.now)();
  const trusted = (f: FileEntry) => f.cached || f.changed < startMs - (f.coarse ? 2000 : 100);
  const buf = Buffer.allocUnsafe(CHUNK);
  const root = resolve(path);
  // A cache inside the tree would be part of what it describes (and change it on every write).
  if (opts.cache && !isOutside(root, resolve(opts.cache))) opts = { ...opts, cache: undefined };
  const known = opts.cache ? readCache(opts.cache, root) : new Known();
  const s = statSync(root);
  if (!s.isDirectory()) {
    // A single file is cached too (under the empty name): a large binary is not read twice.
    const f = entry("", s);
    const hit = known.get("");
    if (hit && hit[0] === f.key) return { sha256: hit[1], files: 1, bytes: s.size, hashedFiles: 0, hashedBytes: 0, ms: performance.now() - start };
    f.sha = hashFile(root, buf);
    if (opts.cache && (known.size > 0 || trusted(f))) writeCache(opts.cache, root, trusted(f) ? [f.rel, f.key, f.sha] : []);
    return { sha256: f.sha, files: 1, bytes: s.size, hashedFiles: 1, hashedBytes: s.size, ms: performance.now() - start };
  }

  // 1. The tree in digest order, each file's stat checked against the cache (no file read yet).
  // The digest's lines are what they have always been: `d name`, `l name target`, `f name x|- sha`.
  const lines: (string | FileEntry)[] = [];
  const files: FileEntry[] = [];
  const todo: FileEntry[] = [];
  let bytes = 0;
  // Reads are synchronous (far cheaper than a promise per file); pauses let the spinner turn.
  let lastPause = performance.now();
  const pause = async (): Promise<void> => {
    opts.signal?.throwIfAborted();
    if (performance.now() - lastPause < 20) return;
    await new Promise((r) => setImmediate(r));
    lastPause = performance.now();
  };
  const walk = async (dir: string, rel: string): Promise<void> => {
    await pause();
    const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const full = `${dir}/${e.name}`;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isSymbolicLink()) lines.push(`l ${r} ${readlinkSync(full)}\n`);
      else if (e.isDirectory()) {
        lines.push(`d ${r}\n`);
        await walk(full, r);
      } else {
        const st = lstatSync(full);
        if (!st.isFile()) throw new OperationError(`the artifact holds ${r}, which is not a regular file, directory or symlink; remove it from deploy.binary`);
        const f = entry(r, st);
        const hit = known.get(r);
        if (hit && hit[0] === f.key) {
          f.sha = hit[1];
          f.cached = true;
        } else todo.push(f);
        bytes += f.size;
        files.push(f);
        lines.push(f);
      }
    }
  };
  await walk(root, "");

  // 2. Files the cache does not vouch for are read.
  const p: HashProgress = { files: 0, totalFiles: todo.length, bytes: 0, totalBytes: todo.reduce((n, f) => n + f.size, 0) };
  const long = todo.length > PROGRESS_FILES;
  let lastReport = 0;
  for (const f of todo) {
    f.sha = hashFile(`${root}/${f.rel}`, buf, (n) => (p.bytes += n));
    p.files++;
    const now = performance.now();
    if (opts.onProgress && (long || now - start > PROGRESS_AFTER_MS) && now - lastReport >= 100) {
      lastReport = now;
      opts.onProgress({ ...p });
    }
    await pause();
  }

  // 3. The digest, in one update.
  const text = lines.map((l) => (typeof l === "string" ? l : `f ${l.rel} ${l.exec ? "x" : "-"} ${l.sha}\n`)).join("");
  const sha256 = createHash("sha256").update(text).digest("hex");

  if (opts.cache) {
    const keep = files.filter(trusted);
    const cached = files.length - todo.length;
    // Rewritten only when it would say something new: an unchanged tree costs no write.
    if (keep.length !== cached || known.size !== cached) writeCache(opts.cache, root, keep.flatMap((f) => [f.rel, f.key, f.sha]));
  }
  return { sha256, files: files.length, bytes, hashedFiles: todo.length, hashedBytes: p.bytes, ms: performance.now() - start };
}

export function artifactName(path: string): string {
  return basename(path);
}

/**
 * The release version: `--version`, else `git describe --always --dirty` (with the artifact's
 * short hash added when the tree is dirty, so two dirty builds never share a version), else a
 * UTC timestamp.
 */
export async function defaultVersion(dir: string, sha256: string, now = new Date()): Promise<string> {
  return (await gitVersion(dir, sha256)) ?? timestampVersion(now);
}

/** The version git describe gives (a dirty tree's carries the artifact's short hash), if it gives one. */
export async function gitVersion(dir: string, sha256: string): Promise<string | undefined> {
  const r = await execa("git", ["describe", "--always", "--dirty"], { cwd: dir, reject: false });
  const described = r.exitCode === 0 ? String(r.stdout).trim() : "";
  if (described && /^[A-Za-z0-9][A-Za-z0-9._+-]{0,50}$/.test(described)) {
    return described.endsWith("-dirty") ? `${described}.${sha256.slice(0, 8)}` : described;
  }
  return undefined;
}

export function timestampVersion(now: Date): string {
  return now.toISOString().replace(/[-:]/g, "").replace(/\..*/, "").replace("T", "");
}
