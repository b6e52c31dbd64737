// The Service: load and validate the config, resolve the driver (DEPLOY_PROVIDER wins over
// deploy.provider), and hand both to a command. Nothing runs before all of that has passed.
import { loadConfig, redactFromEnv } from "../config/load.js";
import { ConfigError, TogoError } from "../core/errors.js";
import type { Reporter } from "../core/log.js";
import { createDriver, loadPlugins, registerDriver } from "../core/registry.js";
import { newReloader, registerReloader, type DevConfig, type Manager } from "../dev/reloader.js";
import { registerStore, unknownStore } from "../artifacts/store.js";
import { resolveSecrets } from "../config/secrets.js";
import { workspaceOf } from "../core/workspace.js";
import type { Driver, RunOptions, Spec } from "../core/spec.js";

export interface Opened {
  spec: Spec;
  driver: Driver;
}

export const defaultRunOptions: RunOptions = { force: false, yes: false, lockWait: 0, json: false };

/** What a plugin's default export receives. */
const PLUGIN_API = { registerDriver, registerReloader, registerStore };

/**
 * Loads the plugins the file names (a missing one is a problem of the file: exit 2 naming it), then
 * checks what only they could make valid: the artifact store's scheme.
 */
export async function loadProjectPlugins(spec: Spec): Promise<void> {
  try {
    await loadPlugins(spec.plugins, spec.dir, PLUGIN_API);
  } catch (e) {
    if (e instanceof TogoError && e.exitCode === 2) throw new ConfigError(spec.configFile, [{ path: "plugins", expected: e.message }]);
    throw e;
  }
  const unknown = unknownStore(spec.artifacts.store);
  if (unknown) throw new ConfigError(spec.configFile, [{ path: "artifacts.store", value: spec.artifacts.store, expected: unknown }]);
}

export async function openService(
  configFile: string,
  log: Reporter,
  opts: Partial<RunOptions> = {},
  env: Record<string, string | undefined> = process.env,
  signal?: AbortSignal,
  stage?: string,
): Promise<Opened> {
  const spec = loadConfig(configFile, { env, stage });
  // A driver the file names that cannot be had is a problem of the file: say which file.
  const inFile = async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof TogoError && e.exitCode === 2) throw new ConfigError(spec.configFile, [{ path: key, expected: e.message }]);
      throw e;
    }
  };
  await loadProjectPlugins(spec);
  const source = env.DEPLOY_PROVIDER ? "DEPLOY_PROVIDER" : "deploy.provider";
  const make = () => createDriver(spec.provider, { log, opts: { ...defaultRunOptions, ...opts }, signal }, source);
  const driver = source === "deploy.provider" ? await inFile(source, make) : await make();
  const problems = driver.validate?.(spec) ?? [];
  if (problems.length > 0) throw new ConfigError(spec.configFile, redactFromEnv(problems, spec));
  return { spec, driver };
}

export interface OpenedDev {
  config: DevConfig;
  manager: Manager;
}

/**
 * `togo dev`: the config, the plugins, the reloader (`--type` over dev.type; an unknown one is
 * exit 2 before anything runs) and its checks. The app's environment (deploy.env, resolved
 * secrets, dev.env, PORT) only when `withEnv`: `togo dev status` needs no secrets.
 */
export async function openDev(
  configFile: string,
  log: Reporter,
  opts: { type?: string; stage?: string; withEnv: boolean },
  env: Record<string, string | undefined> = process.env,
): Promise<OpenedDev> {
  const spec = loadConfig(configFile, { env, stage: opts.stage });
  await loadProjectPlugins(spec);
  const type = opts.type ?? spec.dev.type;
  const manager = await newReloader(type, opts.type ? "--type" : "dev.type");
  const stateFile = workspaceOf(spec).devStateFile;
  const config: DevConfig = { spec, log, stateFile, env: {} };
  const problems = manager.validate(config);
  if (problems.length > 0) throw new ConfigError(spec.configFile, redactFromEnv(problems, spec));
  if (opts.withEnv) {
    const secrets = await resolveSecrets(spec.secrets, spec.dir, env);
    config.env = { ...spec.env, ...secrets, ...spec.dev.env, PORT: String(spec.dev.port) };
  }
  return { config, manager };
}
