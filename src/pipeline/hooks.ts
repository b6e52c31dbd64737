// User hooks: local shell commands from togo.yaml `hooks:`, run in the project directory with
// TOGO_* variables. Their output is shown line by line, prefixed with the hook's name. They inherit
// the user's environment minus the variables togo's `env:` secret references read, and never get a
// resolved secret: a hook that needs one must fetch it itself.
import { hostname, userInfo } from "node:os";
import { execa } from "execa";
import { HookError } from "../core/errors.js";
import type { Reporter } from "../core/log.js";
import type { Spec } from "../core/spec.js";

/** What hooks are told about the run; stages fill it in as they learn it. */
export interface HookFacts {
  version?: string;
  previous?: string;
  hosts: string[];
}

export function hookEnv(spec: Spec, driver: string, command: string, facts: HookFacts, extra: Record<string, string> = {}, base: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const secretSources = new Set(Object.values(spec.secrets).filter((r) => r.startsWith("env:")).map((r) => r.slice(4)));
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined && !secretSources.has(k) && !k.startsWith("TOGO_")) env[k] = v;
  return {
    ...env,
    TOGO_APP: spec.app,
    TOGO_VERSION: facts.version ?? "",
    TOGO_PREVIOUS_VERSION: facts.previous ?? "",
    TOGO_DRIVER: driver,
    TOGO_STAGE: spec.stage ?? "",
    TOGO_HOSTS: facts.hosts.join(","),
    TOGO_COMMAND: command,
    TOGO_PERFORMER: performer(),
    ...extra,
  };
}

function performer(): string {
  try {
    return `${userInfo().username}@${hostname()}`;
  } catch {
    return hostname();
  }
}

/** Runs one hook; its lines go to the reporter as `[name] line`. Throws HookError when it fails. */
export async function runUserHook(name: string, cmd: string, cwd: string, env: Record<string, string>, log: Reporter, signal?: AbortSignal): Promise<void> {
  const proc = execa("sh", ["-c", cmd], { cwd, env, extendEnv: false, reject: false, stdin: "ignore", buffer: false, ...(signal ? { cancelSignal: signal } : {}) });
  const tail: string[] = [];
  const show = (stream: NodeJS.ReadableStream | null) => {
    if (!stream) return;
    let rest = "";
    stream.on("data", (d: Buffer) => {
      const lines = (rest + d.toString()).split("\n");
      rest = lines.pop() ?? "";
      for (const l of lines) {
        log.info(`[${name}] ${l}`);
        tail.push(l);
      }
    });
    stream.on("end", () => {
      if (rest) {
        log.info(`[${name}] ${rest}`);
        tail.push(rest);
      }
    });
  };
  show(proc.stdout);
  show(proc.stderr);
  const r = await proc;
  if (r.exitCode !== 0) {
    const why = r.isCanceled ? "was interrupted" : r.exitCode === undefined ? `was killed (${r.signal ?? "signal"})` : `exited ${r.exitCode}`;
    throw new HookError(name, `the ${name} hook ${why}: ${cmd}${name.startsWith("pre_") ? "; nothing was changed on any target" : ""}`);
  }
}
