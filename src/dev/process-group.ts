// A command run as its own process group (setsid), so stopping it stops everything it started
// (a shell, the app, the app's children). Its output goes through to togo's own stdout/stderr, and
// the last lines are kept for error messages.
import { spawn } from "node:child_process";

export interface GroupExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ProcessGroup {
  readonly pid: number;
  /** Resolves when the group's leader exits. */
  readonly exited: Promise<GroupExit>;
  /** Set once the leader has exited. */
  exit?: GroupExit;
  /** True once stop() was called: an exit after it is not a crash. */
  stopping: boolean;
  /** The last lines it printed (stdout and stderr, interleaved). */
  tail(lines?: number): string;
  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves when no member is left. */
  stop(graceMs?: number): Promise<void>;
}

const TAIL_BYTES = 8192;

export function exitText(e: GroupExit | undefined): string {
  if (!e) return "still running";
  return e.signal ? `signal ${e.signal}` : `exit code ${e.code}`;
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // already gone
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (groupAlive(pid)) {
    if (performance.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

export function startGroup(command: string, opts: { cwd: string; env: NodeJS.ProcessEnv; forward: boolean }): ProcessGroup {
  const child = spawn("sh", ["-c", command], { cwd: opts.cwd, env: opts.env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let buf = "";
  const keep = (chunk: Buffer) => {
    buf = (buf + chunk.toString("utf8")).slice(-TAIL_BYTES);
  };
  child.stdout.on("data", (c: Buffer) => {
    keep(c);
    if (opts.forward) process.stdout.write(c);
  });
  child.stderr.on("data", (c: Buffer) => {
    keep(c);
    if (opts.forward) process.stderr.write(c);
  });
  const group: ProcessGroup = {
    pid: child.pid ?? 0,
    stopping: false,
    exited: new Promise<GroupExit>((resolve) => {
      child.on("error", (err) => {
        keep(Buffer.from(`${err.message}\n`));
        group.exit = { code: 127, signal: null };
        resolve(group.exit);
      });
      child.on("exit", (code, signal) => {
        group.exit = { code, signal };
        resolve(group.exit);
      });
    }),
    tail(lines = 5) {
      return buf.trimEnd().split("\n").slice(-lines).join("\n");
    },
    async stop(graceMs = 5000) {
      group.stopping = true;
      if (!group.pid) return;
      signalGroup(group.pid, "SIGTERM");
      if (!(await waitGone(group.pid, graceMs))) {
        signalGroup(group.pid, "SIGKILL");
        await waitGone(group.pid, 5000);
      }
      await group.exited;
    },
  };
  return group;
}
