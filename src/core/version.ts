// togo's own version, from package.json (part of the provision record: a new togo may synth differently).
import { readFileSync } from "node:fs";

function readVersion(): string {
  for (const rel of ["../package.json", "../../package.json"]) {
    try {
      return (JSON.parse(readFileSync(new URL(rel, import.meta.url), "utf8")) as { version: string }).version;
    } catch {
      // try the next layout (src/ when run from source, dist/src/ when built)
    }
  }
  return "0.0.0";
}

export const TOGO_VERSION = readVersion();
