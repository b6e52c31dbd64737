// A command channel: one long-lived shell on the host, started once over the SSH connection, runs
// the commands of a deploy one after another. A command then costs a line written and a line read,
// not a local `ssh` client (a fork of togo's whole process) and a new sshd session; on a fleet,
// that fork per command per host was most of togo's CPU.
//
// A request is a header line the shell's `read` takes, then the script's and the input's bytes,
// counted, which `head -c` copies in blocks (sh reads a line one byte per system call: a deploy's
// scripts read that way cost the host more CPU than everything they run), then an end line that
// proves the request arrived whole. Replies come back as base64, so any bytes (scripts, secrets on
// stdin, binary output) cross a protocol POSIX sh and coreutils can speak.
// Each command runs in a session of its own (setsid), so an interrupt can stop its whole process
// group, as over a plain session. The loop itself does what a tracked command's wrapper does over a
// plain session (see tracked.ts), once for the channel instead of once a command: it records the
// command's group under its run id, and one watcher stops the command in flight when the
// connection's sshd process is gone (togo killed, the network lost).
import { randomBytes } from "node:crypto";
import type { ResultPromise } from "execa";
import { RUNS_DIR } from "./tracked.js";
import type { CommandResult } from "./transport.js";

const READY = "togo-channel 3";
const UNAVAILABLE = "togo-channel-unavailable";

/**
 * The loop on the host. A request is a line `<end marker> <run id or -> <script bytes> <input
 * bytes>`, the script, the input, and a line with the marker. Files are named for the request: a
 * process a command left in the background keeps writing to its own output, never to a later
 * command's. Empty outputs are not encoded; `base64 -w0` where coreutils has it. A `head` that reads
 * past its count (stdio's buffering, as busybox's does) would eat the next request: such a host
 * gets no channel.
 */
export const CHANNEL_SCRIPT = [
  `for c in base64 setsid mktemp head; do command -v $c >/dev/null 2>&1 || { echo ${UNAVAILABLE}; exit 0; }; done`,
  `[ "$(printf 'ab\\ncd\\n' | { head -c 1 >/dev/null; IFS= read -r x; printf '%s' "$x"; })" = b ] || { echo ${UNAVAILABLE}; exit 0; }`,
  // A loop killed outright (SIGKILL: its connection's processes killed, the OOM killer) could not
  // remove its folder and record: the next loop of this user removes those whose loop is gone.
  // Gone: no such process, or a zombie its new parent has not reaped yet.
  `gone() { ! kill -0 "$1" || { read -r s < "/proc/$1/stat" && set -- \${s##*")"} && [ "$1" = Z ]; }; }`,
  `for d in "\${TMPDIR:-/tmp}"/togo-ch.*; do [ -O "$d" ] && read -r o < "$d/pid" && gone "$o" && rm -rf "$d" ${RUNS_DIR}/ch-"\${d##*.}"; done 2>/dev/null`,
  `t=$(mktemp -d "\${TMPDIR:-/tmp}/togo-ch.XXXXXX") && echo $$ > "$t/pid" || { echo ${UNAVAILABLE}; exit 0; }`,
  // The command in flight, as "<run id> <group>", where stopTrackedScript finds it.
  `r=${RUNS_DIR}/ch-\${t##*.}; { mkdir -p ${RUNS_DIR} && : > "$r"; } 2>/dev/null || { rm -rf "$t"; echo ${UNAVAILABLE}; exit 0; }`,
  // The parent of this session's leader (the shell sshd started) is the connection's sshd process.
  `p=$PPID; if read -r l < /proc/$$/stat; then set -- \${l##*")"}; if read -r l < /proc/$4/stat; then set -- \${l##*")"}; p=$2; fi; fi 2>/dev/null`,
  // The watcher's sleep is waited for, so stopping the watcher stops its sleep too (no straggler).
  `(trap 'kill $z 2>/dev/null; exit 0' TERM; while [ -d /proc/$p ]; do sleep 1 & z=$!; wait $z; done; read -r x g < "$r" && [ -n "$g" ] && kill -TERM "-$g") </dev/null >/dev/null 2>&1 & w=$!`,
  `trap 'kill $w 2>/dev/null; rm -rf "$t" "$r"' EXIT`,
  // Ended by a signal, the shell would skip its EXIT trap and leave its folder behind: a lost
  // connection shows as SIGPIPE at the next reply, or as HUP or TERM.
  `trap 'exit 129' HUP; trap 'exit 141' PIPE; trap 'exit 143' TERM`,
  `if [ "$(printf x | base64 -w0 2>/dev/null)" = eA== ]; then enc() { base64 -w0 < "$1"; }; else enc() { base64 < "$1" | tr -d '\\n'; }; fi`,
  `echo '${READY}'`,
  `n=0`,
  `while IFS=' ' read -r e id ns ni; do`,
  `  n=$((n+1)); f=/dev/null`,
  // A header that is not one ends the channel (the client then sees it end): never guess at bytes.
  `  case "$ns:$ni" in *[!0-9:]*|:*|*:) exit 1;; esac`,
  `  head -c "$ns" > "$t/$n.s"`,
  `  if [ "$ni" -gt 0 ]; then f="$t/$n.i"; head -c "$ni" > "$f"; fi`,
  // Only a request that arrived whole runs: a cut-off script must not.
  `  IFS= read -r l && [ "$l" = "$e" ] || exit 1`,
  `  setsid sh "$t/$n.s" < "$f" > "$t/$n.o" 2> "$t/$n.e" & c=$!`,
  `  printf '%s %s\\n' "$id" "$c" > "$r"; wait $c; rc=$?; : > "$r"`,
  `  printf 'R %s ' "$rc"; [ -s "$t/$n.o" ] && enc "$t/$n.o"; printf ' '; [ -s "$t/$n.e" ] && enc "$t/$n.e"; echo`,
  `  [ $((n % 64)) != 0 ] || rm -f "$t"/[0-9]*`,
  `done`,
].join("\n");

/** Over this many bytes of script and input a command takes its own session. */
export const CHANNEL_MAX_REQUEST = 64 * 1024;

/** A request for the channel: the header, the script's and the input's bytes, the end line. */
export function encodeRequest(script: string, input: string, marker: string, runId = "-"): Buffer {
  if (!/^[A-Za-z0-9-]+$/.test(runId)) throw new Error(`a run id is letters, digits and dashes: ${runId}`);
  const body = Buffer.from(script);
  const stdin = Buffer.from(input);
  return Buffer.concat([Buffer.from(`${marker} ${runId} ${body.length} ${stdin.length}\n`), body, stdin, Buffer.from(`${marker}\n`)]);
}

/** A reply line (`R <code> <stdout> <stderr>`, base64), or undefined for anything else. */
export function parseReply(line: string): CommandResult | undefined {
  const m = /^R (\d+) ([A-Za-z0-9+/=]*) ([A-Za-z0-9+/=]*)$/.exec(line);
  if (!m) return undefined;
  return { code: Number(m[1]), stdout: Buffer.from(m[2], "base64").toString(), stderr: Buffer.from(m[3], "base64").toString() };
}

interface Pending {
  resolve: (r: CommandResult) => void;
}

export class CommandChannel {
  private buffered = "";
  private pending?: Pending;
  private ended = false;
  private stderr = "";
  /** Ends each request's script: random, so no script line is taken for it. */
  private readonly marker = `togo-end-${randomBytes(12).toString("hex")}`;

  private constructor(private readonly proc: ResultPromise) {
    proc.stdout!.setEncoding("utf8");
    proc.stdout!.on("data", (d: string) => this.onData(d));
    proc.stderr?.on("data", (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-2000)));
    void proc.then(
      () => this.end(),
      () => this.end(),
    );
  }

  /**
   * Starts the loop with `spawn` (an ssh client running CHANNEL_SCRIPT over the connection) and
   * waits for it to say it is ready: "unavailable" when the host cannot run it (no base64 or
   * setsid), undefined when it did not start (a connection problem: the next command tries again).
   */
  static async open(spawn: () => ResultPromise): Promise<CommandChannel | "unavailable" | undefined> {
    const proc = spawn();
    const first = await new Promise<string>((resolve) => {
      let text = "";
      const onData = (d: Buffer) => {
        text += d.toString();
        const nl = text.indexOf("\n");
        if (nl >= 0) {
          proc.stdout!.off("data", onData);
          // What came after the first line belongs to no request yet: nothing is sent before READY.
          resolve(text.slice(0, nl));
        }
      };
      proc.stdout!.on("data", onData);
      void proc.then(
        () => resolve(text),
        () => resolve(text),
      );
    });
    if (first.trim() !== READY) {
      proc.stdin?.end();
      await proc;
      return first.trim() === UNAVAILABLE ? "unavailable" : undefined;
    }
    return new CommandChannel(proc);
  }

  get busy(): boolean {
    return this.pending !== undefined;
  }

  get closed(): boolean {
    return this.ended;
  }

  /** Whether `script` and `input` can travel in this channel (CHANNEL_MAX_REQUEST; a NUL byte ends a shell script early). */
  carries(script: string, input: string): boolean {
    return Buffer.byteLength(script) + Buffer.byteLength(input) <= CHANNEL_MAX_REQUEST && !script.includes("\0");
  }

  /**
   * Runs `script` with `input` on stdin, its group recorded under `runId` for stopTrackedScript; a
   * channel that ends first gives exit code 255 (as ssh does).
   */
  run(script: string, input: string, runId?: string): Promise<CommandResult> {
    if (this.ended) return Promise.resolve(this.lost());
    if (this.pending) throw new Error("the command channel is busy");
    if (!this.carries(script, input)) throw new Error("the command cannot travel in the command channel");
    const request = encodeRequest(script, input, this.marker, runId);
    return new Promise((resolve) => {
      this.pending = { resolve };
      this.proc.stdin!.write(request);
    });
  }

  /** Lets the loop finish (stdin closed) and waits for it; `kill` ends it at once. */
  async close(kill = false): Promise<void> {
    if (kill) this.proc.kill("SIGKILL");
    this.proc.stdin?.end();
    await this.proc;
  }

  private onData(d: string): void {
    this.buffered += d;
    for (let nl = this.buffered.indexOf("\n"); nl >= 0; nl = this.buffered.indexOf("\n")) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      const reply = parseReply(line);
      const p = this.pending;
      if (!reply || !p) continue;
      this.pending = undefined;
      p.resolve(reply);
    }
  }

  private end(): void {
    this.ended = true;
    const p = this.pending;
    this.pending = undefined;
    p?.resolve(this.lost());
  }

  private lost(): CommandResult {
    return { code: 255, stdout: "", stderr: `the command channel ended${this.stderr.trim() ? `: ${this.stderr.trim()}` : ""}` };
  }
}
