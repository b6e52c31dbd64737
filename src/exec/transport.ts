// A transport runs remote work on a target: this machine, or a host over SSH. Remote work is data
// (a Command: a named POSIX sh script, built by a small pure function) and a transport is the one
// executor, so a recording fake can stand in for the real thing in unit tests.

/** One piece of remote work. */
export interface Command {
  /** What it is, stable across versions (`lock.acquire`, `release.install`, …): for tests and traces. */
  op: string;
  script: string;
  /** Bytes for the script's stdin (how secrets travel: never on a command line). */
  input?: string;
  /** What it does, for error messages. */
  what?: string;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Throw an OperationError when the script exits non-zero (default true). */
  check?: boolean;
  /** Stream output to this process's stdout/stderr instead of capturing it. */
  inherit?: boolean;
  /** Stops the command when aborted (an interrupted deploy). */
  signal?: AbortSignal;
  /** Receives stdout as it arrives (a log followed for `togo dev`); it is still captured. */
  onStdout?: (text: string) => void;
}

export interface Transport {
  /** `local` or `user@host:port`, for messages. */
  readonly target: string;
  run(command: Command, opts?: RunOptions): Promise<CommandResult>;
  /**
   * Copies a local file or directory to `remotePath` (a plain path; `~/` allowed), replacing what
   * is there. Returns what crossed the wire.
   */
  upload(localPath: string, remotePath: string, opts?: UploadOptions): Promise<UploadResult>;
  /** A base URL from this machine that reaches `port` on the target's loopback. */
  reach(port: number): Promise<string>;
  /** Runs a command attached to this terminal (togo exec); returns its exit code. */
  interactive(command: Command): Promise<number>;
  /** What the host has (home, systemd, Caddy, rsync); probed once. */
  facts(): Promise<HostFacts>;
  /** Counts for tests and benchmarks. */
  readonly stats: {
    commands: number;
    bytesUploaded: number;
    connections: number;
    /** Commands that started a process of their own (an ssh client and an sshd session), not run over a command channel. */
    sessions: number;
  };
  /** What an interrupt stopped on the target (the `what` of each command), for the user. */
  readonly stopped: string[];
  close(): Promise<void>;
}

export interface UploadOptions {
  signal?: AbortSignal;
  /**
   * Directories on the target holding an earlier version of a directory upload, relative to
   * `remotePath` (`../<sha256>`): files unchanged there are hard-linked instead of sent, changed
   * ones are sent as deltas against them (rsync --link-dest). Ignored where rsync is missing.
   */
  linkDest?: string[];
  /**
   * Compare files by content, not size and mtime (rsync --checksum): an edit that keeps a file's
   * size within the same second as the last upload must still be sent (`togo dev`'s sync).
   */
  checksum?: boolean;
}

export interface UploadResult {
  /** Bytes sent (rsync's own count, file list included; else the artifact's size). */
  bytes: number;
  /** Regular files sent (not hard-linked from linkDest). */
  files: number;
  /** linkDest was used (rsync on both ends). */
  linked?: boolean;
}

export interface HostFacts {
  home: string;
  /** PID 1 is systemd. */
  systemd: boolean;
  /**
   * `systemctl --user` answers AND lingering is on. A manager that only runs for the SSH session
   * stops ~10 s after the last logout (logind's UserStopDelaySec), taking a user unit with it.
   */
  userSystemd: boolean;
  caddy: boolean;
  rsync: boolean;
}

/** A Command from its parts. */
export function command(op: string, script: string, extra: { input?: string; what?: string } = {}): Command {
  return { op, script, ...extra };
}
