// The vps bootstrap: an idempotent host setup run by terraform's remote-exec as the deploy user.
import { q, qpath, script } from "../../src/core/shell.js";
import { importLine } from "../../src/ship/caddy.js";
import * as S from "../../src/ship/scripts.js";

export interface BootstrapInput {
  appDir: string;
  installCaddy: boolean;
  caddyDir: string;
  caddyfile: string;
}

/**
 * Idempotent host setup: the app layout; systemd (lingering for the user unit); Caddy (installed
 * with the host's package manager only when asked) and its site directory + import line. Steps
 * needing root run as root, with `sudo -n`, or are reported with the command to run.
 */
export function bootstrapScript(b: BootstrapInput): string {
  const dir = qpath(b.appDir);
  const cdir = qpath(b.caddyDir);
  const cfile = qpath(b.caddyfile);
  const imp = q(importLine(b.caddyDir));
  return script(
    `set -eu`,
    `echo "togo bootstrap on $(uname -n) as $(id -un)"`,
    S.layoutScript(b.appDir),
    `echo "app_dir ready: $(cd ${dir} && pwd)"`,
    `if [ "$(id -u)" = 0 ]; then as_root() { "$@"; }`,
    `elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then as_root() { sudo -n "$@"; }`,
    `else as_root() { return 1; }; fi`,
    `me=$(id -un)`,
    `if [ -d /run/systemd/system ]; then`,
    `  echo "systemd: yes (releases run as a user unit)"`,
    `  if ! loginctl show-user "$me" -p Linger 2>/dev/null | grep -q '=yes'; then`,
    `    loginctl enable-linger "$me" 2>/dev/null || as_root loginctl enable-linger "$me" 2>/dev/null || echo "WARNING: lingering is off for $me, so its services stop at logout; as root run: loginctl enable-linger $me"`,
    `  fi`,
    `else`,
    `  echo "systemd: no (PID 1 is $(cat /proc/1/comm 2>/dev/null || echo unknown)); releases run under togo's process manager"`,
    `fi`,
    `if ! command -v caddy >/dev/null 2>&1; then`,
    b.installCaddy
      ? script(
          `  echo "installing Caddy"`,
          `  if command -v apt-get >/dev/null 2>&1; then as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q caddy || { as_root apt-get update -q && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q caddy; }`,
          `  elif command -v dnf >/dev/null 2>&1; then as_root dnf install -y caddy`,
          `  elif command -v apk >/dev/null 2>&1; then as_root apk add --no-cache caddy`,
          `  elif command -v pacman >/dev/null 2>&1; then as_root pacman -S --noconfirm caddy`,
          `  elif command -v zypper >/dev/null 2>&1; then as_root zypper --non-interactive install caddy`,
          `  else echo "no known package manager to install Caddy with" >&2; false; fi || { echo "installing Caddy failed: it needs root (or passwordless sudo for $me)" >&2; exit 1; }`,
        )
      : `  echo "caddy: not installed (set deploy.options.install_caddy: true to install it)"`,
    `fi`,
    `if command -v caddy >/dev/null 2>&1; then`,
    `  echo "caddy: $(caddy version 2>/dev/null | head -n 1)"`,
    `  if [ ! -w ${cdir} ]; then as_root mkdir -p ${cdir} && as_root chown "$me" ${cdir} || echo "WARNING: cannot create ${b.caddyDir} for $me; as root run: mkdir -p ${b.caddyDir} && chown $me ${b.caddyDir}"; fi`,
    `  if [ -f ${cfile} ] && ! grep -qxF ${imp} ${cfile}; then`,
    `    printf '\\n%s\\n' ${imp} | as_root tee -a ${cfile} >/dev/null || echo "WARNING: cannot add the import line to ${b.caddyfile}; as root append: ${importLine(b.caddyDir)}"`,
    `  fi`,
    `fi`,
    `echo "togo bootstrap done"`,
  );
}
