// Reading this machine's processes from /proc: the state and start time are the fields after the
// command name, which is the executable's file name and may itself hold spaces, parentheses and a
// state letter. A zombie (exited, not yet reaped) must read as one; a pid reused later must not
// share a start time with the old process.
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, copyFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, test } from "@jest/globals";
import { pidAlive, pidZombie, processStartTime } from "../../src/core/pid.js";
import { cleanupTempDirs, tempDir } from "../helpers/index.js";

afterAll(cleanupTempDirs);

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill("SIGKILL");
});

function start(file: string, args: string[]): ChildProcess {
  const c = spawn(file, args, { stdio: ["ignore", "pipe", "inherit"] });
  children.push(c);
  return c;
}

/** The first line the child prints. */
function firstLine(c: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    c.stdout!.on("data", (d: Buffer) => {
      text += d.toString();
      const nl = text.indexOf("\n");
      if (nl >= 0) resolve(text.slice(0, nl));
    });
    c.once("exit", (code) => reject(new Error(`the child exited (${code}) before printing a line: ${text}`)));
  });
}

/** Waits (on /proc, up to 10 s) until `ok()` holds. */
async function until(ok: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

describe("pid", () => {
  test("a running process whose file name holds ') Z ' is neither a zombie nor misread", async () => {
    const dir = tempDir("togo-pid-");
    const tricky = join(dir, "x) Z 1 2 (y");
    copyFileSync("/bin/sleep", tricky);
    chmodSync(tricky, 0o755);
    const c = start(tricky, ["30"]);
    await until(() => processStartTime(c.pid!) !== undefined, "the child's /proc entry");
    expect(pidAlive(c.pid!)).toBe(true);
    expect(pidZombie(c.pid!)).toBe(false);
    // Clock ticks since boot: a number, and not before togo's own start.
    const mine = processStartTime(process.pid)!;
    const its = processStartTime(c.pid!)!;
    expect(its).toMatch(/^\d+$/);
    expect(Number(its)).toBeGreaterThanOrEqual(Number(mine));
  });

  test("an exited process its parent has not reaped is a zombie", async () => {
    // The shell starts a short child, then becomes a long sleep that never reaps it.
    const c = start("sh", ["-c", 'sleep 0 & echo $!; exec sleep 30']);
    const pid = Number(await firstLine(c));
    expect(pid).toBeGreaterThan(0);
    await until(() => pidZombie(pid), `pid ${pid} to become a zombie`);
    // kill(pid, 0) still succeeds for a zombie: only the state tells it is gone.
    expect(pidAlive(pid)).toBe(true);
  });

  test("a pid with no process: no start time, not a zombie, not alive", async () => {
    const c = start("sh", ["-c", "exit 0"]);
    await new Promise((r) => c.once("exit", r));
    const pid = c.pid!;
    expect(processStartTime(pid)).toBeUndefined();
    expect(pidZombie(pid)).toBe(false);
    expect(pidAlive(pid)).toBe(false);
  });
});
