// A lock per stack in this checkout, around everything that writes a stack's folder, state or
// records (provision, destroy, diff): two runs at once would synthesize over each other and leave a
// skip record that no longer matches the state. Terraform's own state lock does not cover togo's
// records or cdktf.out; this does. A lock whose holder is gone (same machine, pid dead) is taken over.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { LockHeldError } from "../core/errors.js";
import { pidAlive } from "../core/pid.js";
import type { Spec } from "../core/spec.js";
import { workspaceOf } from "../core/workspace.js";

interface Holder {
  pid: number;
  host: string;
  op: string;
  since: string;
}

function take(spec: Spec, stack: string, op: string): string {
  const dir = workspaceOf(spec).stackLock(stack);
  mkdirSync(dirname(dir), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    try {
      mkdirSync(dir);
      const holder: Holder = { pid: process.pid, host: hostname(), op, since: new Date().toISOString() };
      writeFileSync(join(dir, "holder.json"), JSON.stringify(holder));
      return dir;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    let holder: Holder | undefined;
    try {
      holder = JSON.parse(readFileSync(join(dir, "holder.json"), "utf8")) as Holder;
    } catch {
      // being written right now: held
    }
    if (attempt === 0 && holder && holder.host === hostname() && !pidAlive(holder.pid)) {
      rmSync(dir, { recursive: true, force: true });
      continue;
    }
    const who = holder ? `togo ${holder.op} (pid ${holder.pid} on ${holder.host}, since ${holder.since})` : "another togo run";
    throw new LockHeldError(`stack ${stack} is busy: ${who} is working on it in this checkout. Wait for it to finish; if no togo runs, remove ${dir}`);
  }
}

/** Runs fn holding the lock of every stack named (taken in a fixed order, released however fn ends). */
export async function withStackLocks<T>(spec: Spec, stacks: string[], op: string, fn: () => Promise<T>): Promise<T> {
  const held: string[] = [];
  try {
    for (const s of [...new Set(stacks)].sort()) held.push(take(spec, s, op));
    return await fn();
  } finally {
    for (const dir of held.reverse()) rmSync(dir, { recursive: true, force: true });
  }
}
