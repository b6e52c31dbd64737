// A Target (data: where a release goes) opened for work: its transport, its release folder as
// Commands, and the service manager chosen for it (probed once, lazily: `releases` needs none).
import { UsageError } from "../core/errors.js";
import type { Spec, Target } from "../core/spec.js";
import { LocalTransport } from "../exec/local.js";
import { SshTransport } from "../exec/ssh.js";
import type { Transport } from "../exec/transport.js";
import type { ShippingOptions } from "./options.js";
import { releaseDir, type ReleaseDir } from "./scripts.js";
import { chooseService, processManager, type ServiceManager, type ServiceMode } from "./service/index.js";
import { systemdManager } from "./service/systemd.js";
import { readTemplate } from "../core/template.js";
import { workspaceOf } from "../core/workspace.js";

export interface OpenTarget {
  /** `local` or `user@host:port`, for messages. */
  readonly name: string;
  readonly target: Target;
  readonly transport: Transport;
  readonly dir: ReleaseDir;
  service(): Promise<ServiceManager>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Overrides options.service (the local driver always uses the process manager). */
  serviceMode?: ServiceMode;
  /** For tests: the transport to use instead of the one the target calls for (per target for a fleet). */
  transport?: Transport | ((target: Target) => Transport);
}

export function requireRun(spec: Spec): string {
  if (!spec.run) throw new UsageError(`deploy.run is required for the ${spec.provider} driver: the command that starts the app on $PORT`);
  return spec.run;
}

export function transportFor(target: Target, o: ShippingOptions): Transport {
  if (!target.host) return new LocalTransport();
  if (!target.user) throw new UsageError(`deploy.user is required to reach ${target.host}`);
  return new SshTransport({
    host: target.host,
    user: target.user,
    port: target.port ?? 22,
    identityFile: target.identityFile,
    knownHosts: target.knownHosts,
    sshConfig: target.sshConfig,
    hostKeyChecking: o.hostKeyChecking,
    upload: o.upload,
    bwlimit: o.bwlimit,
  });
}

export function openTarget(spec: Spec, target: Target, o: ShippingOptions, opts: OpenOptions = {}): OpenTarget {
  const transport = typeof opts.transport === "function" ? opts.transport(target) : (opts.transport ?? transportFor(target, o));
  let chosen: Promise<ServiceManager> | undefined;
  const service = async (): Promise<ServiceManager> => {
    const run = requireRun(spec);
    const mode = opts.serviceMode ?? o.service;
    const kind = mode === "process" ? "process" : chooseService(mode, await transport.facts(), transport.target);
    if (kind === "process") return processManager({ appDir: target.appDir, run, port: spec.appPort });
    return systemdManager({
      app: workspaceOf(spec).qualifiedApp,
      appDir: target.appDir,
      run,
      port: spec.appPort,
      template: o.unitTemplate ? readTemplate(spec.dir, o.unitTemplate, "unit_template") : undefined,
      templateSource: o.unitTemplate,
    });
  };
  return {
    name: transport.target,
    target,
    transport,
    dir: releaseDir(target.appDir),
    service: () => (chosen ??= service()),
    close: () => transport.close(),
  };
}

/** Runs fn with the target open, always closing its connection. */
export async function withTarget<T>(spec: Spec, target: Target, o: ShippingOptions, opts: OpenOptions, fn: (t: OpenTarget) => Promise<T>): Promise<T> {
  const t = openTarget(spec, target, o, opts);
  try {
    return await fn(t);
  } finally {
    await t.close();
  }
}
