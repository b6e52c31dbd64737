#!/usr/bin/env bash
# The test command (README, .ci/run): makes sure what the integration tests start is here — as root
# on Debian it installs what is missing, elsewhere it names every missing package and the one
# command that installs them — and only then runs npm ci, tsc --noEmit and every test. Everything
# is checked before anything runs, so it never fails halfway for want of a tool.
set -euo pipefail
cd "${BASH_SOURCE[0]%/*}/.."

# command the tests run → the Debian package that has it
DEPS=(
  sshd:openssh-server rsync:rsync caddy:caddy docker-registry:docker-registry skopeo:skopeo
  dockerd:docker.io ip:iproute2 debootstrap:debootstrap zstd:zstd systemd-nspawn:systemd-container
  git:git
)
# sshd, dockerd and ip live in sbin, which a user's PATH often lacks.
sbin=${TOGO_SBIN_DIRS-/usr/local/sbin:/usr/sbin:/sbin}
search="$PATH${sbin:+:$sbin}"
has() { PATH="$search" command -v "$1" >/dev/null 2>&1; }

missing() {
  pkgs=()
  lines=()
  for d in "${DEPS[@]}"; do
    has "${d%%:*}" || { pkgs+=("${d#*:}"); lines+=("  ${d%%:*} (Debian package ${d#*:})"); }
  done
}

install() {
  export DEBIAN_FRONTEND=noninteractive
  local want=() pinned=()
  for p in "$@"; do
    # systemd-nspawn must match the installed systemd: the newer candidate would drag systemd along.
    if [ "$p" = systemd-container ]; then pinned+=("systemd-container=$(dpkg-query -W -f='${Version}' systemd)"); else want+=("$p"); fi
  done
  apt-get update -qq
  apt-get install -y -qq "${want[@]}" "${pinned[@]}" >/dev/null
}

missing
if [ ${#pkgs[@]} -gt 0 ] && [ "$EUID" = 0 ] && has apt-get && has dpkg-query; then
  echo "installing what the integration tests need: ${pkgs[*]}" >&2
  install "${pkgs[@]}"
  missing
fi

problems=()
if [ ${#pkgs[@]} -gt 0 ]; then
  problems+=("the integration tests start these, not found on PATH${sbin:+ (nor in $sbin)}:")
  problems+=("${lines[@]}")
  problems+=("install them with: sudo apt-get install -y ${pkgs[*]}")
  problems+=("  (systemd-container at the installed systemd's version: systemd-container=\$(dpkg-query -W -f='\${Version}' systemd))")
fi
if ! has node || ! has npm; then
  problems+=("node and npm (Node.js >= 20) are not on PATH: https://nodejs.org/en/download or Debian's nodejs + npm")
elif ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  problems+=("Node.js >= 20 is required; this is $(node -v)")
fi
has terraform || problems+=("terraform (>= 1.5) is not on PATH: it is not a Debian package; see https://developer.hashicorp.com/terraform/install")
[ "$EUID" = 0 ] || problems+=("run as root: the systemd hosts the tests boot are systemd-nspawn containers, and the tests make network namespaces")

if [ ${#problems[@]} -gt 0 ]; then
  printf 'togo tests: nothing was run:\n' >&2
  printf '%s\n' "${problems[@]}" >&2
  exit 1
fi

# Checking alone (the test of this script uses it): the run would go ahead from here.
[ -z "${TOGO_TEST_CHECK_ONLY:-}" ] || { echo "everything the tests need is here"; exit 0; }

npm ci --no-audit --no-fund
npx tsc --noEmit
npm test
