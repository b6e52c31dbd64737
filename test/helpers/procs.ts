// This machine's processes as the interrupt tests look at them.
import { readFileSync } from "node:fs";

/** The process group of `pid`, or -1 once it is gone. */
export function pgid(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
  } catch {
    return -1;
  }
}

/** `<pid>: <command line>`, for a failure message. */
export function describeProc(pid: number): string {
  try {
    return `${pid}: ${readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ")}`;
  } catch {
    return `${pid}: (gone)`;
  }
}
