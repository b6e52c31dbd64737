// The versioned-release strategy's remote work, built as data: each function returns a POSIX sh
// script and does nothing else; `releaseDir(appDir)` names them as Commands that a transport (local
// shell, OpenSSH) runs. Tests assert the scripts without a host, run them under a real sh, and stand
// in for the host with a recording fake transport keyed on the op names.
//
// Layout under app_dir (README "Release layout"):
//   .env  .versions  current -> v<V>  v<V>/  plus togo's own: .env.next (the env of a release
//   being verified), .failed (failed versions, newest first), .lock/, .uploads/<sha256> (the
//   content-addressed artifact cache), logs/<V>.log, run/<name>.pid
import { q, qpath, script } from "../core/shell.js";
import { command, type Command } from "../exec/transport.js";
import { localFrontScript } from "./caddy.js";

export const VERSION = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
/** Exit code of a script that found the lock held. */
export const LOCK_HELD = 75;

export interface Paths {
  dir: string;
  env: string;
  envNext: string;
  versions: string;
  failed: string;
  current: string;
  lock: string;
  uploads: string;
  logs: string;
  run: string;
  release(version: string): string;
  /** Where a release is put together before it is renamed into place. */
  staging(version: string): string;
  log(version: string): string;
  pid(name: string): string;
  upload(sha256: string): string;
}

/** Paths as quoted shell words (a leading `~/` is left for the target's shell to resolve). */
export function paths(appDir: string): Paths {
  const at = (rel: string) => qpath(`${appDir.replace(/\/+$/, "")}/${rel}`);
  return {
    dir: qpath(appDir),
    env: at(".env"),
    envNext: at(".env.next"),
    versions: at(".versions"),
    failed: at(".failed"),
    current: at("current"),
    lock: at(".lock"),
    uploads: at(".uploads"),
    logs: at("logs"),
    run: at("run"),
    release: (v) => at(releaseFolder(v)),
    staging: (v) => at(`.${releaseFolder(v)}.tmp`),
    log: (v) => at(`logs/${v}.log`),
    pid: (name) => at(`run/${name}.pid`),
    upload: (sha) => at(`.uploads/${sha}`),
  };
}

export function releaseFolder(version: string): string {
  if (!VERSION.test(version)) throw new Error(`invalid version "${version}"`);
  return `v${version}`;
}

/**
 * `togo_version V`: true when V is a version (what VERSION says). Everything read back from a target
 * (.versions, .failed, `current`, pid files) is checked before it is used in a path or a kill: a
 * tampered line must never reach `rm -rf` or `kill`.
 */
const VALID = [
  "togo_version() {",
  `  case $1 in ''|[!A-Za-z0-9]*|*[!A-Za-z0-9._+-]*) return 1;; esac`,
  "  [ ${#1} -le 64 ]",
  "}",
  "togo_current() {",
  `  c=$(readlink current 2>/dev/null) || return 1`,
  `  case $c in v*) c=\${c#v};; *) return 1;; esac`,
  `  togo_version "$c" && printf '%s\\n' "$c"`,
  "}",
].join("\n");

/** Directories togo writes into: a symlink in their place (pointing anywhere) is replaced, never followed. */
const OWN_DIRS = ["logs", "run", ".uploads"];

export function layoutScript(appDir: string): string {
  const p = paths(appDir);
  return script(
    `mkdir -p ${p.dir} && chmod 700 ${p.dir} && cd ${p.dir} || exit 1`,
    `for d in ${OWN_DIRS.join(" ")}; do if [ -L "$d" ]; then rm -f "$d"; fi; done`,
    `mkdir -p ${OWN_DIRS.join(" ")}`,
  );
}

/** Atomically takes the lock (mkdir); prints the holder's info and exits 75 when it is held. */
export function lockAcquireScript(appDir: string, info: string): string {
  const p = paths(appDir);
  return script(
    `mkdir -p ${p.dir}`,
    `if mkdir ${p.lock} 2>/dev/null; then`,
    `  printf '%s\\n' ${q(info)} > ${p.lock}/info`,
    `else`,
    `  cat ${p.lock}/info 2>/dev/null || echo 'unknown holder'`,
    `  exit ${LOCK_HELD}`,
    `fi`,
  );
}

/** Releases the lock if `token` still holds it (or unconditionally when token is undefined). */
export function lockReleaseScript(appDir: string, token?: string): string {
  const p = paths(appDir);
  if (token === undefined) return `rm -rf ${p.lock}`;
  return `if grep -qF ${q(token)} ${p.lock}/info 2>/dev/null; then rm -rf ${p.lock}; fi`;
}

/**
 * Prints `yes` when the artifact with this sha256 is already on the target. Otherwise `no`, then
 * `base <sha256>` for the uploads of the current release and of the newest other one (real
 * directories whose recorded sha256 is well formed): a directory upload is built from them,
 * hard-linking what did not change.
 */
export function hasUploadScript(appDir: string, sha256: string): string {
  const p = paths(appDir);
  return script(
    `if [ -f ${p.upload(sha256)} ] || [ -d ${p.upload(sha256)} ]; then echo yes; exit 0; fi`,
    `echo no`,
    `cd ${p.dir} 2>/dev/null || exit 0`,
    VALID,
    `togo_base() {`,
    `  s=$(cat "v$1/.togo-sha256" 2>/dev/null) || return 1`,
    `  case $s in ''|*[!0-9a-f]*) return 1;; esac`,
    `  [ \${#s} -eq 64 ] && [ -d ".uploads/$s" ] && [ ! -L ".uploads/$s" ] && echo "base $s"`,
    `}`,
    `c=$(togo_current) && togo_base "$c"`,
    `for d in $(ls -1td v*/ 2>/dev/null); do v=\${d%/}; v=\${v#v}; togo_version "$v" && [ "$v" != "$c" ] || continue; togo_base "$v" && break; done`,
    `true`,
  );
}

/** The `base <sha256>` lines of hasUploadScript's answer, checked again here. */
export function uploadBases(answer: string): string[] {
  return answer
    .split("\n")
    .map((l) => /^base ([0-9a-f]{64})$/.exec(l.trim())?.[1])
    .filter((s): s is string => s !== undefined);
}

/**
 * Installs an uploaded artifact as release `version`: a fresh folder, the artifact keeping its file
 * name, built beside the target name (a dot name no listing takes for a release) and renamed into
 * place, so a half-copied release never exists. Its files are hard links to the upload (30,000
 * of them in well under a second, where copying takes many); togo never writes a file in place
 * (uploads land beside their name and are renamed), but an app that rewrites one of its shipped
 * files in place changes it for every release sharing it. A copy where links cannot be made.
 */
export function installScript(appDir: string, version: string, sha256: string, name: string): string {
  const p = paths(appDir);
  const rel = p.release(version);
  const tmp = p.staging(version);
  const dest = `${tmp}/${q(name)}`;
  return script(
    `rm -rf ${tmp} && mkdir -p ${tmp} || exit 1`,
    `cp -al ${p.upload(sha256)} ${dest} 2>/dev/null || { rm -rf ${dest} && cp -R ${p.upload(sha256)} ${dest}; } || exit 1`,
    `printf '%s\\n' ${q(sha256)} > ${tmp}/.togo-sha256 || exit 1`,
    `rm -rf ${rel} && mv ${tmp} ${rel}`,
  );
}

/** Prints the sha256 recorded for an installed release, or nothing. */
export function releaseShaScript(appDir: string, version: string): string {
  return `cat ${paths(appDir).release(version)}/.togo-sha256 2>/dev/null || true`;
}

/**
 * Writes the env of the release being deployed, from stdin (values never appear on a command line),
 * into a fresh 0600 file made by mktemp (never through a planted symlink), renamed into place.
 */
export function writeEnvNextScript(appDir: string): string {
  const p = paths(appDir);
  return script(`cd ${p.dir} || exit 1`, `umask 077`, `t=$(mktemp .env.next.XXXXXX) || exit 1`, `cat > "$t" && mv -f "$t" .env.next`);
}

/**
 * Loads an env file the way the service will see it. Callers fix every path they need before this
 * runs: the file may set HOME (or anything) and must not move togo's own files.
 */
function loadEnv(envFile: string, port: number): string {
  return `if [ -f ${envFile} ]; then set -a; . ${envFile}; set +a; fi; PORT=${q(port)}; export PORT`;
}

export function releaseCmdScript(appDir: string, version: string, cmd: string, port: number): string {
  const p = paths(appDir);
  return script(`cd ${p.release(version)} || exit 1`, `env_file=${p.envNext}`, loadEnv(`"$env_file"`, port), `exec sh -c ${q(cmd)}`);
}

/**
 * A free TCP port on the target's loopback, read from /proc/net (no tools needed on the host):
 * scans [from, to] beginning at `start` and wrapping around, so concurrent deploys that start at
 * different places do not race for the same port.
 */
export function freePortScript(from: number, to: number, start = from): string {
  return script(
    `p=${start}; n=0`,
    `while [ $n -le ${to - from} ]; do`,
    `  h=$(printf '%04X' $p)`,
    `  if ! cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '{print $2}' | grep -qi ":$h\$"; then echo $p; exit 0; fi`,
    `  p=$((p+1)); n=$((n+1)); if [ $p -gt ${to} ]; then p=${from}; fi`,
    `done`,
    `exit 1`,
  );
}

// --- the process manager: for targets without systemd (local driver, containers, test hosts) ---

/** Reads a pid file into $p, empty unless it holds a plain process id (never 0, -1, or text). */
const READ_PID = (pidFile: string) => `p=$(cat ${pidFile} 2>/dev/null); case $p in ''|0|*[!0-9]*) p=;; esac`;
const alive = (pid: string) => `kill -0 ${pid} 2>/dev/null && [ "$(sed 's/.*) //' /proc/${pid}/stat 2>/dev/null | cut -c1)" != Z ]`;

export interface ProcessStart {
  appDir: string;
  /** Pid-file name under run/: `app` for the serving release, `candidate` for one being verified. */
  name: string;
  version: string;
  run: string;
  port: number;
  /** Which env file to load: the live `.env` or the `.env.next` of a release being verified. */
  envFile: "env" | "envNext";
}

/**
 * Starts a release detached in its own session (so the whole process group can be stopped), with
 * its output appended to logs/<version>.log. The pid file is written by the process itself. Every
 * path is fixed before the env file is sourced (it may set HOME).
 */
export function processStartScript(s: ProcessStart): string {
  const p = paths(s.appDir);
  return script(
    `pid_file=${p.pid(s.name)}; log_file=${p.log(s.version)}; env_file=${p[s.envFile]}`,
    `mkdir -p ${p.logs} ${p.run} && rm -f "$pid_file"`,
    `cd ${p.release(s.version)} || exit 1`,
    loadEnv(`"$env_file"`, s.port),
    `TOGO_VERSION=${q(s.version)}; export TOGO_VERSION`,
    `nohup setsid sh -c 'echo $$ > "$0"; exec sh -c "$1"' "$pid_file" ${q(s.run)} >> "$log_file" 2>&1 < /dev/null &`,
    // Polled finely: the process writes it within milliseconds, and every deploy starts the app twice.
    `i=0; while [ ! -s "$pid_file" ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done`,
    `[ -s "$pid_file" ] || { echo 'the process did not start' >&2; exit 1; }`,
  );
}

/** Stops a managed process: TERM to its process group, KILL after `graceSeconds`. */
export function processStopScript(appDir: string, name: string, graceSeconds = 10): string {
  return stopByPidFile(paths(appDir).pid(name), graceSeconds);
}

/** processStopScript for a pid file named by a shell word (a quoted path, or "$f"). */
export function stopByPidFile(pidFile: string, graceSeconds = 10): string {
  // No `exit` here: the script is composed with others (a restart is stop + start).
  return script(
    GROUP_ALIVE,
    READ_PID(pidFile),
    `if [ -n "$p" ] && togo_group_alive "$p"; then`,
    `  kill -TERM "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null`,
    // Polled finely at first (most apps exit within milliseconds of TERM), then every 0.05 s.
    `  i=0; while togo_group_alive "$p" && [ $i -lt ${graceSeconds * 20 + 8} ]; do if [ $i -lt 10 ]; then sleep 0.01; else sleep 0.05; fi; i=$((i+1)); done`,
    `  kill -KILL "-$p" 2>/dev/null || true`,
    `fi`,
    `rm -f ${pidFile}`,
  );
}

/**
 * True while any process of group $1 is still running. Read from /proc rather than `kill -0`:
 * the app may outlive the shell that started it, and a zombie (exited, not yet reaped by init)
 * no longer holds its port. A live leader answers at once; only once it is gone (or a zombie)
 * is every process looked at, and not at all when `kill -0` finds no process in the group.
 */
const GROUP_ALIVE = [
  // Its variables are named apart: sh has no locals, and callers hold paths in $f.
  "togo_group_alive() {",
  "  togo_g=$1",
  // 2>/dev/null first: sh applies redirections in order, and a vanished /proc entry is no error here.
  '  if read -r togo_l 2>/dev/null < "/proc/$togo_g/stat"; then',
  '    set -- ${togo_l##*")"}',
  '    if [ "$3" = "$togo_g" ] && [ "$1" != Z ]; then return 0; fi',
  "  fi",
  '  kill -0 "-$togo_g" 2>/dev/null || return 1',
  // One cat and one awk, not sh's `read` (a system call a byte: a scan of every process in shell
  // cost the host about a tenth of a CPU-second, and a stop polls it). A vanished entry is skipped.
  `  cat /proc/[0-9]*/stat 2>/dev/null | awk -v g="$togo_g" '{ sub(/^.*[)] /, ""); if ($3 == g && $1 != "Z") { f = 1; exit } } END { exit !f }'`,
  "}",
].join("\n");

/** Prints `running <pid>` or `stopped`. */
export function processStatusScript(appDir: string, name: string): string {
  const pid = paths(appDir).pid(name);
  return `${READ_PID(pid)}; if [ -n "$p" ] && ${alive('"$p"')}; then echo "running $p"; else echo stopped; fi`;
}

/**
 * Who listens on `port`: prints `ours`, `none`, or `other <pid> <command>` (`other ?` when the
 * listener belongs to another user). `ours` is a sh function deciding whether a pid belongs to the
 * release (its process group, its unit's cgroup). A health check alone cannot tell our app from
 * another server that already held the port.
 */
export function portOwnerScript(port: number, ours: string): string {
  return script(
    ours,
    `hex=$(printf '%04X' ${q(port)})`,
    `inodes=$(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { printf " %s", $10 }')`,
    `[ -n "$inodes" ] || { echo none; exit 0; }`,
    `pid=$(ls -l /proc/[0-9]*/fd 2>/dev/null | awk -v want="$inodes " '/^[/]proc[/][0-9]+[/]fd:$/ { split($0, a, "/"); pid = a[3]; next } /socket:[[]/ { i = $NF; gsub(/[^0-9]/, "", i); if (index(want, " " i " ")) { print pid; exit } }')`,
    `[ -n "$pid" ] || { echo "other ?"; exit 0; }`,
    `if togo_ours "$pid"; then echo ours; else echo "other $pid $(cat /proc/$pid/comm 2>/dev/null)"; fi`,
  );
}

/** `togo_ours PID`: PID is in the process group of the process manager's `name` (its pid file). */
export function processGroupOurs(appDir: string, name: string): string {
  return script(
    READ_PID(paths(appDir).pid(name)),
    `togo_ours() { [ -n "$p" ] && read -r l 2>/dev/null < /proc/$1/stat && set -- \${l##*")"} && [ "$3" = "$p" ]; }`,
  );
}

// --- blue-green: each release its own instance on its own port; run/live.port names the live one ---

/** The pid-file name (process manager) of the instance on `port`. */
export const slotName = (port: number) => `slot-${port}`;

/** Reads run/live.port into $live (empty when the app runs restart-style on app_port). */
export const READ_LIVE_PORT = (appDir: string) => `live=$(cat ${paths(appDir).run}/live.port 2>/dev/null); case $live in ''|*[!0-9]*) live=;; esac`;

/** Records `port` as the live instance's: written beside, renamed over (never through a planted file). */
export const WRITE_LIVE_PORT = (appDir: string, port: number) =>
  `t=$(mktemp ${paths(appDir).run}/.live.port.XXXXXX) && printf '%s\\n' ${q(port)} > "$t" && mv -f "$t" ${paths(appDir).run}/live.port || exit 1`;

/**
 * Runs `body` (with `args` as $1…, shell words) `seconds` from now in a session of its own, so it
 * outlives the SSH connection and togo; at once when seconds is 0. How an old release gets its drain.
 */
export function afterDrain(seconds: number, body: string, args: string[] = []): string {
  const argv = ["sh", ...args].join(" ");
  if (seconds <= 0) return `sh -c ${q(body)} ${argv}`;
  return `nohup setsid sh -c ${q(`sleep ${seconds}; ${body}`)} ${argv} >/dev/null 2>&1 </dev/null &`;
}

/**
 * Process manager: stops every instance that is not the live one and not draining (a candidate a
 * dead deploy left behind), and with `all` the live one and the draining ones too (destroy, or a
 * move to restart-style).
 */
export function processStopSlotsScript(appDir: string, all = false): string {
  const run = paths(appDir).run;
  return script(
    READ_LIVE_PORT(appDir),
    `for f in ${run}/slot-*.pid${all ? ` ${run}/draining-*.pid` : ""}; do`,
    `  [ -f "$f" ] || continue`,
    all ? "" : `  n=\${f##*/slot-}; [ "\${n%.pid}" = "$live" ] && continue`,
    `  ${stopByPidFile('"$f"').replace(/\n/g, "\n  ")}`,
    `done`,
    all ? `rm -f ${run}/live.port` : "",
  );
}

/**
 * Process manager: makes the instance on `port` the live one. What served before (the previous
 * instance, or a restart-style app) has its pid file renamed to run/draining-*.pid at once, so
 * nothing started later is taken for it, and is stopped after the drain.
 */
export function processPromoteScript(appDir: string, port: number, drainSeconds: number): string {
  const run = paths(appDir).run;
  const retire = (from: string) =>
    script(
      `if [ -f ${from} ]; then`,
      `  f=${run}/draining-$(date +%s%N)-$$.pid; mv -f ${from} "$f"`,
      `  ${afterDrain(drainSeconds, stopByPidFile('"$1"'), ['"$f"'])}`,
      `fi`,
    );
  return script(
    READ_LIVE_PORT(appDir),
    `old=$live`,
    WRITE_LIVE_PORT(appDir, port),
    `if [ -n "$old" ] && [ "$old" != ${q(port)} ]; then`,
    retire(`${run}/slot-"$old".pid`),
    `fi`,
    retire(`${run}/app.pid`),
  );
}

/** `togo_ours PID`: PID is in the process group of any of the process manager's `names`. */
export function processGroupsOurs(appDir: string, names: string[]): string {
  const run = paths(appDir).run;
  return script(
    `togo_ours() {`,
    `  togo_pg=$(sed 's/.*) //' /proc/$1/stat 2>/dev/null | cut -d' ' -f3); [ -n "$togo_pg" ] || return 1`,
    `  for togo_n in ${names.map(q).join(" ")}; do`,
    `    togo_p=$(cat ${run}/"$togo_n".pid 2>/dev/null); case $togo_p in ''|0|*[!0-9]*) continue;; esac`,
    `    [ "$togo_pg" = "$togo_p" ] && return 0`,
    `  done`,
    `  return 1`,
    `}`,
  );
}

// --- switch, record, prune, rollback ---

/**
 * Points `current` at the release atomically (a new link renamed over the old) and makes the
 * verified env live, keeping the previous one as .env.prev so a failed cutover can be undone.
 * Temp names are made fresh (ln -s without -f fails on anything planted there).
 */
export function switchScript(appDir: string, version: string, takeNextEnv = true): string {
  const p = paths(appDir);
  return script(
    `cd ${p.dir} || exit 1`,
    `umask 077`,
    takeNextEnv &&
      script(
        `if [ -f .env.next ] && [ ! -L .env.next ]; then`,
        `  if [ -f .env ] && [ ! -L .env ]; then t=$(mktemp .env.prev.XXXXXX) && cat .env > "$t" && mv -f "$t" .env.prev; else rm -f .env.prev; fi`,
        `  mv -f .env.next .env`,
        `fi`,
      ),
    LINK_CURRENT(releaseFolder(version)),
  );
}

/**
 * Runs `body` to its end even when the session that started it is lost (togo killed mid-switch,
 * the connection dropped): in a session of its own, its output kept in files and passed on after.
 * A switch cut in half would leave `current` naming a release that was never started.
 */
export function toTheEnd(body: string): string {
  return script(
    // A switch whose session was killed leaves its output folder: those older than any switch takes
    // are removed by the next one.
    `find "\${TMPDIR:-/tmp}" -maxdepth 1 -name 'togo-switch.*' -user "$(id -u)" -mmin +60 -exec rm -rf {} + 2>/dev/null`,
    `o=$(mktemp -d "\${TMPDIR:-/tmp}/togo-switch.XXXXXX") || exit 1`,
    `setsid sh -c ${q(body)} >"$o/out" 2>"$o/err" </dev/null & wait $!; rc=$?`,
    `cat "$o/out"; cat "$o/err" >&2; rm -rf "$o"; exit $rc`,
  );
}

/** Exit status of a switch whose `current` could not be moved (nothing was restarted). */
export const SWITCH_NOT_MOVED = 97;

const LINK_CURRENT = (folder: string) => `t=.current.$$.$(date +%s%N 2>/dev/null); ln -s ${q(folder)} "$t" && mv -Tf "$t" current`;

/**
 * Undoes a switch whose cutover failed: back to `previous` (and, when the switch made a new env
 * live, to the env before it), or to nothing at all.
 */
export function restoreScript(appDir: string, previous: string | undefined, restoreEnv = true): string {
  const p = paths(appDir);
  if (previous === undefined) return script(`cd ${p.dir} || exit 1`, `rm -f current .env .env.prev`);
  return script(
    `cd ${p.dir} || exit 1`,
    restoreEnv && `if [ -f .env.prev ] && [ ! -L .env.prev ]; then mv -f .env.prev .env; fi`,
    LINK_CURRENT(releaseFolder(previous)),
  );
}

/** Prints the current version (empty when nothing was switched to yet, or `current` is not a release link). */
export function currentVersionScript(appDir: string): string {
  return script(`cd ${paths(appDir).dir} 2>/dev/null || exit 0`, VALID, `togo_current || true`);
}

/** Puts `version` first in .versions (newest first, no duplicates) and drops it from .failed. */
export function recordScript(appDir: string, version: string): string {
  const p = paths(appDir);
  return script(
    `cd ${p.dir} || exit 1`,
    `t=$(mktemp .versions.XXXXXX) || exit 1`,
    `{ printf '%s\\n' ${q(version)}; grep -vxF ${q(version)} .versions 2>/dev/null; } > "$t"; mv -f "$t" .versions`,
    `if [ -f .failed ]; then t=$(mktemp .failed.XXXXXX) && grep -vxF ${q(version)} .failed > "$t"; mv -f "$t" .failed; fi`,
  );
}

/** Records a release that failed verification; its folder and log are kept for inspection. */
export function recordFailedScript(appDir: string, version: string): string {
  const p = paths(appDir);
  return script(
    `cd ${p.dir} || exit 1`,
    `rm -f .env.next`,
    `t=$(mktemp .failed.XXXXXX) || exit 1`,
    `{ printf '%s\\n' ${q(version)}; grep -vxF ${q(version)} .failed 2>/dev/null; } > "$t"; mv -f "$t" .failed`,
  );
}

/**
 * Every release on the target, newest first: the current one if no list names it, .versions' lines
 * that are versions, then release folders no list names (a crashed deploy, a deleted .versions),
 * newest folder first. Sets $releases.
 */
const ALL_RELEASES = script(
  // A current release no list names was switched to and not yet recorded (a deploy killed right
  // after its switch): it is the newest.
  `releases=""; c=$(togo_current) && [ -d "v$c" ] && ! grep -qxF "$c" .versions 2>/dev/null && releases=" $c"`,
  // A line whose folder is gone (removed by hand) is no release: listing it would offer it to
  // rollback, and prune would count it among the kept ones and keep one real release fewer.
  `if [ -f .versions ]; then while IFS= read -r v; do togo_version "$v" && [ -d "v$v" ] || continue; case " $releases " in *" $v "*) ;; *) releases="$releases $v";; esac; done < .versions; fi`,
  `failed=" "; if [ -f .failed ]; then while IFS= read -r v; do togo_version "$v" && failed="$failed$v "; done < .failed; fi`,
  `for d in $(ls -1td v*/ 2>/dev/null); do v=\${d%/}; v=\${v#v}; togo_version "$v" && [ -f "v$v/.togo-sha256" ] || continue; case " $releases $failed " in *" $v "*) ;; *) releases="$releases $v";; esac; done`,
);

/**
 * Keeps the newest `keep` releases (those .versions lists first, then unlisted folders) and the
 * newest failed one; never removes the current release, and only ever removes `v<version>` folders
 * inside app_dir. Prints the versions it removed.
 */
export function pruneScript(appDir: string, keep: number): string {
  const p = paths(appDir);
  return script(
    `cd ${p.dir} || exit 1`,
    VALID,
    ALL_RELEASES,
    `cur=$(togo_current) || cur=`,
    `t=$(mktemp .versions.XXXXXX) || exit 1`,
    `n=0`,
    `for v in $releases; do`,
    `  n=$((n+1))`,
    `  if [ $n -le ${keep} ] || [ "$v" = "$cur" ]; then printf '%s\\n' "$v" >> "$t"; else rm -rf "./v$v" "./logs/$v.log"; echo "$v"; fi`,
    `done`,
    `mv -f "$t" .versions`,
    `if [ -f .failed ]; then`,
    `  t=$(mktemp .failed.XXXXXX) || exit 1; first=`,
    `  while IFS= read -r v; do`,
    `    togo_version "$v" || continue`,
    `    if [ -z "$first" ]; then first=$v; printf '%s\\n' "$v" > "$t"`,
    `    elif [ "$v" != "$cur" ]; then rm -rf "./v$v" "./logs/$v.log"; echo "$v"; fi`,
    `  done < .failed`,
    `  mv -f "$t" .failed`,
    `fi`,
  );
}

/**
 * Drops cached uploads no release folder refers to (pruned releases' artifacts, the leftovers of an
 * interrupted upload), so the cache never outgrows the kept releases. Runs under the deploy lock.
 */
export function pruneUploadsScript(appDir: string): string {
  const p = paths(appDir);
  return script(
    `cd ${p.dir} || exit 1`,
    `[ -d .uploads ] && [ ! -L .uploads ] || exit 0`,
    `keep=$(cat v*/.togo-sha256 2>/dev/null)`,
    `for f in .uploads/* .uploads/.[!.]*; do`,
    `  [ -e "$f" ] || [ -L "$f" ] || continue`,
    `  printf '%s\\n' "$keep" | grep -qxF "\${f#.uploads/}" || rm -rf "$f"`,
    `done`,
  );
}

/** Written by cloud-init when an instance's first boot (its user data) has finished. */
export const BOOT_FINISHED = "/var/lib/cloud/instance/boot-finished";

/**
 * Waits until a machine that sets itself up at first boot (cloud-init: the deploy user's lingering,
 * Caddy and its site dir) is through, so the deploy does not judge a half-made host (no Caddy yet:
 * restart-style; no lingering: the process manager) and leave it so. Prints the seconds waited;
 * nothing to wait for without cloud-init. Exits 1 after `timeoutSeconds`.
 */
export function firstBootWaitScript(timeoutSeconds: number, finished = BOOT_FINISHED): string {
  return script(
    `command -v cloud-init >/dev/null 2>&1 || { echo 0; exit 0; }`,
    `i=0; until [ -e ${qpath(finished)} ]; do`,
    `  if [ $i -ge ${q(timeoutSeconds)} ]; then echo "the first boot (cloud-init) has not finished after $i s: see /var/log/cloud-init-output.log on the host" >&2; exit 1; fi`,
    `  i=$((i+1)); sleep 1`,
    `done`,
    `echo $i`,
  );
}

/** Runs `argv` in the current release with the live env, replacing the shell (togo exec). */
export function execInReleaseScript(appDir: string, argv: string[], port: number): string {
  const p = paths(appDir);
  return script(`env_file=${p.env}`, `cd ${p.current} || { echo 'no current release; deploy first' >&2; exit 1; }`, loadEnv(`"$env_file"`, port), `exec ${argv.map(q).join(" ")}`);
}

/** Prints `current=<version>` then `<version> <mtime>` for every release, newest first. */
export function readReleasesScript(appDir: string): string {
  const p = paths(appDir);
  return script(
    `cd ${p.dir} 2>/dev/null || exit 0`,
    VALID,
    ALL_RELEASES,
    `printf 'current=%s\\n' "$(togo_current)"`,
    `for v in $releases; do printf '%s %s\\n' "$v" "$(stat -c %Y "v$v" 2>/dev/null || echo 0)"; done`,
    `true`,
  );
}

/** The last `lines` lines of a release's log. */
export function tailLogScript(appDir: string, version: string, lines: number, follow = false): string {
  return `tail -n ${q(lines)}${follow ? " -F" : ""} ${paths(appDir).log(releaseFolder(version).slice(1))} 2>/dev/null || true`;
}

export function removeAppDirScript(appDir: string): string {
  return `rm -rf ${paths(appDir).dir}`;
}

/**
 * Prints `NAME HMAC` for every variable the live .env sets, where HMAC is HMAC-SHA256 of its value
 * under a key sent on stdin (two lines: the key's inner and outer pads as printf octal escapes, so
 * the key is never on a command line). Values never leave the host; `no-env` when there is no .env.
 * Which names the file sets is asked of sh itself (a line of a multi-line value that looks like an
 * assignment is not a name): every candidate is unset, the file is sourced, and what is set counts.
 * Sourcing happens in subshells, after which only positional parameters are used: a key named like
 * one of this script's variables cannot change what it prints.
 */
export function envFingerprintsScript(appDir: string): string {
  const p = paths(appDir);
  return script(
    `cd ${p.dir} 2>/dev/null && [ -f .env ] && [ ! -L .env ] || { echo no-env; exit 0; }`,
    `togo_sha=$(command -v sha256sum) || { echo 'sha256sum is not installed' >&2; exit 1; }`,
    `IFS= read -r togo_i && IFS= read -r togo_o || { echo 'no key on stdin' >&2; exit 1; }`,
    `set -- $(sed -n 's/^\\([A-Za-z_][A-Za-z0-9_]*\\)=.*/\\1/p' .env | sort -u)`,
    `togo_load() { for c in "$@"; do unset "$c" 2>/dev/null; done; . ./.env; }`,
    `togo_has() { togo_load "$@"; eval "[ -n \\"\\\${$1+x}\\" ]"; }`,
    `togo_emit() { togo_load "$@"; eval "printf %s \\"\\\${$1}\\""; }`,
    // hex → bytes, through printf's octal escapes (POSIX sh has no \x).
    `togo_bin() { b=; h=$1; while [ -n "$h" ]; do r=\${h#??}; b="$b\\\\$(printf %o $((0x\${h%"$r"})))"; h=$r; done; printf "$b"; }`,
    `for n in "$@"; do`,
    `  (togo_has "$n" "$@") || continue`,
    `  d=$({ printf "$togo_i"; (togo_emit "$n" "$@"); } | "$togo_sha") || exit 1`,
    `  d=$({ printf "$togo_o"; togo_bin "\${d%% *}"; } | "$togo_sha") || exit 1`,
    `  printf '%s %s\\n' "$n" "\${d%% *}"`,
    `done`,
  );
}

/**
 * Stores an upload only if its bytes hash to `sha256` (the artifact store's, for deploy.artifact:
 * store): the host checks what arrived itself. A mismatch removes the upload and fails. `unpack`:
 * the artifact is a directory the build tarred (dist → dist.tar.gz); it is stored unpacked, as a
 * directory upload is, so the release holds the directory deploy.binary names.
 */
export function storeVerifiedUploadScript(appDir: string, sha256: string, unpack = false): string {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`invalid sha256 "${sha256}"`);
  const p = paths(appDir);
  const partial = `${p.upload(sha256)}.partial`;
  const unpacking = `${p.upload(sha256)}.unpack`;
  return script(
    `[ -f ${partial} ] && [ ! -L ${partial} ] || { echo 'togo: the upload is missing or not a file' >&2; exit 1; }`,
    `if command -v sha256sum >/dev/null 2>&1; then s=$(sha256sum < ${partial})`,
    `elif command -v shasum >/dev/null 2>&1; then s=$(shasum -a 256 < ${partial})`,
    `elif command -v openssl >/dev/null 2>&1; then s=$(openssl dgst -sha256 -r < ${partial})`,
    `else echo 'togo: the host has none of sha256sum, shasum or openssl to check the artifact with' >&2; exit 1; fi || exit 1`,
    `s=\${s%% *}`,
    `if [ "$s" != ${sha256} ]; then rm -f ${partial}; echo "togo: the uploaded artifact hashes to $s, not ${sha256} (the artifact store's): refused and removed" >&2; exit 1; fi`,
    unpack
      ? script(
          `rm -rf ${unpacking} && mkdir ${unpacking} || exit 1`,
          `if ! tar -xzf ${partial} -C ${unpacking}; then rm -rf ${unpacking} ${partial}; echo 'togo: the artifact (a .tar.gz) could not be unpacked on the host (is tar with gzip installed?)' >&2; exit 1; fi`,
          `rm -rf ${p.upload(sha256)} && mv ${unpacking} ${p.upload(sha256)} && rm -f ${partial}`,
        )
      : `mv -f ${partial} ${p.upload(sha256)}`,
  );
}

/** `os=<uname -s> arch=<uname -m>`: which build of an artifact a host runs. */
export function hostPlatformScript(): string {
  return `printf 'os=%s\narch=%s\n' "$(uname -s)" "$(uname -m)"`;
}

/** uname's names → Go's (GOOS/GOARCH), which the build proxy's paths use. */
export function parseHostPlatform(out: string): { os: string; arch: string } | undefined {
  const kv = Object.fromEntries(out.split("\n").filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1).trim()]));
  const os = ({ Linux: "linux", Darwin: "darwin", FreeBSD: "freebsd", OpenBSD: "openbsd", NetBSD: "netbsd" } as Record<string, string>)[kv.os ?? ""];
  const m = kv.arch ?? "";
  const arch = ({ x86_64: "amd64", amd64: "amd64", aarch64: "arm64", arm64: "arm64", i386: "386", i686: "386", armv7l: "arm", armv6l: "arm", riscv64: "riscv64", ppc64le: "ppc64le", s390x: "s390x" } as Record<string, string>)[m];
  return os && arch ? { os, arch } : undefined;
}

/** Prints `present` and the file, or `missing` (a generated file read back for a diff). */
export function readFileScript(path: string): string {
  return `if [ -f ${path} ]; then echo present; cat ${path}; else echo missing; fi`;
}

/** readFileScript's answer: the text, or undefined when the file is missing. */
export function parseReadFile(stdout: string): string | undefined {
  if (!stdout.startsWith("present\n")) return undefined;
  return stdout.slice("present\n".length);
}

/** The release folder of one app on a target, as named Commands. */
export function releaseDir(appDir: string) {
  const c = (op: string, text: string, what: string, input?: string): Command => command(op, text, { what, ...(input === undefined ? {} : { input }) });
  return {
    appDir,
    layout: () => c("layout", layoutScript(appDir), "creating the app directory"),
    lockAcquire: (info: string) => c("lock.acquire", lockAcquireScript(appDir, info), "taking the deploy lock"),
    lockRelease: (token?: string) => c("lock.release", lockReleaseScript(appDir, token), "releasing the deploy lock"),
    lockInfo: () => c("lock.info", `cat ${paths(appDir).lock}/info 2>/dev/null || true`, "reading the deploy lock"),
    current: () => c("current", currentVersionScript(appDir), "reading the current release"),
    /** The live blue-green instance's port, or nothing (restart-style on app_port). */
    livePort: () => c("live.port", script(READ_LIVE_PORT(appDir), `printf '%s\\n' "$live"`), "reading the live port"),
    hasUpload: (sha256: string) => c("upload.has", hasUploadScript(appDir, sha256), "looking for the artifact on the target"),
    storeUpload: (sha256: string) => c("upload.store", `mv -f ${paths(appDir).upload(sha256)}.partial ${paths(appDir).upload(sha256)}`, "storing the upload"),
    /** storeUpload with the host checking the bytes' sha256 first (deploy.artifact: store). */
    storeVerifiedUpload: (sha256: string, unpack = false) => c("upload.verify", storeVerifiedUploadScript(appDir, sha256, unpack), "checking the artifact's sha256 on the host"),
    platform: () => c("host.platform", hostPlatformScript(), "reading the host's os and architecture"),
    writeEnvNext: (dotenv: string) => c("env.next", writeEnvNextScript(appDir), "writing .env", dotenv),
    releaseSha: (version: string) => c("release.sha", releaseShaScript(appDir, version), "reading the installed release's sha256"),
    /** Keyed fingerprints of the live .env's values; `keyPads` is the key material (stdin, never argv). */
    envFingerprints: (keyPads: string) => c("plan.env", envFingerprintsScript(appDir), "reading the live env's fingerprints", keyPads),
    install: (version: string, sha256: string, name: string) => c("release.install", installScript(appDir, version, sha256, name), `installing release ${version}`),
    releaseCmd: (version: string, cmd: string, port: number) => c("release.cmd", releaseCmdScript(appDir, version, cmd, port), "running release_cmd"),
    freePort: (from: number, to: number, start: number) => c("port.free", freePortScript(from, to, start), "finding a free port"),
    switchTo: (version: string, takeNextEnv: boolean) => c("switch", switchScript(appDir, version, takeNextEnv), "switching current"),
    restore: (previous: string | undefined, restoreEnv: boolean) => c("switch.restore", restoreScript(appDir, previous, restoreEnv), "switching back"),
    record: (version: string) => c("record", recordScript(appDir, version), "recording the release"),
    recordFailed: (version: string) => c("record.failed", recordFailedScript(appDir, version), "recording the failed release"),
    prune: (keep: number) => c("prune", pruneScript(appDir, keep), "pruning old releases"),
    pruneUploads: () => c("prune.uploads", pruneUploadsScript(appDir), "pruning the upload cache"),
    releases: () => c("releases", readReleasesScript(appDir), "reading the releases"),
    tailLog: (version: string, lines: number, follow = false) => c("logs.tail", tailLogScript(appDir, version, lines, follow), "reading the log"),
    exec: (argv: string[], port: number) => c("exec", execInReleaseScript(appDir, argv, port), "running a command in the current release"),
    remove: () => c("app-dir.remove", removeAppDirScript(appDir), "removing the app directory"),
    firstBootWait: (timeoutSeconds: number) => c("boot.wait", firstBootWaitScript(timeoutSeconds), "waiting for the host's first boot (cloud-init)"),
    /** The app's own Caddy (this machine, blue-green): pointed at `port`, started on app_port when not running. */
    ownCaddyRoute: (appPort: number, port: number) =>
      c(
        "front.own",
        localFrontScript(appDir, appPort, port, {
          caddyAlive: `(${processStatusScript(appDir, "caddy")}) | grep -q '^running'`,
          stopApp: processStopScript(appDir, "app"),
          owner: (name) => `sh -c ${q(portOwnerScript(appPort, processGroupsOurs(appDir, [name])))}`,
        }),
        `pointing the app's Caddy at port ${port}`,
      ),
    ownCaddyStop: () => c("front.own.stop", processStopScript(appDir, "caddy"), "stopping the app's own Caddy"),
    /** A release being verified: on a spare port, with the env it will get (.env.next). */
    candidateStart: (version: string, run: string, port: number) =>
      c("candidate.start", processStartScript({ appDir, name: "candidate", version, run, port, envFile: "envNext" }), `starting release ${version}`),
    candidateStop: () => c("candidate.stop", processStopScript(appDir, "candidate"), "stopping the candidate"),
    candidateStatus: () => c("candidate.status", processStatusScript(appDir, "candidate"), "checking the candidate"),
    candidateOwns: (port: number) => c("candidate.owns", portOwnerScript(port, processGroupOurs(appDir, "candidate")), `checking who listens on port ${port}`),
  };
}

export type ReleaseDir = ReturnType<typeof releaseDir>;
