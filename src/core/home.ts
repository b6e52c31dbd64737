// Paths as users write them in togo.yaml: `~/…` is their home, anything else relative is the project's.
import { homedir } from "node:os";
import { isAbsolute, join } from "node:path";

export function expandHome(p: string): string {
  return p === "~" ? homedir() : p.startsWith("~/") ? join(homedir(), p.slice(2)) : p;
}

/** A path from togo.yaml made absolute: `~/` expanded, relative ones taken from the project dir. */
export function projectPath(dir: string, p: string): string {
  const expanded = expandHome(p);
  return isAbsolute(expanded) ? expanded : join(dir, p);
}
