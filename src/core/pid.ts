// Processes on this machine by pid.
import { readFileSync } from "node:fs";

/** True while `pid` runs (EPERM: it runs, as another user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/**
 * When `pid` started (clock ticks since boot, from /proc): with the pid, it names one process, so
 * a pid reused by another process is told apart. Undefined where there is no /proc or no such pid.
 */
export function processStartTime(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

/** True when `pid` has exited and waits to be reaped: it holds no port and runs nothing. */
export function pidZombie(pid: number): boolean {
  return statFields(pid)?.[0] === "Z";
}
