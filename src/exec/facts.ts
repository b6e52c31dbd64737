// What a host has, probed with one small script: its home, whether PID 1 is systemd and the user
// manager answers, Caddy, rsync. The shipping strategy chooses its service manager from this.
import { command, type Command, type HostFacts } from "./transport.js";

export function hostFactsCommand(): Command {
  const yn = (name: string, test: string) => `if ${test}; then echo ${name}=yes; else echo ${name}=no; fi`;
  return command(
    "host.facts",
    [
      `printf 'home=%s\\n' "$HOME"`,
      yn("systemd", "[ -d /run/systemd/system ]"),
      `XDG_RUNTIME_DIR="\${XDG_RUNTIME_DIR:-/run/user/$(id -u)}"; export XDG_RUNTIME_DIR`,
      yn("user_systemd", `[ -d /run/systemd/system ] && systemctl --user show-environment >/dev/null 2>&1 && loginctl show-user "$(id -un)" -p Linger 2>/dev/null | grep -q '=yes'`),
      yn("caddy", "command -v caddy >/dev/null 2>&1"),
      yn("rsync", "command -v rsync >/dev/null 2>&1"),
    ].join("\n"),
    { what: "probing the host" },
  );
}

export function parseHostFacts(out: string): HostFacts {
  const kv = Object.fromEntries(out.split("\n").filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
  return { home: kv.home ?? "", systemd: kv.systemd === "yes", userSystemd: kv.user_systemd === "yes", caddy: kv.caddy === "yes", rsync: kv.rsync === "yes" };
}
