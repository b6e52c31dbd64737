// Coordinates (what a user asks for) and the artifact key (what is stored). A version is a mutable
// name (a tag can move, a branch does), so the key is the commit it resolved to, plus os, arch and
// the hash of the build recipe: the same commit under two names is one artifact, a moved tag a new one.
import { createHash } from "node:crypto";
import { TogoError } from "../core/errors.js";

/** `{remote}/{owner}/{repo}/{os}/{arch}/{version}`, as in the build proxy's paths. */
export interface Coordinates {
  remote: string;
  owner: string;
  repo: string;
  os: string;
  arch: string;
  version: string;
}

/** What identifies one artifact: never a ref name. */
export interface ArtifactKey {
  remote: string;
  owner: string;
  repo: string;
  /** The full commit id the version resolved to. */
  commit: string;
  os: string;
  arch: string;
  /** recipeHash() of how it was built. */
  recipe: string;
}

/** How the server builds, beyond what the commit itself says (its togo.yaml, its Makefile). */
export interface Recipe {
  isolation: "none" | "docker";
  /** The container image (isolation docker). */
  image?: string;
  /** The Makefile used when the repository has none. */
  defaultMakefile: string;
}

/** Bumped when the way a build turns a checkout into an artifact changes. */
export const RECIPE_FORMAT = 1;

/** A path segment: letters, digits, `.`, `_`, `-` (not `.`/`..`, no leading dot or dash). */
const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$/;
/** A version may also hold `/` (release/1.2, a branch name), but no `..` and no empty part. */
const VERSION = /^[A-Za-z0-9_][A-Za-z0-9._/+-]{0,199}$/;
const COMMIT = /^[0-9a-f]{40}$/;

export class BadCoordinatesError extends TogoError {
  constructor(message: string) {
    super(message, 2);
  }
}

function segment(name: keyof Coordinates, value: string): string {
  if (!SEGMENT.test(value)) throw new BadCoordinatesError(`${name} "${value}" must match ${SEGMENT} (letters, digits, ".", "_", "-")`);
  return value;
}

export function checkCoordinates(c: Coordinates): Coordinates {
  for (const k of ["remote", "owner", "repo", "os", "arch"] as const) segment(k, c[k]);
  if (!VERSION.test(c.version) || c.version.split("/").some((p) => p === "" || p === "." || p === ".." || p.endsWith(".lock")) || c.version.includes("..")) {
    throw new BadCoordinatesError(`version "${c.version}" must be a tag, branch or commit name (letters, digits, ".", "_", "-", "/", "+"; no "..")`);
  }
  return c;
}

/** `remote/owner/repo/os/arch/version` (the API path without its leading slash). */
export function coordinatesPath(c: Coordinates): string {
  return [c.remote, c.owner, c.repo, c.os, c.arch, c.version].join("/");
}

/** `remote/owner/repo/os/arch/version`, checked; a version with `/` keeps it (release/1.2). */
export function parseCoordinates(path: string): Coordinates {
  const parts = path.replace(/^\/+/, "").split("/");
  if (parts.length < 6) throw new BadCoordinatesError(`"${path}" is not {remote}/{owner}/{repo}/{os}/{arch}/{version}`);
  const [remote, owner, repo, os, arch, ...rest] = parts;
  return checkCoordinates({ remote, owner, repo, os, arch, version: rest.join("/") });
}

export function isCommit(version: string): boolean {
  return COMMIT.test(version);
}

export function recipeHash(r: Recipe): string {
  const canonical = JSON.stringify({ format: RECIPE_FORMAT, isolation: r.isolation, image: r.image ?? null, makefile: r.defaultMakefile });
  return createHash("sha256").update(canonical).digest("hex").slice(0, 16);
}

export function artifactKey(c: Coordinates, commit: string, recipe: string): ArtifactKey {
  if (!COMMIT.test(commit)) throw new TogoError(`"${commit}" is not a full commit id`);
  return { remote: c.remote, owner: c.owner, repo: c.repo, commit, os: c.os, arch: c.arch, recipe };
}

/** The key as a relative store path: `remote/owner/repo/commit/os-arch-recipe`. */
export function keyPath(k: ArtifactKey): string {
  return [k.remote, k.owner, k.repo, k.commit, `${k.os}-${k.arch}-${k.recipe}`].join("/");
}

/**
 * The clone URL for coordinates through `artifacts.git_url` (placeholders {remote} {owner} {repo}).
 * The values are checked segments, so they cannot add a path or a URL part of their own.
 */
export function cloneUrl(template: string, c: Pick<Coordinates, "remote" | "owner" | "repo">): string {
  return template.replaceAll("{remote}", c.remote).replaceAll("{owner}", c.owner).replaceAll("{repo}", c.repo);
}

export const DEFAULT_GIT_URL = "https://{remote}/{owner}/{repo}.git";
