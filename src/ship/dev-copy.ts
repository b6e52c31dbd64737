// A development copy of the app on a deploy host (`togo dev --type sync`), as data: where it lives
// (`<app_dir>-dev`, beside the live app dir and never inside it), the scripts that lay it out, start,
// restart, check and remove it, and which host it goes to. The copy has the release layout (one
// release folder `vdev`, its `.env`, logs/dev.log, run/dev.pid) so `deploy.run` starts it exactly
// as a deploy would, under togo's process manager on a port of its own: the live release, its
// unit, its `current` and its port are never touched.
import type { Spec, Target } from "../core/spec.js";
import { q, script } from "../core/shell.js";
import { workspaceOf } from "../core/workspace.js";
import { command, type Command } from "../exec/transport.js";
import { paths, processStartScript, processStatusScript, stopByPidFile } from "./scripts.js";

/** The copy's release name: its folder is `vdev`, its log logs/dev.log, its pid file run/dev.pid. */
export const DEV_VERSION = "dev";
/** Ports the copy may take on the host (away from app_port and the blue-green range's usual start). */
export const DEV_PORTS = { from: 40000, to: 44999 };

/** `<app_dir>-dev`: a sibling of the live app dir, so removing it can never reach a release. */
export function devAppDir(appDir: string): string {
  return `${appDir.replace(/\/+$/, "")}-dev`;
}

/** Where the artifact lands in the copy: the release folder, keeping its file name (as a deploy does). */
export function devArtifactPath(appDir: string, binary: string): string {
  const name = binary.replace(/\/+$/, "").split("/").pop()!;
  return `${devAppDir(appDir)}/v${DEV_VERSION}/${name}`;
}

/** Lays the copy out: its folder (0700), logs/, run/ and the release folder. */
export function devLayoutScript(appDir: string): string {
  const p = paths(devAppDir(appDir));
  return script(`mkdir -p ${p.dir} && chmod 700 ${p.dir} || exit 1`, `mkdir -p ${p.logs} ${p.run} ${p.release(DEV_VERSION)}`);
}

/** Writes the copy's `.env` from stdin (0600, made by mktemp, renamed into place; values never on a command line). */
export function devEnvScript(appDir: string): string {
  return script(`cd ${paths(devAppDir(appDir)).dir} || exit 1`, `umask 077`, `t=$(mktemp .env.XXXXXX) || exit 1`, `cat > "$t" && mv -f "$t" .env`);
}

/** Stops the copy (if it runs) and starts it again on `port` with its `.env`. */
export function devRestartScript(appDir: string, run: string, port: number): string {
  const dir = devAppDir(appDir);
  return script(stopByPidFile(paths(dir).pid(DEV_VERSION), 5), processStartScript({ appDir: dir, name: DEV_VERSION, version: DEV_VERSION, run, port, envFile: "env" }));
}

/** Stops the copy and removes its folder: nothing of it is left on the host. */
export function devRemoveScript(appDir: string): string {
  const p = paths(devAppDir(appDir));
  return script(stopByPidFile(p.pid(DEV_VERSION), 5), `rm -rf ${p.dir}`);
}

/** The copy's log from its end on (`tail -F`: it follows the file across restarts). */
export function devFollowLogScript(appDir: string): string {
  return `tail -n 0 -F ${paths(devAppDir(appDir)).log(DEV_VERSION)} 2>/dev/null`;
}

/** The copy as named Commands. */
export function devCopy(appDir: string) {
  const c = (op: string, text: string, what: string, input?: string): Command => command(op, text, { what, ...(input === undefined ? {} : { input }) });
  return {
    dir: devAppDir(appDir),
    layout: () => c("dev.layout", devLayoutScript(appDir), "creating the development copy"),
    env: (dotenv: string) => c("dev.env", devEnvScript(appDir), "writing the development copy's .env", dotenv),
    freePort: (start: number) =>
      c("dev.port", devFreePortScript(start), "finding a free port for the development copy"),
    restart: (run: string, port: number) => c("dev.restart", devRestartScript(appDir, run, port), `starting the development copy on port ${port}`),
    status: () => c("dev.status", processStatusScript(devAppDir(appDir), DEV_VERSION), "checking the development copy"),
    followLog: () => c("dev.log", devFollowLogScript(appDir), "following the development copy's log"),
    remove: () => c("dev.remove", devRemoveScript(appDir), "removing the development copy"),
  };
}

/** A free port in DEV_PORTS on the host's loopback, scanning from `start`. */
export function devFreePortScript(start: number): string {
  // Read from /proc/net like a deploy's candidate port (no tools needed on the host).
  return script(
    `p=${q(start)}; n=0`,
    `while [ $n -le ${DEV_PORTS.to - DEV_PORTS.from} ]; do`,
    `  h=$(printf '%04X' $p)`,
    `  if ! cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '{print $2}' | grep -qi ":$h\$"; then echo $p; exit 0; fi`,
    `  p=$((p+1)); n=$((n+1)); if [ $p -gt ${DEV_PORTS.to} ]; then p=${DEV_PORTS.from}; fi`,
    `done`,
    `exit 1`,
  );
}

/**
 * The host a development copy goes to. vps: the spec's host (a fleet's first host), the way the
 * driver makes its targets; aws: the instance in the stack's outputs (`public_ip`, or the first of
 * `hosts`; `ssh_user`). Undefined when there is none (aws not provisioned). Other drivers have no
 * SSH host: a config problem the manager reports.
 */
export async function devTarget(spec: Spec): Promise<Target | undefined> {
  const base = { port: spec.sshPort, identityFile: spec.identityFile, knownHosts: spec.knownHosts, sshConfig: spec.sshConfig, appDir: spec.appDir, url: `http://127.0.0.1:${spec.dev.port}` };
  if (spec.provider === "aws") {
    const { outputs } = await import("../infra/runner.js");
    const out = await outputs(spec, workspaceOf(spec).stackName("aws"));
    const host = Array.isArray(out.hosts) && typeof out.hosts[0] === "string" ? out.hosts[0] : typeof out.public_ip === "string" ? out.public_ip : undefined;
    if (!host) return undefined;
    return { ...base, host, user: typeof out.ssh_user === "string" ? out.ssh_user : (spec.user ?? "deploy") };
  }
  const host = spec.host ?? spec.hosts?.[0];
  return host ? { ...base, host, user: spec.user } : undefined;
}
