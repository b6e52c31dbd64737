// The artifact store in a directory. Nothing is ever seen half-written: files are written under
// .tmp/ (same filesystem), fsynced, then renamed over (records) or hard-linked into place (blobs,
// metadata, claims: link() fails when the name exists, which makes "create if absent" atomic).
//
//   artifacts/<remote>/<owner>/<repo>/<commit>/<os>-<arch>-<recipe>/<sha256>     the blob
//   artifacts/<remote>/<owner>/<repo>/<commit>/<os>-<arch>-<recipe>/meta.json    its metadata (written last)
//   claims/<remote>/<owner>/<repo>/<commit>/<os>-<arch>-<recipe>/<attempt>.json  which build owns the key
//   builds/<id>.json, builds/<id>.log                                              records and logs
//   queue/<id>                                                                     builds queued or running
import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { appendFile, copyFile, link, mkdir, open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { pidAlive } from "../core/pid.js";
import { keyPath, type ArtifactKey } from "./key.js";
import { isBuildId, type ArtifactMeta, type ArtifactStore, type BuildRecord, type ByteRange, type Claim, type LogWriter } from "./store.js";

const exists = (e: unknown) => (e as NodeJS.ErrnoException).code === "EEXIST";
const missing = (e: unknown) => (e as NodeJS.ErrnoException).code === "ENOENT";

/** Makes a new name in dir durable (the file's own bytes were fsynced before it got the name). */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function buildId(id: string): string {
  if (!isBuildId(id)) throw new Error(`"${id}" is not a build id`);
  return id;
}

export class FsStore implements ArtifactStore {
  readonly location: string;

  constructor(readonly root: string) {
    this.location = root;
  }

  private tmpName(): string {
    return join(this.root, ".tmp", `${process.pid}-${randomBytes(6).toString("hex")}`);
  }

  /** Writes data to a fresh temp file, fsynced; the caller moves it into place. */
  private async temp(data: string | Buffer): Promise<string> {
    const tmp = this.tmpName();
    await mkdir(dirname(tmp), { recursive: true });
    const fh = await open(tmp, "wx", 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    return tmp;
  }

  /** Puts tmp at dest unless dest exists (atomic); the temp file is removed either way. */
  private async linkOnce(tmp: string, dest: string): Promise<boolean> {
    await mkdir(dirname(dest), { recursive: true });
    try {
      await link(tmp, dest);
      await syncDir(dirname(dest));
      return true;
    } catch (e) {
      if (exists(e)) return false;
      throw e;
    } finally {
      await rm(tmp, { force: true });
    }
  }

  private async replace(data: string | Buffer, dest: string): Promise<void> {
    const tmp = await this.temp(data);
    await mkdir(dirname(dest), { recursive: true });
    await rename(tmp, dest);
    await syncDir(dirname(dest));
  }

  private async readJson<T>(path: string): Promise<T | undefined> {
    try {
      return JSON.parse(await readFile(path, "utf8")) as T;
    } catch (e) {
      if (missing(e)) return undefined;
      throw e;
    }
  }

  private artifactDir(key: ArtifactKey): string {
    return join(this.root, "artifacts", keyPath(key));
  }

  async stat(key: ArtifactKey): Promise<ArtifactMeta | undefined> {
    return this.readJson<ArtifactMeta>(join(this.artifactDir(key), "meta.json"));
  }

  async put(key: ArtifactKey, file: string, meta: ArtifactMeta): Promise<"written" | "exists"> {
    const dir = this.artifactDir(key);
    if (await this.stat(key)) return "exists";
    // The blob is named by its sha256: a blob left by a run that died before its metadata is
    // never mistaken for the bytes of another build.
    const tmp = this.tmpName();
    await mkdir(dirname(tmp), { recursive: true });
    await copyFile(file, tmp);
    const fh = await open(tmp, "r+");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await this.linkOnce(tmp, join(dir, meta.sha256));
    const metaTmp = await this.temp(`${JSON.stringify(meta, null, 2)}\n`);
    return (await this.linkOnce(metaTmp, join(dir, "meta.json"))) ? "written" : "exists";
  }

  async open(key: ArtifactKey, meta: ArtifactMeta, range?: ByteRange): Promise<Readable | undefined> {
    const path = join(this.artifactDir(key), meta.sha256);
    try {
      await stat(path);
    } catch (e) {
      if (missing(e)) return undefined;
      throw e;
    }
    // 256 KiB reads: a quarter of the reads and event-loop turns of the default 64 KiB, for 256 KiB of memory a download.
    return createReadStream(path, { highWaterMark: 1 << 18, ...(range ? { start: range.start, end: range.end } : {}) });
  }

  async list(): Promise<ArtifactMeta[]> {
    const out: ArtifactMeta[] = [];
    const walk = async (dir: string, depth: number): Promise<void> => {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (e) {
        if (missing(e)) return;
        throw e;
      }
      if (depth === 5) {
        if (names.includes("meta.json")) {
          const m = await this.readJson<ArtifactMeta>(join(dir, "meta.json"));
          if (m) out.push(m);
        }
        return;
      }
      for (const n of names.sort()) await walk(join(dir, n), depth + 1);
    };
    await walk(join(this.root, "artifacts"), 0);
    return out;
  }

  private claimDir(key: ArtifactKey): string {
    return join(this.root, "claims", keyPath(key));
  }

  async claim(key: ArtifactKey, claim: Claim): Promise<boolean> {
    const tmp = await this.temp(`${JSON.stringify(claim)}\n`);
    return this.linkOnce(tmp, join(this.claimDir(key), `${claim.attempt}.json`));
  }

  async latestClaim(key: ArtifactKey): Promise<Claim | undefined> {
    let names: string[];
    try {
      names = await readdir(this.claimDir(key));
    } catch (e) {
      if (missing(e)) return undefined;
      throw e;
    }
    const attempts = names.map((n) => /^(\d+)\.json$/.exec(n)).filter((m): m is RegExpExecArray => m !== null).map((m) => Number(m[1]));
    if (attempts.length === 0) return undefined;
    return this.readJson<Claim>(join(this.claimDir(key), `${Math.max(...attempts)}.json`));
  }

  async sweep(): Promise<void> {
    const dir = join(this.root, ".tmp");
    for (const n of await readdir(dir).catch(() => [] as string[])) {
      const pid = Number(/^(\d+)-/.exec(n)?.[1]);
      if (pid > 0 && pid !== process.pid && !pidAlive(pid)) await rm(join(dir, n), { force: true });
    }
  }

  async readBuild(id: string): Promise<BuildRecord | undefined> {
    if (!isBuildId(id)) return undefined;
    return this.readJson<BuildRecord>(join(this.root, "builds", `${id}.json`));
  }

  async writeBuild(record: BuildRecord): Promise<void> {
    await this.replace(`${JSON.stringify(record, null, 2)}\n`, join(this.root, "builds", `${buildId(record.id)}.json`));
  }

  async listBuilds(): Promise<BuildRecord[]> {
    let names: string[];
    try {
      names = await readdir(join(this.root, "builds"));
    } catch (e) {
      if (missing(e)) return [];
      throw e;
    }
    const out: BuildRecord[] = [];
    for (const n of names.sort()) {
      const m = /^([0-9a-f]{16})\.json$/.exec(n);
      if (!m) continue;
      const r = await this.readBuild(m[1]);
      if (r) out.push(r);
    }
    return out;
  }

  async deleteBuild(id: string): Promise<void> {
    await rm(join(this.root, "builds", `${buildId(id)}.json`), { force: true });
  }

  async setActive(id: string, active: boolean): Promise<void> {
    const mark = join(this.root, "queue", buildId(id));
    if (active) await this.replace("", mark);
    else await rm(mark, { force: true });
  }

  async activeBuilds(): Promise<string[]> {
    const names = await readdir(join(this.root, "queue")).catch((e: unknown) => {
      if (missing(e)) return [] as string[];
      throw e;
    });
    return names.filter(isBuildId).sort();
  }

  async logWriter(id: string): Promise<LogWriter> {
    const path = join(this.root, "builds", `${buildId(id)}.log`);
    await mkdir(dirname(path), { recursive: true });
    // Appends in order: each write waits for the one before it.
    let chain: Promise<void> = appendFile(path, "");
    return {
      write: (chunk) => {
        chain = chain.then(() => appendFile(path, chunk));
      },
      flush: () => chain,
    };
  }

  async readLog(id: string, from = 0): Promise<Buffer | undefined> {
    if (!isBuildId(id)) return undefined;
    let fh;
    try {
      fh = await open(join(this.root, "builds", `${id}.log`), "r");
    } catch (e) {
      if (missing(e)) return undefined;
      throw e;
    }
    try {
      const size = (await fh.stat()).size;
      const buf = Buffer.alloc(Math.max(0, size - from));
      if (buf.length > 0) await fh.read(buf, 0, buf.length, from);
      return buf;
    } finally {
      await fh.close();
    }
  }
}
