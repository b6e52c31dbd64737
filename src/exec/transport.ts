// A transport runs the release engine's scripts on a target: this machine, or a host over SSH.

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Bytes for the script's stdin (how secrets travel: never on a command line). */
  input?: string;
  /** Throw an OperationError when the script exits non-zero (default true). */
  check?: boolean;
  /** What the script does, for error messages. */
  what?: string;
  /** Stream output to this process's stdout/stderr instead of capturing it. */
  inherit?: boolean;
}

export interface Transport {
  /** `local` or `user@host:port`, for messages. */
  readonly target: string;
  /** Runs a POSIX sh script on the target. */
  run(script: string, opts?: RunOptions): Promise<CommandResult>;
  /** Copies a local file or directory to `remotePath` (a plain path; `~/` allowed). Returns bytes sent. */
  upload(localPath: string, remotePath: string): Promise<number>;
  /** A base URL from this machine that reaches `port` on the target's loopback. */
  reach(port: number): Promise<string>;
  /** Counts for tests and benchmarks. */
  readonly stats: { commands: number; bytesUploaded: number; connections: number };
  close(): Promise<void>;
}
