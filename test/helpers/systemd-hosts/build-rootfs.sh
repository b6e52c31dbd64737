#!/bin/bash
# Makes the cached Debian bookworm image that test/helpers/systemd-hosts.ts boots with systemd-nspawn.
#
# Usage (run as root, under the caller's lock): build-rootfs.sh TARBALL IMAGE_DIR
#   IMAGE_DIR/.ready exists -> nothing to do
#   TARBALL exists          -> unpack it into IMAGE_DIR (seconds)
#   otherwise               -> debootstrap + customise, write TARBALL, unpack (minutes, once)
# Env: PACKAGES  comma-separated packages to include (part of the cache key, set by the harness)
#      MIRROR    Debian mirror; default: the one apt on this machine already uses
#      DEB_CACHE debootstrap --cache-dir (keeps the .debs for the next rebuild)
# Everything is written beside its final name and renamed, so a killed build never leaves a
# half-made image where the next run would use it.
set -euo pipefail
TARBALL=${1:?tarball path}
IMAGE=${2:?image dir}
: "${PACKAGES:?PACKAGES is set by the harness}"
log() { echo "[systemd-hosts] $*" >&2; }

if [ -e "$IMAGE/.ready" ]; then exit 0; fi

# Once this image exists: images of older recipes (another hash) go, unless a running host uses
# one, and so do the leftovers of killed builds (nobody else builds: the caller holds the lock).
prune_old() {
  [ -e "$IMAGE/.ready" ] || return 0
  local old
  for old in "$(dirname "$TARBALL")"/rootfs-* "$(dirname "$TARBALL")"/build.*; do
    case $old in "$IMAGE" | "$TARBALL") continue ;; esac
    [ -e "$old" ] || continue
    grep -qF "lowerdir=${old%.tar.zst}," /proc/mounts && continue
    rm -rf "$old"
  done
}
trap prune_old EXIT

unpack() {
  local tmp="$IMAGE.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  zstd -dc "$TARBALL" | tar -C "$tmp" --numeric-owner --xattrs --xattrs-include='*' -xf -
  touch "$tmp/.ready"
  rm -rf "$IMAGE"; mv "$tmp" "$IMAGE"
}

if [ -s "$TARBALL" ]; then unpack; exit 0; fi

# The Debian archive apt is configured with (deb822 .sources or one-line .list), preferring an entry
# for a plain release suite over -security/-updates: never a hard-coded host.
apt_mirror() {
  {
    for f in /etc/apt/sources.list.d/*.sources; do [ -f "$f" ] && { cat "$f"; echo; }; done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -f "$f" ] || continue
      # one-line format -> the same fields as deb822
      awk '$1=="deb" { i=2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } printf "Types: deb\nURIs: %s\nSuites: %s\n\n", $i, $(i+1) }' "$f"
    done
  } | awk '
    /^[ \t]*$/ { if (uri != "" && types ~ /(^| )deb( |$)/) for (i = 1; i <= n; i++) if (s[i] !~ /-(security|updates|backports)$/ && s[i] !~ /\//) { print uri; exit } uri = ""; types = ""; n = 0; next }
    /^URIs:/ { uri = $2 }
    /^Types:/ { types = $0 }
    /^Suites:/ { n = 0; for (i = 2; i <= NF; i++) s[++n] = $i }
    END { if (uri != "" && types ~ /(^| )deb( |$)/) for (i = 1; i <= n; i++) if (s[i] !~ /-(security|updates|backports)$/) { print uri; exit } }
  ' | head -n 1
}
MIRROR=${MIRROR:-$(apt_mirror)}
[ -n "$MIRROR" ] || { log "no Debian mirror found in /etc/apt sources; set MIRROR=http://<debian mirror>/debian"; exit 1; }
command -v debootstrap >/dev/null || { log "debootstrap is missing: apt-get install debootstrap"; exit 1; }

CACHE=$(dirname "$TARBALL")
DEB_CACHE=${DEB_CACHE:-$CACHE/debs}
R="$CACHE/build.$$"
cleanup() { rm -rf "$R" "$R.log" "$TARBALL.tmp.$$"; prune_old; }
trap cleanup EXIT
rm -rf "$R"; mkdir -p "$R" "$DEB_CACHE"
t0=$(date +%s)
log "building the bookworm image from $MIRROR (once; cached as $TARBALL)"
debootstrap --variant=minbase --cache-dir="$DEB_CACHE" --include="$PACKAGES" bookworm "$R" "$MIRROR" >"$R.log" 2>&1 \
  || { tail -n 30 "$R.log" >&2; rm -f "$R.log"; exit 1; }
rm -f "$R.log"
log "debootstrap done in $(( $(date +%s) - t0 )) s"

# --- customise -------------------------------------------------------------------------------
echo togo-host > "$R/etc/hostname"
printf '127.0.0.1 localhost togo-host\n::1 localhost ip6-localhost ip6-loopback\n' > "$R/etc/hosts"
# The hosts have no route out: a loopback resolver makes lookups fail at once instead of timing out.
echo 'nameserver 127.0.0.1' > "$R/etc/resolv.conf"
# Each instance writes its own machine-id and SSH host keys before its first boot.
: > "$R/etc/machine-id"; rm -f "$R/var/lib/dbus/machine-id" "$R"/etc/ssh/ssh_host_*

# deploy: key-only login ('*' = no password, yet not "locked"), passwordless sudo so the provision
# bootstrap really takes its `sudo -n` branch. Lingering is deliberately NOT enabled here: the
# bootstrap must do it.
chroot "$R" useradd -m -u 1000 -U -s /bin/bash deploy
chroot "$R" usermod -p '*' deploy
install -d -m 700 -o 1000 -g 1000 "$R/home/deploy/.ssh"
echo 'deploy ALL=(ALL:ALL) NOPASSWD: ALL' > "$R/etc/sudoers.d/deploy"; chmod 440 "$R/etc/sudoers.d/deploy"

cat > "$R/etc/ssh/sshd_config.d/10-togo-test.conf" <<'EOF'
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UseDNS no
EOF

# Caddy as a system service with its admin API on localhost:2019 and no site yet; the bootstrap
# appends its import line to this file.
cat > "$R/etc/caddy/Caddyfile" <<'EOF'
# Main Caddyfile of a togo test host. Sites are added by `togo provision` / `togo deploy`.
{
	admin localhost:2019
}
EOF
chroot "$R" systemctl enable caddy.service ssh.service >/dev/null 2>&1

# Units that only make sense on a real machine, and would slow the boot or fail in a container.
for u in e2scrub_reap.service e2scrub_all.timer fstrim.timer apt-daily.timer apt-daily-upgrade.timer \
         dpkg-db-backup.timer systemd-pstore.service getty@tty1.service; do
  chroot "$R" systemctl disable "$u" >/dev/null 2>&1 || true
done
chroot "$R" systemctl mask console-getty.service systemd-networkd-wait-online.service \
  systemd-timesyncd.service >/dev/null 2>&1 || true

chroot "$R" apt-get clean
rm -rf "$R"/var/lib/apt/lists/* "$R"/usr/share/doc/* "$R"/usr/share/man/* "$R"/usr/share/locale/* \
  "$R"/var/log/*.log "$R"/var/cache/debconf/*-old

# --- cache -----------------------------------------------------------------------------------
tar -C "$R" --numeric-owner --xattrs --xattrs-include='*' -cf - . | zstd -q -T0 -3 -f -o "$TARBALL.tmp.$$"
mv -f "$TARBALL.tmp.$$" "$TARBALL"
touch "$R/.ready"
rm -rf "$IMAGE"; mv "$R" "$IMAGE"
log "image ready in $(( $(date +%s) - t0 )) s: $TARBALL ($(du -h "$TARBALL" | cut -f1))"
