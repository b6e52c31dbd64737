// The SSH transport: the system OpenSSH client (so ~/.ssh/config, the agent and known_hosts just
// work), one multiplexed connection (ControlMaster) per transport, closed by close(). Every command
// line is built by a pure function below; the class only runs them.
//
// Why the master runs in the foreground as our child (not `-f` with ControlPersist): we learn the
// moment it dies (a killed connection), start a new one for the next command and count it, and it
// never outlives togo. Commands use the master with `ProxyCommand=false`, so if the master is gone
// they fail instead of quietly opening a second, uncounted connection.
import { createHmac } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { execa, type ResultPromise } from "execa";
import { OperationError, UsageError } from "../core/errors.js";
import { q } from "../core/shell.js";
import { checkResult, linkFrom, parseRsyncBytes, parseRsyncFiles, treeSize } from "./local.js";
import { CHANNEL_SCRIPT, CommandChannel } from "./channel.js";
import { hostFactsCommand, parseHostFacts } from "./facts.js";
import { onFreeLocalPort } from "./ports.js";
import { MASTER_WATCHDOG, stopTrackedScript, trackedScript } from "./tracked.js";
import { command, type Command, type CommandResult, type HostFacts, type RunOptions, type Transport, type UploadOptions, type UploadResult } from "./transport.js";

export type HostKeyChecking = "accept-new" | "yes";

export interface SshTarget {
  host: string;
  user: string;
  port: number;
  identityFile?: string;
  knownHosts?: string;
  /** Passed as `ssh -F`. */
  sshConfig?: string;
  /** `accept-new` (default: first contact records the key, a changed key fails) or `yes`. Never `no`. */
  hostKeyChecking?: HostKeyChecking;
  /** How artifacts travel: rsync when both ends have it (auto), or scp (SFTP). */
  upload?: "auto" | "rsync" | "scp";
  /** Upload bandwidth limit in KiB/s (0 = none). */
  bwlimit?: number;
}

const HOST = /^[A-Za-z0-9][A-Za-z0-9.-]*$|^[0-9A-Fa-f:]+$/;
const USER = /^[a-z_][a-z0-9_-]{0,31}$/;

/** Checks what reaches the ssh command line; throws a UsageError naming the key, value and fix. */
export function validateTarget(t: SshTarget): void {
  if (!HOST.test(t.host)) throw new UsageError(`deploy.host: got "${t.host}"; expected a host name or IP address`);
  if (!USER.test(t.user)) throw new UsageError(`deploy.user: got "${t.user}"; expected a Unix user name such as deploy`);
  if (!Number.isInteger(t.port) || t.port < 1 || t.port > 65535) throw new UsageError(`deploy.port: got ${t.port}; expected an SSH port from 1 to 65535`);
  for (const [key, p] of [["identity_file", t.identityFile], ["known_hosts", t.knownHosts], ["ssh_config", t.sshConfig]] as const) {
    // rsync splits its -e command on spaces and honours quotes; a path with a quote cannot be passed safely.
    if (p !== undefined && /["'\n]/.test(p)) throw new UsageError(`deploy.${key}: got ${JSON.stringify(p)}; the path may not contain quotes or newlines`);
  }
  if (t.hostKeyChecking !== undefined && t.hostKeyChecking !== "accept-new" && t.hostKeyChecking !== "yes") {
    throw new UsageError(`deploy.options.host_key_checking: got "${String(t.hostKeyChecking)}"; expected accept-new or yes (host keys are always verified)`);
  }
}

/** `user@host:port`, for messages. */
export function describeTarget(t: SshTarget): string {
  return `${t.user}@${t.host.includes(":") ? `[${t.host}]` : t.host}:${t.port}`;
}

/** The options that open and authenticate a connection (used by the master only). */
export function connectOptions(t: SshTarget): string[] {
  const args: string[] = [];
  if (t.sshConfig) args.push("-F", t.sshConfig);
  args.push("-p", String(t.port), "-l", t.user);
  if (t.identityFile) args.push("-i", t.identityFile);
  args.push(
    "-o", "BatchMode=yes", // never prompt: a missing key fails with a message instead of hanging
    "-o", `StrictHostKeyChecking=${t.hostKeyChecking ?? "accept-new"}`,
  );
  if (t.knownHosts) args.push("-o", `UserKnownHostsFile=${t.knownHosts}`);
  args.push("-o", "ConnectTimeout=15", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4");
  return args;
}

/** The master: authenticates once, then carries every command, upload and port forward. */
export function masterArgs(t: SshTarget, controlPath: string): string[] {
  return [...connectOptions(t), "-M", "-N", "-S", controlPath, "-o", "ControlPersist=no", t.host];
}

/**
 * Options of a command that rides on the master. No user config (`RemoteCommand`, `RequestTTY`…
 * there would change what runs) and `ProxyCommand=false`: without a live master it fails rather
 * than opening a new connection.
 */
export function muxOptions(controlPath: string): string[] {
  return ["-F", "/dev/null", "-S", controlPath, "-o", "ControlMaster=no", "-o", "ProxyCommand=false", "-o", "BatchMode=yes"];
}

/** The remote command: the login shell runs `sh -c '<script>'` (one quoted word). */
export function remoteCommand(script: string): string {
  return `sh -c ${q(script)}`;
}

export function runArgs(t: SshTarget, controlPath: string, script: string, tty = false): string[] {
  return [...muxOptions(controlPath), ...(tty ? ["-t"] : []), t.host, remoteCommand(script)];
}

export function controlArgs(t: SshTarget, controlPath: string, op: "check" | "exit"): string[] {
  return [...muxOptions(controlPath), "-O", op, t.host];
}

export function forwardArgs(t: SshTarget, controlPath: string, localPort: number, remotePort: number): string[] {
  return [...muxOptions(controlPath), "-O", "forward", "-L", `127.0.0.1:${localPort}:127.0.0.1:${remotePort}`, t.host];
}

/** `user@host:path` as rsync and scp want it (IPv6 addresses in brackets). */
export function remoteSpec(t: SshTarget, path: string): string {
  return `${t.user}@${t.host.includes(":") ? `[${t.host}]` : t.host}:${path}`;
}

/** rsync's `-e` value: rsync splits it on spaces and honours double quotes. */
function rshCommand(controlPath: string): string {
  return ["ssh", ...muxOptions(controlPath)].map((a) => (/[\s]/.test(a) ? `"${a}"` : a)).join(" ");
}

/**
 * rsync of a file or a directory's contents to an absolute remote path, printing --stats. A
 * directory ends up exactly the local one (--delete: nothing left from a cut-off attempt), built
 * from `linkDest` where given (see UploadOptions).
 */
export function rsyncArgs(t: SshTarget, controlPath: string, local: string, remotePath: string, isDir: boolean, linkDest: string[] = [], checksum = false): string[] {
  return [
    "-a",
    "--stats",
    ...(checksum ? ["--checksum"] : []),
    ...(isDir ? ["--delete", ...linkFrom(linkDest)] : []),
    ...(t.bwlimit ? [`--bwlimit=${t.bwlimit}`] : []),
    "-e",
    rshCommand(controlPath),
    isDir ? `${local.replace(/\/+$/, "")}/` : local,
    remoteSpec(t, isDir ? `${remotePath}/` : remotePath),
  ];
}

/** scp (SFTP protocol) fallback for hosts without rsync. */
export function scpArgs(t: SshTarget, controlPath: string, local: string, remotePath: string, isDir: boolean): string[] {
  const mux = muxOptions(controlPath);
  // scp takes ssh options as -o only; -S means something else to it.
  const opts = ["-F", "/dev/null", "-o", `ControlPath=${controlPath}`, ...mux.slice(4)];
  return [...opts, "-p", "-q", ...(t.bwlimit ? ["-l", String(t.bwlimit * 8)] : []), ...(isDir ? ["-r"] : []), local, remoteSpec(t, remotePath)];
}

export { parseRsyncBytes, parseRsyncFiles } from "./local.js";

/** A tar archive of a directory's contents (symlinks kept as links, modes and mtimes recorded). */
export function tarCreateArgs(local: string, archive: string): string[] {
  return ["-C", local, "-cf", archive, "."];
}

/** Files up to this size are sent inline over the command channel (base64 on stdin). */
export const INLINE_UPLOAD_MAX = 32 * 1024;

/** Writes stdin (base64) to `dest` with `mode`, beside it first and renamed, so a cut-off write is never `dest`. */
export function inlineUploadScript(dest: string, mode: number): string {
  return `t=${q(dest)}.togo-$$; if base64 -d > "$t" && chmod ${mode.toString(8)} "$t" && mv -f "$t" ${q(dest)}; then exit 0; fi; rm -f "$t"; exit 1`;
}

/** Unpacks an uploaded archive into a fresh directory and drops the archive. */
export function unpackScript(archive: string, dest: string): string {
  return `rm -rf ${q(dest)} && mkdir -p ${q(dest)} && tar -xpf ${q(archive)} -C ${q(dest)} && rm -f ${q(archive)}`;
}

/** What OpenSSH said, turned into what to do about it. */
export function describeSshFailure(stderr: string, target: string): string {
  const lines = stderr.split("\n").map((l) => l.trim()).filter(Boolean);
  const text = lines.join("\n");
  let hint = "";
  // OpenSSH ends both a changed and an unknown key with "Host key verification failed."; the line
  // before it says which ("REMOTE HOST IDENTIFICATION HAS CHANGED" / "No ... host key is known").
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed/.test(text)) {
    hint = "the host key does not match known_hosts. If the host was rebuilt on purpose, remove the old key (ssh-keygen -R HOST, or the line in deploy.known_hosts) and retry; otherwise do not connect";
  } else if (/No .*host key is known|host key for .* is unknown/i.test(text)) {
    hint = "the host key is not in known_hosts and host_key_checking is yes; add it (ssh-keyscan, checked out of band) or use accept-new";
  } else if (/Host key verification failed/.test(text)) {
    hint = "the host key could not be verified against known_hosts: check deploy.known_hosts and options.host_key_checking";
  } else if (/Permission denied/.test(text)) {
    hint = "authentication failed: check deploy.user and deploy.identity_file (or load the key into ssh-agent)";
  } else if (/Connection refused/.test(text)) {
    hint = "nothing listens on that port: check deploy.host and deploy.port, and that sshd runs";
  } else if (/timed out|No route to host|Could not resolve/.test(text)) {
    hint = "the host is not reachable: check deploy.host, deploy.port and the network/firewall";
  }
  const shown = lines.filter((l) => !/^@+$|^@/.test(l)).slice(-6).join("\n");
  return `ssh to ${target} failed${hint ? `: ${hint}` : ""}${shown ? `\n${shown}` : ""}`;
}

// --- known_hosts: the key terraform's own SSH client must see (stacks/vps.ts) ---

function globToRegExp(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`, "i");
}

function hostPatternMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith("|1|")) {
    const [, , salt, hash] = pattern.split("|");
    if (!salt || !hash) return false;
    return createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64") === hash;
  }
  return globToRegExp(pattern).test(name);
}

/**
 * Host keys (`type base64`) recorded for host:port in known_hosts text: plain, wildcard and hashed
 * entries; `!negated` patterns, @revoked and @cert-authority lines are honoured/skipped.
 */
export function knownHostKeys(text: string, host: string, port: number): string[] {
  const name = port === 22 ? host : `[${host}]:${port}`;
  const keys: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith("@")) continue;
    const [patterns, type, key] = line.split(/\s+/);
    if (!patterns || !type || !key) continue;
    let hit = false;
    let negated = false;
    for (const p of patterns.split(",")) {
      if (p.startsWith("!")) negated ||= hostPatternMatches(p.slice(1), name);
      else hit ||= hostPatternMatches(p, name);
    }
    if (hit && !negated) keys.push(`${type} ${key}`);
  }
  return [...new Set(keys)];
}

/** The known_hosts file ssh uses for this target (deploy.known_hosts, else ~/.ssh/known_hosts). */
export function knownHostsFile(t: Pick<SshTarget, "knownHosts">): string {
  return t.knownHosts ?? join(homedir(), ".ssh", "known_hosts");
}

/** A `~/` path made absolute with the remote home (rsync and scp want absolute paths). */
export function remoteAbsolute(path: string, home: string): string {
  if (path === "~") return home;
  return path.startsWith("~/") ? `${home.replace(/\/+$/, "")}/${path.slice(2)}` : path;
}


interface Master {
  proc: ResultPromise;
  exited: boolean;
  stderr: string;
}

export class SshTransport implements Transport {
  readonly target: string;
  readonly stats = { commands: 0, bytesUploaded: 0, connections: 0, sessions: 0 };
  private master?: Master;
  private starting?: Promise<void>;
  private controlDir?: string;
  private forwards = new Map<number, string>();
  private probed?: HostFacts;
  private runs = 0;
  private channel?: CommandChannel;
  private channelOpening?: Promise<void>;
  /** The host cannot run a command channel (no base64 or setsid): every command takes a session. */
  private noChannel = false;
  readonly stopped: string[] = [];

  constructor(readonly conn: SshTarget) {
    validateTarget(conn);
    this.target = describeTarget(conn);
  }

  private get controlPath(): string {
    // Short on purpose: a Unix socket path is limited to ~104 bytes.
    this.controlDir ??= mkdtempSync(join(tmpdir(), "togo-ssh-"));
    return join(this.controlDir, "c");
  }

  /** Opens the connection if none is live (the first command does it; a dead one is replaced). */
  async connect(): Promise<void> {
    if (this.master && !this.master.exited) return;
    this.starting ??= this.startMaster().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async startMaster(): Promise<void> {
    // A fresh directory for each master: the watchdog of one that died has removed its own.
    this.controlDir = mkdtempSync(join(tmpdir(), "togo-ssh-"));
    const cp = this.controlPath;
    this.forwards.clear();
    // Its own process group: a Ctrl-C on the terminal must not cut the connection the cleanup
    // (stop the candidate, release the lock) still needs; the exit hook ends it with togo.
    const proc = execa("sh", ["-c", MASTER_WATCHDOG, "togo-ssh-master", this.controlDir!, ...masterArgs(this.conn, cp)], {
      reject: false,
      stdin: "pipe",
      stdout: "ignore",
      stderr: "pipe",
      buffer: false,
      detached: true,
    });
    const master: Master = { proc, exited: false, stderr: "" };
    const dir = this.controlDir;
    const endWithTogo = () => {
      proc.kill("SIGTERM");
      if (dir) rmSync(dir, { recursive: true, force: true });
    };
    process.once("exit", endWithTogo);
    proc.stderr?.on("data", (d: Buffer) => (master.stderr = (master.stderr + d.toString()).slice(-4000)));
    void proc.then(() => {
      master.exited = true;
      process.off("exit", endWithTogo);
    });
    this.master = master;
    this.stats.connections++;
    // The socket appears once the master has authenticated.
    while (!master.exited && !existsSync(cp)) await new Promise((r) => setTimeout(r, 10));
    if (master.exited || !isSocket(cp)) {
      await proc;
      throw new OperationError(describeSshFailure(master.stderr, this.target));
    }
  }

  /**
   * ssh's own exit code 255 may mean the connection just died while its master has not exited yet:
   * give the master a moment to go, so this command reports the loss and the next one reconnects
   * instead of riding a dead socket.
   */
  private async settle(): Promise<void> {
    const m = this.master;
    if (!m || m.exited) return;
    await Promise.race([m.proc.then(() => undefined, () => undefined), new Promise((r) => setTimeout(r, 1000))]);
  }

  /** What the host has (home, systemd, caddy, rsync); probed once per transport. */
  async facts(): Promise<HostFacts> {
    this.probed ??= parseHostFacts((await this.run(hostFactsCommand())).stdout);
    return this.probed;
  }

  async run(cmd: Command, opts: RunOptions = {}): Promise<CommandResult> {
    await this.connect();
    this.stats.commands++;
    if (opts.signal?.aborted) return checkResult({ code: 130, stdout: "", stderr: "interrupted before it started" }, this.target, cmd, opts);
    const opened = opts.inherit || opts.onStdout ? undefined : await this.commandChannel();
    // A command that may be interrupted records its process group on the host: killing the local
    // ssh client would not stop it (the master holds its pipes and the remote side runs on).
    const id = opts.signal ? `${process.pid}-${++this.runs}` : undefined;
    // Taken only if idle now (a command run alongside another gets a session of its own) and if the request fits.
    const channel = opened && !opened.busy && !opened.closed && opened.carries(cmd.script, cmd.input ?? "") ? opened : undefined;
    // In the channel its loop records and watches the command; over a session of its own a wrapper does.
    const remote = id && !channel ? trackedScript(cmd.script, { id, watch: "session" }) : cmd.script;
    let stopping: Promise<void> | undefined;
    let result: CommandResult;
    if (channel) {
      const stop = () => void (stopping = this.stopRemote(id!, cmd.what ?? cmd.op, () => void channel.close(true)));
      if (id) opts.signal!.addEventListener("abort", stop, { once: true });
      result = await channel.run(remote, cmd.input ?? "", id).finally(() => opts.signal?.removeEventListener("abort", stop));
    } else {
      this.stats.sessions++;
      const proc = execa("ssh", runArgs(this.conn, this.controlPath, remote), {
        input: cmd.input ?? "",
        reject: false,
        stripFinalNewline: false,
        ...(opts.inherit ? { stdout: "inherit", stderr: "inherit" } : {}),
      });
      if (opts.onStdout) proc.stdout?.on("data", (d: Buffer) => opts.onStdout!(d.toString()));
      const abandon = () => {
        proc.kill("SIGKILL");
        proc.stdout?.destroy();
        proc.stderr?.destroy();
      };
      const stop = () => void (stopping = this.stopRemote(id!, cmd.what ?? cmd.op, abandon));
      if (id) opts.signal!.addEventListener("abort", stop, { once: true });
      const r = await proc.finally(() => opts.signal?.removeEventListener("abort", stop));
      result = { code: r.exitCode ?? 255, stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? "") };
    }
    // The command ends as soon as its group is killed; what was stopped is known only once the stop returns.
    await stopping;
    if (result.code === 255 && !opts.signal?.aborted) await this.settle();
    if (result.code === 255 && this.master?.exited) {
      throw new OperationError(`${cmd.what ?? cmd.op}: the SSH connection to ${this.target} was lost\n${describeSshFailure(this.master.stderr, this.target)}`);
    }
    return checkResult(result, this.target, cmd, opts);
  }

  /**
   * The connection's command channel (opened by the first command that can use it), or undefined
   * where the host cannot run one.
   */
  private async commandChannel(): Promise<CommandChannel | undefined> {
    if (this.noChannel) return undefined;
    if (this.channel && !this.channel.closed) return this.channel;
    this.channelOpening ??= CommandChannel.open(() => {
      this.stats.sessions++;
      return execa("ssh", runArgs(this.conn, this.controlPath, CHANNEL_SCRIPT), { stdin: "pipe", stdout: "pipe", stderr: "pipe", buffer: false, reject: false });
    })
      .then((ch) => {
        this.channel = ch === "unavailable" ? undefined : ch;
        this.noChannel = ch === "unavailable";
      })
      .finally(() => (this.channelOpening = undefined));
    await this.channelOpening;
    return this.channel;
  }

  /**
   * Stops an interrupted command on the host (its whole process group) over a session of its own,
   * so the command ends with it; if the host does not answer, the command is abandoned here.
   */
  private async stopRemote(id: string, what: string, abandon: () => void): Promise<void> {
    const giveUp = setTimeout(abandon, 10_000);
    giveUp.unref();
    const r = await execa("ssh", runArgs(this.conn, this.controlPath, stopTrackedScript(id)), { reject: false, timeout: 9000 });
    if (String(r.stdout).includes("stopped")) this.stopped.push(what);
  }

  /** Runs an interactive command (a TTY when this process has one), streaming its output. */
  async interactive(cmd: Command): Promise<number> {
    await this.connect();
    this.stats.commands++;
    const tty = Boolean(process.stdin.isTTY);
    const r = await execa("ssh", runArgs(this.conn, this.controlPath, cmd.script, tty), { stdio: "inherit", reject: false });
    return r.exitCode ?? 255;
  }

  async upload(localPath: string, remotePath: string, opts: UploadOptions = {}): Promise<UploadResult> {
    const facts = await this.facts();
    const dest = remoteAbsolute(remotePath, facts.home);
    const st = statSync(localPath);
    const isDir = st.isDirectory();
    // A small file rides the command channel: one round trip, no rsync or scp at either end.
    // Not when the user picked a method or a bandwidth limit: those are honoured.
    if (!isDir && st.size <= INLINE_UPLOAD_MAX && (this.conn.upload ?? "auto") === "auto" && !this.conn.bwlimit) {
      const channel = await this.commandChannel();
      if (channel && !channel.busy) {
        const data = readFileSync(localPath);
        await this.run(command("upload.inline", inlineUploadScript(dest, st.mode & 0o7777), { what: "uploading the artifact", input: data.toString("base64") }), { signal: opts.signal });
        this.stats.bytesUploaded += data.length;
        return { bytes: data.length, files: 1 };
      }
    }
    const method = await this.uploadMethod(facts);
    if (method === "scp" && isDir) return this.uploadArchive(localPath, dest, opts.signal);
    const args = method === "rsync" ? rsyncArgs(this.conn, this.controlPath, localPath, dest, isDir, opts.linkDest, opts.checksum) : scpArgs(this.conn, this.controlPath, localPath, dest, isDir);
    const out = await this.transfer(method, args, localPath, opts.signal);
    const [bytes, files] = method === "rsync" ? [parseRsyncBytes(out), parseRsyncFiles(out)] : [undefined, undefined];
    const linked = method === "rsync" && isDir && (opts.linkDest?.length ?? 0) > 0;
    const sent = bytes !== undefined && files !== undefined ? { bytes, files, linked } : await treeSize(localPath);
    this.stats.bytesUploaded += sent.bytes;
    return sent;
  }

  /**
   * A directory over scp travels as one tar archive, unpacked on the host: `scp -r` follows
   * symlinks (and fails on a dangling one), so the tree would not be the artifact, and one file
   * spares SFTP a round trip per file.
   */
  private async uploadArchive(localPath: string, dest: string, signal?: AbortSignal): Promise<UploadResult> {
    const dir = mkdtempSync(join(tmpdir(), "togo-upload-"));
    try {
      const archive = join(dir, "artifact.tar");
      const tar = await execa("tar", tarCreateArgs(localPath, archive), { reject: false, all: true, ...(signal ? { cancelSignal: signal } : {}) });
      if (tar.exitCode !== 0) throw new OperationError(`packing ${localPath} for scp failed (exit ${tar.exitCode}):\n${String(tar.all ?? "").trim().split("\n").slice(-6).join("\n")}`);
      const remoteArchive = `${dest}.tar`;
      await this.run(command("upload.clear", `rm -rf ${q(dest)} ${q(remoteArchive)}`, { what: "clearing a cut-off upload" }), { signal });
      await this.transfer("scp", scpArgs(this.conn, this.controlPath, archive, remoteArchive, false), localPath, signal);
      await this.run(command("upload.unpack", unpackScript(remoteArchive, dest), { what: "unpacking the upload" }), { signal });
      const sent = { bytes: statSync(archive).size, files: (await treeSize(localPath)).files };
      this.stats.bytesUploaded += sent.bytes;
      return sent;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Runs rsync or scp in its own process group (an interrupt stops it and the ssh client it started); returns its output. */
  private async transfer(method: "rsync" | "scp", args: string[], localPath: string, signal?: AbortSignal): Promise<string> {
    this.stats.commands++;
    this.stats.sessions++;
    const proc = execa(method, args, { reject: false, all: true, detached: true });
    const stop = () => {
      try {
        process.kill(-proc.pid!, "SIGTERM");
      } catch {
        // already gone
      }
      setTimeout(() => (proc.all?.destroy(), proc.stdout?.destroy(), proc.stderr?.destroy()), 2000).unref();
    };
    signal?.addEventListener("abort", stop, { once: true });
    const r = await proc.finally(() => signal?.removeEventListener("abort", stop));
    if (r.exitCode !== 0) {
      await this.settle();
      const lost = this.master?.exited ? ` (the SSH connection was lost)` : "";
      const tail = String(r.all ?? "").trim().split("\n").slice(-6).join("\n");
      throw new OperationError(`uploading ${localPath} to ${this.target} with ${method} failed (exit ${r.exitCode})${lost}${tail ? `:\n${tail}` : ""}`);
    }
    return String(r.all ?? "");
  }

  private async uploadMethod(facts: HostFacts): Promise<"rsync" | "scp"> {
    const wanted = this.conn.upload ?? "auto";
    if (wanted === "scp") return "scp";
    const local = await localRsync();
    if (local && facts.rsync) return "rsync";
    if (wanted === "rsync") {
      throw new OperationError(`options.upload is rsync but rsync is missing ${local ? `on ${this.target}` : "on this machine"}; install it or use upload: auto`);
    }
    return "scp";
  }

  /** A local port forwarded through the connection to the host's loopback `port`. */
  async reach(port: number): Promise<string> {
    await this.connect();
    const known = this.forwards.get(port);
    if (known) return known;
    // The kernel's free port is free only until something binds it: between our close and the
    // master's bind an outgoing connection can take it as its source port (a fleet's probes open
    // many). The master then refuses the forward; another port is asked for.
    const r = await onFreeLocalPort(async (local) => {
      const f = await execa("ssh", forwardArgs(this.conn, this.controlPath, local, port), { reject: false });
      return { ok: f.exitCode === 0, stderr: String(f.stderr) };
    });
    if (!r.ok) {
      throw new OperationError(`could not forward a local port to port ${port} on ${this.target} (is AllowTcpForwarding off in sshd_config?): ${r.stderr.trim()}`);
    }
    const url = `http://127.0.0.1:${r.port}`;
    this.forwards.set(port, url);
    return url;
  }

  /**
   * Forwards `localPort` on this machine's loopback to `remotePort` on the host's, through the
   * connection (gone with it). For a port the user chose (`togo dev`'s dev.port); reach() picks one.
   */
  async forward(localPort: number, remotePort: number): Promise<string> {
    await this.connect();
    const r = await execa("ssh", forwardArgs(this.conn, this.controlPath, localPort, remotePort), { reject: false });
    if (r.exitCode !== 0) {
      throw new OperationError(`could not forward 127.0.0.1:${localPort} to port ${remotePort} on ${this.target} (is the local port taken, or AllowTcpForwarding off in sshd_config?): ${String(r.stderr).trim()}`);
    }
    const url = `http://127.0.0.1:${localPort}`;
    this.forwards.set(remotePort, url);
    return url;
  }

  async close(): Promise<void> {
    const channel = this.channel;
    this.channel = undefined;
    // A command still in flight at close belongs to nobody any more: it is not waited for.
    if (channel && !channel.closed) await channel.close(channel.busy);
    const master = this.master;
    this.master = undefined;
    if (master && !master.exited) {
      await execa("ssh", controlArgs(this.conn, this.controlPath, "exit"), { reject: false });
      master.proc.stdin?.end(); // the watchdog's cue: the master goes even if `-O exit` did not reach it
      const timer = setTimeout(() => master.proc.kill("SIGTERM"), 3000);
      await master.proc;
      clearTimeout(timer);
    }
    if (this.controlDir) rmSync(this.controlDir, { recursive: true, force: true });
    this.controlDir = undefined;
  }
}

/** Whether this machine has rsync: asked once a process, not once a host of a fleet. */
let hasLocalRsync: Promise<boolean> | undefined;
function localRsync(): Promise<boolean> {
  hasLocalRsync ??= execa("rsync", ["--version"], { reject: false }).then((r) => r.exitCode === 0);
  return hasLocalRsync;
}

function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}
