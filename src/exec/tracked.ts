// Commands that must not outlive togo. Every command a deploy runs on a target is wrapped so that
//  - its process group is recorded (remote: under a run id) and an interrupt stops the whole group,
//    not just the local client (with SSH multiplexing the master holds the client's pipes, so
//    killing the client stops nothing on the host);
//  - it is stopped when what started it is gone: the SSH session (togo killed with -9, the
//    connection lost) or, on this machine, togo's own process.
// What detaches on purpose (a released app, started with setsid) is not in the group and lives on.
import { q } from "../core/shell.js";

/** Where a remote command records its process group, so a second session can stop it. */
export const RUNS_DIR = `"$HOME"/.cache/togo/runs`;

export interface Tracking {
  /** Record the group under this id (for stopTrackedScript). */
  id?: string;
  /** Stop the group once this pid is gone; "session": the sshd process of this SSH session. */
  watch: number | "session";
}

export function trackedScript(script: string, t: Tracking): string {
  const watch = t.watch === "session" ? `s=; if [ -n "$g" ] && read -r l 2>/dev/null < /proc/$g/stat; then set -- \${l##*")"}; s=$2; fi` : `s=${t.watch}`;
  return [
    // sshd (and togo, locally) start the command as a session leader: its group is the whole tree.
    `g=; if read -r l 2>/dev/null < /proc/$$/stat; then set -- \${l##*")"}; g=$3; fi`,
    t.id ? `d=${RUNS_DIR}; { [ -d "$d" ] || mkdir -p "$d" 2>/dev/null; } && [ -n "$g" ] && printf '%s\\n' "$g" > "$d/${t.id}"` : `:`,
    watch,
    // The watcher's sleep is waited for, so stopping the watcher stops its sleep too (no straggler).
    `w=; if [ -n "$g" ] && [ -n "$s" ] && [ "$s" != 1 ]; then (trap 'kill $z 2>/dev/null; exit 0' TERM; while [ -d /proc/$s ]; do sleep 1 & z=$!; wait $z; done; kill -TERM "-$g") </dev/null >/dev/null 2>&1 & w=$!; fi`,
    `sh -c ${q(script)}; rc=$?`,
    `[ -z "$w" ] || kill "$w" 2>/dev/null`,
    t.id ? `rm -f "$d/${t.id}"` : `:`,
    `exit $rc`,
  ].join("\n");
}

/**
 * Stops the group recorded under `id` (by a tracked script, or by a command channel for the command
 * in flight): TERM, then KILL after 5 s. Prints `stopped` when there was one.
 */
export function stopTrackedScript(id: string): string {
  return [
    `f=${RUNS_DIR}/${id}; g=$(cat "$f" 2>/dev/null)`,
    `if [ -z "$g" ]; then for c in ${RUNS_DIR}/ch-*; do read -r x y 2>/dev/null < "$c" || continue; [ "$x" = ${q(id)} ] && g=$y; done; fi`,
    `case $g in ''|0|1|*[!0-9]*) exit 0;; esac`,
    `kill -TERM "-$g" 2>/dev/null; i=0`,
    `while kill -0 "-$g" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done`,
    `kill -KILL "-$g" 2>/dev/null; rm -f "$f"; echo stopped`,
  ].join("\n");
}

/**
 * Runs `ssh ARGS` as a master connection that dies with togo: the wrapper's stdin is a pipe from
 * togo, so when togo is gone (even after kill -9) the pipe closes and the master is stopped. The
 * master's control directory ($1) goes with it: togo cannot remove it once it has been killed.
 */
export const MASTER_WATCHDOG = [
  `exec 3<&0`,
  `dir=$1; shift`,
  `ssh "$@" </dev/null & m=$!`,
  `trap 'kill $m 2>/dev/null' TERM INT HUP`,
  `(cat <&3; kill $m) >/dev/null 2>&1 & c=$!`,
  `wait $m; rc=$?`,
  `kill $c 2>/dev/null`,
  `rm -rf "$dir"`,
  `exit $rc`,
].join("\n");
