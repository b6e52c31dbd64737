// The env half of the deploy plan: which keys a deploy would add, remove or change in the live .env,
// without a value ever reaching the output. Each side is fingerprinted with HMAC-SHA256 under a
// random key made for this run only: the host computes it over the live values (envFingerprintsScript,
// the key on stdin), togo over the new ones; only the comparison is kept. The fingerprints themselves
// are never printed, and without the key they could not be checked against guesses anyway.
import { createHmac, randomBytes } from "node:crypto";
import type { EnvKeyChange } from "../core/spec.js";

export interface FingerprintKey {
  key: Buffer;
  /** What the host script reads on stdin: the inner and outer pads as printf octal escapes. */
  pads: string;
}

/** A fresh 64-byte key (SHA-256's block size, so HMAC uses it as it is). */
export function fingerprintKey(key: Buffer = randomBytes(64)): FingerprintKey {
  if (key.length !== 64) throw new Error("the fingerprint key must be 64 bytes");
  const pad = (x: number) => [...key].map((b) => `\\${(b ^ x).toString(8)}`).join("");
  return { key, pads: `${pad(0x36)}\n${pad(0x5c)}\n` };
}

export function fingerprint(k: FingerprintKey, value: string): string {
  return createHmac("sha256", k.key).update(value, "utf8").digest("hex");
}

/** The host's answer: name → fingerprint; undefined when there is no live .env. */
export function parseFingerprints(stdout: string): Map<string, string> | undefined {
  if (stdout.trim() === "no-env") return undefined;
  const out = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*) ([0-9a-f]{64})$/.exec(line.trim());
    if (m) out.set(m[1], m[2]);
  }
  return out;
}

/** A key of the env a deploy would write: its value, or why it is not known here (an unresolvable secret). */
export interface NextValue {
  value?: string;
  secret: boolean;
  note?: string;
}

/** Added, removed and changed keys (sorted by name) and how many are the same; names only. */
export function envChanges(live: Map<string, string> | undefined, next: Record<string, NextValue>, k: FingerprintKey): { changes: EnvKeyChange[]; unchanged: number } {
  const changes: EnvKeyChange[] = [];
  let unchanged = 0;
  const liveKeys = live ?? new Map<string, string>();
  const names = [...new Set([...liveKeys.keys(), ...Object.keys(next)])].sort();
  for (const key of names) {
    const n = next[key];
    const was = liveKeys.get(key);
    const secret = n?.secret ? { secret: true } : {};
    if (!n) changes.push({ key, change: "removed" });
    else if (was === undefined) changes.push({ key, change: "added", ...secret });
    else if (n.value === undefined) changes.push({ key, change: "unknown", ...secret, note: n.note ?? "its value is not known here" });
    else if (fingerprint(k, n.value) !== was) changes.push({ key, change: "changed", ...secret });
    else unchanged++;
  }
  return { changes, unchanged };
}
