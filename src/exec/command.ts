// A local command as data ({file, args, env}) and the one executor that runs it: the docker driver's
// skopeo and docker CLI calls and `togo dev --type docker`'s share it. Values that must stay secret
// travel in `env`, never in `args` (errors print the command line).
import { execa } from "execa";
import { OperationError } from "../core/errors.js";

export interface Command {
  file: string;
  args: string[];
  /** Extra environment (e.g. DOCKER_HOST), over this process's. */
  env?: Record<string, string>;
}

export interface CommandOutput {
  code: number;
  stdout: Buffer;
  stderr: string;
}

export interface RunCommandOptions {
  /** What the command does, for error messages. */
  what: string;
  /** Throw an OperationError on a non-zero exit (default true). */
  check?: boolean;
  /** Stream output to this process's stderr (builds). */
  inherit?: boolean;
  /** Stops the command (an interrupted deploy does not wait for a push to finish). */
  signal?: AbortSignal;
  /** Bytes for the command's stdin (e.g. a tar stream for `docker cp -`). */
  input?: Buffer;
}

const INSTALL_HINT: Record<string, string> = {
  skopeo: "install skopeo (apt install skopeo, brew install skopeo): togo pushes images with it",
  docker: "install the docker CLI (apt install docker.io, or Docker Desktop)",
};

export async function runCommand(cmd: Command, opts: RunCommandOptions): Promise<CommandOutput> {
  const r = await execa(cmd.file, cmd.args, {
    env: cmd.env,
    reject: false,
    encoding: "buffer",
    ...(opts.input ? { input: opts.input } : { stdin: "ignore" as const }),
    ...(opts.signal ? { cancelSignal: opts.signal } : {}),
    ...(opts.inherit ? { stdout: ["pipe"], stderr: "inherit" } : {}),
  });
  if ((r as { code?: string }).code === "ENOENT") {
    throw new OperationError(`${opts.what}: ${cmd.file} is not installed or not on PATH; ${INSTALL_HINT[cmd.file] ?? `install ${cmd.file}`}`);
  }
  const out: CommandOutput = {
    code: r.exitCode ?? 1,
    stdout: Buffer.from(r.stdout ?? new Uint8Array()),
    stderr: Buffer.from((r.stderr as Uint8Array | undefined) ?? new Uint8Array()).toString("utf8"),
  };
  if (out.code !== 0 && opts.check !== false) {
    const detail = (out.stderr || out.stdout.toString("utf8")).trim().split("\n").slice(-12).join("\n");
    throw new OperationError(`${opts.what} failed (exit ${out.code}): ${[cmd.file, ...cmd.args].join(" ")}${detail ? `\n${detail}` : ""}`);
  }
  return out;
}
