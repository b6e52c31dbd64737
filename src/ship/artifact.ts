// The artifact: what build_cmd made and deploy ships. Content-addressed by sha256 so an unchanged
// artifact is never sent twice.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, readlink, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { execa } from "execa";

async function hashFile(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** sha256 of a file, or of a directory tree (names, modes, link targets and contents, sorted). */
export async function artifactSha256(path: string): Promise<string> {
  const s = await stat(path);
  if (!s.isDirectory()) return hashFile(path);
  const h = createHash("sha256");
  const walk = async (dir: string, rel: string): Promise<void> => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const full = join(dir, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isSymbolicLink()) h.update(`l ${r} ${await readlink(full)}\n`);
      else if (e.isDirectory()) {
        h.update(`d ${r}\n`);
        await walk(full, r);
      } else {
        const st = await stat(full);
        h.update(`f ${r} ${(st.mode & 0o111) !== 0 ? "x" : "-"} ${await hashFile(full)}\n`);
      }
    }
  };
  await walk(path, "");
  return h.digest("hex");
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
  const r = await execa("git", ["describe", "--always", "--dirty"], { cwd: dir, reject: false });
  const described = r.exitCode === 0 ? String(r.stdout).trim() : "";
  if (described && /^[A-Za-z0-9][A-Za-z0-9._+-]{0,50}$/.test(described)) {
    return described.endsWith("-dirty") ? `${described}.${sha256.slice(0, 8)}` : described;
  }
  return now.toISOString().replace(/[-:]/g, "").replace(/\..*/, "").replace("T", "");
}
