// deploy.artifact: store — the deploy's artifact is the artifact store's build of the project's
// current commit for the hosts' os/arch, asked of the build proxy (artifacts.server), which builds
// it when it has none, or read from the store itself (artifacts.store, filled by `togo build`).
// Nothing is built here. The bytes are checked against the store's sha256 when they arrive here,
// and again by every host before it stores them (scripts.ts storeVerifiedUploadScript).
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { execa } from "execa";
import { OperationError, UsageError } from "../core/errors.js";
import type { Reporter } from "../core/log.js";
import type { Spec } from "../core/spec.js";
import { workspaceOf } from "../core/workspace.js";
import { ArtifactClient, describeCoordinates, type BuildCoordinates } from "../artifacts/client.js";

/** Where the project's code is: the coordinates' first three parts and the commit. */
export interface ProjectSource {
  remote: string;
  owner: string;
  repo: string;
  commit: string;
  /** The remote's URL (origin), for messages. */
  url: string;
}

export interface StoreArtifact {
  /** The file here, checked against `sha256`. */
  file: string;
  /** Its name in the release (what the build made). */
  name: string;
  sha256: string;
  size: number;
  coordinates: BuildCoordinates;
  /** "proxy" (artifacts.server) or the store's location. */
  from: string;
}

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$/;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * `{remote}/{owner}/{repo}` of a clone URL: first by reading it through artifacts.git_url (so a
 * proxy's own scheme, e.g. file:///srv/git/{owner}/{repo}.git, maps back), else as the usual
 * forms: https://host/owner/repo(.git), ssh://git@host[:port]/owner/repo, git@host:owner/repo.
 */
export function parseRemoteUrl(url: string, gitUrl: string): { remote: string; owner: string; repo: string } | undefined {
  const parts: string[] = [];
  const pattern = gitUrl.split(/(\{remote\}|\{owner\}|\{repo\})/).map((piece) => {
    const m = /^\{(remote|owner|repo)\}$/.exec(piece);
    if (!m) return escapeRegExp(piece);
    parts.push(m[1]);
    return "([A-Za-z0-9_][A-Za-z0-9._-]*?)";
  });
  const viaTemplate = new RegExp(`^${pattern.join("")}$`).exec(url);
  if (viaTemplate) {
    const got: Record<string, string> = {};
    parts.forEach((name, i) => (got[name] = viaTemplate[i + 1]));
    // A template without {remote} or {owner} (file:///srv/{repo}.git) names them nowhere: the usual forms may.
    if (got.remote && got.owner && got.repo) return ok(got.remote, got.owner, got.repo);
  }
  const m =
    /^(?:https?|ssh|git):\/\/(?:[^@/]+@)?([^/:]+)(?::\d+)?\/([^/]+)\/([^/]+?)(?:\.git)?\/?$/.exec(url) ??
    /^(?:[^@/]+@)?([^/:]+):([^/]+)\/([^/]+?)(?:\.git)?\/?$/.exec(url) ??
    /^(?:file:\/\/)?\/(?:.*\/)?([^/]+)\/([^/]+)\/([^/]+?)(?:\.git)?\/?$/.exec(url);
  return m ? ok(m[1], m[2], m[3]) : undefined;

  function ok(remote: string, owner: string, repo: string) {
    return [remote, owner, repo].every((s) => SEGMENT.test(s) && s !== "." && s !== "..") ? { remote, owner, repo } : undefined;
  }
}

async function git(dir: string, args: string[]) {
  return execa("git", args, { cwd: dir, reject: false, env: { GIT_TERMINAL_PROMPT: "0", LANG: "C" } });
}

/**
 * The project's current commit and where it is pushed. The proxy builds commits, not a working
 * tree: a change to a tracked file that is not committed would not be in what is deployed, so it
 * stops the deploy (untracked files are not part of any commit and are let be).
 */
export async function projectSource(
  spec: Spec,
  why = "deploy.artifact: store ships the artifact store's build of the project's current commit",
  o: { requireClean?: boolean; forDeploy?: boolean } = {},
): Promise<ProjectSource> {
  const orBuildHere = o.forDeploy !== false ? " (or set deploy.artifact: build to build here)" : "";
  const inside = await git(spec.dir, ["rev-parse", "--is-inside-work-tree"]);
  if (inside.exitCode !== 0 || String(inside.stdout).trim() !== "true") {
    throw new UsageError(`${why}, but ${spec.dir} is not in a git repository: git init, commit and push it${orBuildHere}`);
  }
  const head = await git(spec.dir, ["rev-parse", "--verify", "-q", "HEAD^{commit}"]);
  if (head.exitCode !== 0) throw new UsageError(`${why}, but the repository in ${spec.dir} has no commit yet: commit and push the project first`);
  const commit = String(head.stdout).trim();
  const dirty = await git(spec.dir, ["status", "--porcelain", "--untracked-files=no"]);
  const changed = String(dirty.stdout).split("\n").filter(Boolean);
  if (changed.length > 0 && o.requireClean !== false) {
    const list = changed.slice(0, 5).map((l) => l.slice(3)).join(", ");
    throw new UsageError(
      `${why}, but ${changed.length} tracked file${changed.length === 1 ? " has" : "s have"} uncommitted changes (${list}${changed.length > 5 ? ", ..." : ""}): ` +
        (o.forDeploy !== false ? `commit and push them (the proxy builds commits, not this working tree), or stash them${orBuildHere}` : "commit them (a build is of a commit, not of this working tree), or stash them, or name a version with --version"),
    );
  }
  const remotes = String((await git(spec.dir, ["remote"])).stdout).split("\n").filter(Boolean);
  const name = remotes.includes("origin") ? "origin" : remotes.length === 1 ? remotes[0] : undefined;
  if (!name) {
    throw new UsageError(
      remotes.length === 0
        ? `${why}, but the repository in ${spec.dir} has no remote: add the one the proxy clones from (git remote add origin URL) and push`
        : `${why}, but the repository has several remotes and none is called origin (${remotes.join(", ")}): name the one the proxy clones from origin`,
    );
  }
  const url = String((await git(spec.dir, ["remote", "get-url", name])).stdout).trim();
  const parsed = parseRemoteUrl(url, spec.artifacts.gitUrl);
  if (!parsed) {
    throw new UsageError(
      `${why}, but the ${name} remote's URL (${url}) names no {remote}/{owner}/{repo}: use a URL of the form https://host/owner/repo.git, or set artifacts.git_url to a template it matches`,
    );
  }
  return { ...parsed, commit, url };
}

/** A warning when the commit is on no remote-tracking branch: the proxy could not fetch it. */
export async function unpushedNote(dir: string, commit: string): Promise<string | undefined> {
  const r = await git(dir, ["branch", "-r", "--contains", commit]);
  if (r.exitCode === 0 && String(r.stdout).trim() === "") return `commit ${commit.slice(0, 12)} is on no remote branch this clone knows of: push it, or the build proxy cannot fetch it`;
  return undefined;
}

async function sha256Of(file: string): Promise<string> {
  const h = createHash("sha256");
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest("hex");
}

/** A file already fetched earlier whose bytes still hash to its name's sha256 is used again. */
async function cached(file: string, sha256: string): Promise<boolean> {
  if (!existsSync(file)) return false;
  if ((await sha256Of(file)) === sha256) return true;
  rmSync(file, { force: true });
  return false;
}

/** The file fetched earlier into `dir` (downloads/<sha256>/<name>), if its bytes still hash to sha256. */
async function cachedIn(dir: string, sha256: string): Promise<string | undefined> {
  if (!existsSync(dir)) return undefined;
  const names = readdirSync(dir).filter((n) => !n.startsWith("."));
  if (names.length !== 1) return undefined;
  const file = join(dir, names[0]);
  return (await cached(file, sha256)) ? file : undefined;
}

/** Writes a stored artifact's bytes to `dest` if they hash to `sha256` (beside the name, then renamed). */
async function saveChecked(stream: Readable, dest: string, sha256: string, what: string): Promise<number> {
  mkdirSync(dirname(dest), { recursive: true });
  const partial = `${dest}.${process.pid}.partial`;
  const h = createHash("sha256");
  let size = 0;
  stream.on("data", (c: Buffer) => {
    h.update(c);
    size += c.length;
  });
  try {
    await pipeline(stream, createWriteStream(partial));
  } catch (e) {
    rmSync(partial, { force: true });
    throw new OperationError(`reading ${what} broke off after ${size} bytes: ${(e as Error).message}`);
  }
  const got = h.digest("hex");
  if (got !== sha256) {
    rmSync(partial, { force: true });
    throw new OperationError(`${what} does not match its recorded sha256 (${sha256}; its ${size} bytes hash to ${got}); refused, nothing was shipped`);
  }
  renameSync(partial, dest);
  return size;
}

export interface FetchOptions {
  spec: Spec;
  platform: { os: string; arch: string };
  log: Reporter;
  signal?: AbortSignal;
  /** For tests: the client to use instead of one for artifacts.server. */
  client?: ArtifactClient;
}

/**
 * The artifact of the project's current commit for `platform`, as a checked file here: from the
 * build proxy (which builds it when it has none; its logs are shown meanwhile), else from the store.
 */
export async function fetchStoreArtifact(o: FetchOptions): Promise<StoreArtifact> {
  const { spec, platform, log, signal } = o;
  const source = await projectSource(spec);
  const coordinates: BuildCoordinates = { remote: source.remote, owner: source.owner, repo: source.repo, os: platform.os, arch: platform.arch, version: source.commit };
  const ws = workspaceOf(spec);
  const fallbackName = spec.binary?.replace(/\/+$/, "").split("/").pop() || source.repo;

  if (spec.artifacts.server || o.client) {
    const client = o.client ?? new ArtifactClient({ server: spec.artifacts.server!, tokenFile: spec.artifacts.tokenFile });
    log.info(`artifact: asking ${client.server} for ${describeCoordinates(coordinates)}`);
    let built;
    try {
      built = await client.ensure(coordinates, lineLogger(log), signal);
    } catch (e) {
      const note = e instanceof OperationError ? await unpushedNote(spec.dir, source.commit) : undefined;
      if (note) throw new OperationError(`${(e as Error).message}\n(${note})`);
      throw e;
    }
    const earlier = await cachedIn(dirname(ws.downloadedArtifact(built.sha256, "x")), built.sha256);
    if (earlier) {
      log.info(`artifact: ${built.sha256.slice(0, 12)} fetched before, its bytes checked again`);
      return { file: earlier, name: basename(earlier), sha256: built.sha256, size: built.size, coordinates, from: client.server };
    }
    const landing = ws.downloadedArtifact(built.sha256, ".download");
    const got = await client.download(coordinates, landing, built.sha256, signal);
    const name = got.name ?? fallbackName;
    const file = ws.downloadedArtifact(built.sha256, name);
    renameSync(landing, file);
    log.info(`artifact: downloaded ${name}, ${got.size} bytes, sha256 ${built.sha256} checked`);
    // The store's sha256, not what arrived: the host checks the bytes against what was built.
    return { file, name, sha256: built.sha256, size: got.size, coordinates, from: client.server };
  }

  // No proxy: the store itself must have it (`togo build` puts it there).
  const { openStore } = await import("../artifacts/store.js");
  const store = await openStore(spec.artifacts.store, { endpoint: spec.artifacts.endpoint, cwd: spec.dir });
  const all = await store.list();
  const matches = all
    .filter((m) => m.key.remote === source.remote && m.key.owner === source.owner && m.key.repo === source.repo && m.commit === source.commit && m.key.os === platform.os && m.key.arch === platform.arch)
    .sort((a, b) => (a.built_at < b.built_at ? 1 : -1));
  const meta = matches[0];
  if (!meta) {
    throw new OperationError(
      `the artifact store ${store.location} has no build of ${source.remote}/${source.owner}/${source.repo} ${source.commit.slice(0, 12)} for ${platform.os}/${platform.arch}: ` +
        `build it into the store (togo build --os ${platform.os} --arch ${platform.arch}), or set artifacts.server to a build proxy that builds it`,
    );
  }
  const file = ws.downloadedArtifact(meta.sha256, meta.file_name || fallbackName);
  if (!(await cached(file, meta.sha256))) {
    const stream = await store.open(meta.key, meta);
    if (!stream) throw new OperationError(`the artifact store ${store.location} lists ${meta.sha256} but its bytes are gone`);
    await saveChecked(stream, file, meta.sha256, `the artifact ${meta.file_name} from ${store.location}`);
  }
  log.info(`artifact: ${meta.file_name} from ${store.location}, sha256 ${meta.sha256} checked`);
  return { file, name: meta.file_name || fallbackName, sha256: meta.sha256, size: meta.size, coordinates, from: store.location };
}

/** A build's log, shown line by line as it streams in. */
function lineLogger(log: Reporter): (text: string) => void {
  let rest = "";
  return (text) => {
    const lines = (rest + text).split("\n");
    rest = lines.pop() ?? "";
    for (const l of lines) log.info(`build | ${l}`);
  };
}
