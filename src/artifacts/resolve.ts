// A version (tag, branch, or full commit id) to the commit it names now, by `git ls-remote`.
// An annotated tag resolves to the commit it points at (its peeled `^{}` line), a tag wins over a
// branch of the same name; a full commit id is taken as it is.
import { execFile } from "node:child_process";
import { OperationError } from "../core/errors.js";
import { isCommit } from "./key.js";

/** git's output lines `<sha>\t<ref>` → the commit `version` names, or undefined. */
export function pickCommit(lsRemote: string, version: string): string | undefined {
  const refs = new Map<string, string>();
  for (const line of lsRemote.split("\n")) {
    const [sha, ref] = line.trim().split("\t");
    if (sha && ref) refs.set(ref, sha);
  }
  return refs.get(`refs/tags/${version}^{}`) ?? refs.get(`refs/tags/${version}`) ?? refs.get(`refs/heads/${version}`);
}

/** A URL with its user:password@ removed, for messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^/@]*@/, "//***@");
}

export async function lsRemote(url: string, version: string, path = process.env.PATH): Promise<string | undefined> {
  if (isCommit(version)) return version;
  const out = await new Promise<string>((resolve, reject) => {
    execFile(
      "git",
      ["-c", "protocol.ext.allow=never", "ls-remote", url, `refs/tags/${version}`, `refs/tags/${version}^{}`, `refs/heads/${version}`],
      { env: { PATH: path ?? "/usr/bin:/bin", GIT_TERMINAL_PROMPT: "0", HOME: process.env.HOME ?? "/", LANG: "C.UTF-8" }, timeout: 60_000, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        if (err) reject(new OperationError(`git ls-remote ${redactUrl(url)} failed: ${String(stderr).trim().split("\n")[0] || err.message}`));
        else resolve(stdout);
      },
    );
  });
  return pickCommit(out, version);
}

/**
 * Resolutions with a short memory for downloads (GET), and fresh for build requests (POST): a POST
 * never reuses a finished resolution (a tag moved since is seen); it only joins one still running,
 * so fifty identical POSTs run one ls-remote.
 */
export class Resolver {
  private readonly entries = new Map<string, { done?: number; promise: Promise<string | undefined> }>();

  constructor(
    private readonly ttlMs = 2000,
    private readonly run: (url: string, version: string) => Promise<string | undefined> = lsRemote,
  ) {}

  resolve(url: string, version: string, fresh: boolean): Promise<string | undefined> {
    const k = `${url}\n${version}`;
    const now = performance.now();
    const e = this.entries.get(k);
    if (e) {
      const usable = e.done === undefined || (!fresh && now - e.done < this.ttlMs);
      if (usable) return e.promise;
    }
    const entry: { done?: number; promise: Promise<string | undefined> } = { promise: Promise.resolve(undefined) };
    entry.promise = this.run(url, version).then(
      (v) => {
        entry.done = performance.now();
        return v;
      },
      (err: unknown) => {
        this.entries.delete(k);
        throw err;
      },
    );
    this.entries.set(k, entry);
    return entry.promise;
  }
}
