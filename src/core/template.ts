// User templates for generated files (systemd unit, Caddy site): `{{name}}` placeholders filled
// from a fixed set of values. An unknown placeholder is an error naming it, the file and the
// placeholders there are, so a typo never ships as literal text.
import { readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { UsageError } from "./errors.js";

const PLACEHOLDER = /\{\{\s*([a-z_]+)\s*\}\}/g;

/** Placeholders in `text` that `values` does not know. */
export function unknownPlaceholders(text: string, known: string[]): string[] {
  return [...new Set([...text.matchAll(PLACEHOLDER)].map((m) => m[1]).filter((n) => !known.includes(n)))];
}

export function renderTemplate(text: string, values: Record<string, string>, source: string): string {
  const unknown = unknownPlaceholders(text, Object.keys(values));
  if (unknown.length > 0) {
    throw new UsageError(`${source}: unknown placeholder${unknown.length > 1 ? "s" : ""} ${unknown.map((u) => `{{${u}}}`).join(", ")}; known: ${Object.keys(values).map((k) => `{{${k}}}`).join(" ")}`);
  }
  return text.replace(PLACEHOLDER, (_, name: string) => values[name]);
}

/** Reads a template named in togo.yaml (relative to the project). */
export function readTemplate(projectDir: string, path: string, key: string): string {
  const file = isAbsolute(path) ? path : join(projectDir, path);
  try {
    return readFileSync(file, "utf8");
  } catch {
    throw new UsageError(`deploy.options.${key}: cannot read ${file}; point it at a template file in the project or remove the key`);
  }
}
