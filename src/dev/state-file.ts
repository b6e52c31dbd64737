// The file a running `togo dev` keeps its state in, and how `togo dev status` reads it: a manager
// whose pid is gone is `not-deployed`, whatever the file last said.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { pidAlive } from "../core/pid.js";
import { ReloaderStatusError, type DevStatus } from "./reloader.js";

/** Written whole and renamed into place, so a reader never sees half a file. */
export function writeDevState(file: string, status: DevStatus & { appPid?: number; appStart?: string }): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(status, null, 2)}\n`);
  renameSync(tmp, file);
}

export function removeDevState(file: string): void {
  rmSync(file, { force: true });
}

/** The recorded state; undefined when there is no file; a file that is not a state is a status error. */
export function recordedDevState(file: string): (DevStatus & Record<string, unknown>) | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ReloaderStatusError(`cannot read the dev state file ${file}: ${(e as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ReloaderStatusError(`the dev state file ${file} is not JSON (${(e as Error).message}); remove it if no togo dev runs`);
  }
  if (data === null || typeof data !== "object" || typeof (data as DevStatus).state !== "string") {
    throw new ReloaderStatusError(`the dev state file ${file} holds no state; remove it if no togo dev runs`);
  }
  return data as DevStatus & Record<string, unknown>;
}

/** What `togo dev status` reports: the recorded state when its manager is alive, else not-deployed. */
export function readDevState(file: string): DevStatus {
  const data = recordedDevState(file);
  if (!data) return { state: "not-deployed", message: "togo dev is not running" };
  if (typeof data.pid !== "number" || !pidAlive(data.pid)) {
    return { ...data, state: "not-deployed", message: `togo dev (pid ${String(data.pid)}) is not running; it stopped without cleaning up its state file` };
  }
  return data;
}
