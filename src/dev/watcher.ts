// What `dev.watch` and `dev.ignore` mean, and the watcher (chokidar, loaded only by `togo dev`).
// Paths and globs are relative to togo.yaml. An ignore pattern without a `/` matches a name at any
// depth (as in .gitignore: `node_modules` anywhere, `*.log` anywhere); one with a `/` (`/out`,
// `build/out`) is anchored at the project.
// A path ignored also ignores everything under it.
import { existsSync } from "node:fs";
import { dirname, isAbsolute, join, relative, sep } from "node:path";

const GLOB_CHARS = /[*?[{]/;

/** A glob as a RegExp over a whole `/`-separated path: `**` any depth, `*` and `?` within a name, `{a,b}`, `[...]`. */
export function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*" && glob[i + 1] === "*") {
      const slash = glob[i + 2] === "/";
      re += slash ? "(?:.*/)?" : ".*";
      i += slash ? 2 : 1;
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "{") {
      const end = glob.indexOf("}", i);
      if (end === -1) re += "\\{";
      else {
        re += `(?:${glob.slice(i + 1, end).split(",").map((p) => globToRegExp(p).source.slice(1, -1)).join("|")})`;
        i = end;
      }
    } else if (c === "[") {
      const end = glob.indexOf("]", i + 1);
      if (end === -1) re += "\\[";
      else {
        re += `[${glob.slice(i + 1, end).replace(/^!/, "^").replace(/\\/g, "\\\\")}]`;
        i = end;
      }
    } else re += c.replace(/[.+^$()|\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

const clean = (p: string) => p.replace(/^\.\//, "").replace(/\/+$/, "") || ".";

export interface WatchPlan {
  /** Absolute paths handed to the watcher. */
  roots: string[];
  /** Is this project-relative path (`/`-separated) one that triggers a reload? */
  includes(rel: string): boolean;
  /** Is it (or a folder above it) ignored? */
  ignored(rel: string): boolean;
}

/** The paths to watch and the filters, from dev.watch and dev.ignore (pure: no file is read). */
export function watchPlan(dir: string, watch: string[], ignore: string[]): WatchPlan {
  const entries = watch.map(clean);
  const roots: string[] = [];
  const tests: ((rel: string) => boolean)[] = [];
  for (const e of entries.length ? entries : ["."]) {
    if (e === ".") {
      roots.push(dir);
      tests.push(() => true);
    } else if (GLOB_CHARS.test(e)) {
      const parts = e.split("/");
      const fixed = parts.slice(0, parts.findIndex((p) => GLOB_CHARS.test(p))).join("/");
      roots.push(fixed ? join(dir, fixed) : dir);
      const re = globToRegExp(e);
      tests.push((rel) => re.test(rel));
    } else {
      roots.push(join(dir, e));
      tests.push((rel) => rel === e || rel.startsWith(`${e}/`));
    }
  }
  const ignores = ignore.map(clean).map((p) => {
    // Without a `/`: a name at any depth; with one (a leading one too, as in .gitignore): a path from the project.
    const anchored = p.includes("/");
    const re = globToRegExp(p.replace(/^\/+/, ""));
    return anchored ? (segs: string[]) => segs.some((_, i) => re.test(segs.slice(0, i + 1).join("/"))) : (segs: string[]) => segs.some((s) => re.test(s));
  });
  return {
    roots: [...new Set(roots)],
    includes: (rel) => tests.some((t) => t(rel)),
    ignored: (rel) => {
      if (rel === "" || rel === ".") return false;
      const segs = rel.split("/");
      return ignores.some((m) => m(segs));
    },
  };
}

/** The path itself when it exists, else the nearest folder above it that does. */
export function existingAncestor(path: string, exists: (p: string) => boolean = existsSync): string {
  let p = path;
  while (!exists(p) && dirname(p) !== p) p = dirname(p);
  return p;
}

export interface Watcher {
  /** The folders the watcher looks at (absolute): what a watch costs. */
  folders(): string[];
  close(): Promise<void>;
}

/** What changed: a file added, changed or removed; a folder added or removed. */
export type ChangeEvent = "add" | "change" | "unlink" | "addDir" | "unlinkDir";

/**
 * Watches the plan's roots; calls onChange with each change's project-relative path and what
 * happened (a folder only when `folders`). Resolves once the first scan is done. Every reloader
 * type watches through it, so dev.watch and dev.ignore mean the same for all.
 */
export async function startWatcher(dir: string, plan: WatchPlan, onChange: (rel: string, event: ChangeEvent) => void, folders = false): Promise<Watcher> {
  const { watch } = await import("chokidar");
  const rel = (p: string) => {
    const r = relative(dir, isAbsolute(p) ? p : join(dir, p));
    return sep === "/" ? r : r.split(sep).join("/");
  };
  // chokidar reports nothing under a root that is missing when it starts, even once it appears
  // (a folder build_cmd or a clone makes later): such a root is watched from its nearest existing
  // folder, and there only the folders on the way to a root are looked at.
  const abs = (p: string) => (isAbsolute(p) ? p : join(dir, p));
  const within = (p: string) => (p.endsWith(sep) ? p : p + sep);
  const related = (p: string) => plan.roots.some((r) => p === r || p.startsWith(within(r)) || r.startsWith(within(p)));
  const watched = [...new Set(plan.roots.map((r) => existingAncestor(r)))];
  const w = watch(watched, { ignoreInitial: true, ignored: (p: string) => !related(abs(p)) || plan.ignored(rel(p)) });
  w.on("all", (event, path) => {
    if (!folders && (event === "addDir" || event === "unlinkDir")) return;
    const r = rel(path);
    if (plan.includes(r) && !plan.ignored(r)) onChange(r, event as ChangeEvent);
  });
  await new Promise<void>((resolve, reject) => {
    w.once("ready", () => resolve());
    w.once("error", (err) => reject(err instanceof Error ? err : new Error(String(err))));
  });
  return { folders: () => Object.keys(w.getWatched()).sort(), close: () => w.close() };
}
