#!/bin/bash
# Supervises one systemd-nspawn container for test/helpers/systemd-hosts.ts.
# Usage: supervise.sh STATE_DIR systemd-nspawn ARGS...   (env TOGO_HOST_CGROUPS: cgroup dirs to join)
#
# It joins the instance's own cgroups first: nspawn puts the container in `payload/` (and itself in
# `supervisor/`) below the cgroup it starts in, so starting in a shared cgroup would make every
# instance share them. It boots the container again when it asks to reboot (nspawn exits 133), and
# stops when STATE_DIR/stopping exists. STATE_DIR/nspawn.pid holds the running nspawn's pid.
set -u
STATE=${1:?state dir}; shift
# A missing cgroup means stop() already cleaned up: never boot outside the instance's own cgroups.
for cg in ${TOGO_HOST_CGROUPS:-}; do echo $$ > "$cg/cgroup.procs" || exit 1; done
boots=0
while :; do
  [ -e "$STATE/stopping" ] && break
  boots=$((boots + 1))
  echo "[supervisor] boot $boots" >> "$STATE/console.log"
  "$@" >> "$STATE/console.log" 2>&1 < /dev/null &
  pid=$!
  echo "$pid" > "$STATE/nspawn.pid.tmp" && mv -f "$STATE/nspawn.pid.tmp" "$STATE/nspawn.pid"
  wait "$pid"; rc=$?
  echo "[supervisor] nspawn exited rc=$rc" >> "$STATE/console.log"
  [ "$rc" = 133 ] || break
done
rm -f "$STATE/nspawn.pid"
