// The reloader (togo dev): a registry of reloader types, each a Manager that runs the app for
// development with hot reload — `process` (this machine), `sync` (a deployment copy on a host),
// `docker` (a dev container), or a plugin's. The registry knows nothing of the types; built-ins are
// registered lazily (src/dev/index.ts), plugins through the plugin API's registerReloader.
import { OperationError, TogoError } from "../core/errors.js";
import type { ConfigProblem } from "../core/errors.js";
import type { Reporter } from "../core/log.js";
import { Registry } from "../core/registry.js";
import type { Spec } from "../core/spec.js";

export type DevState = "not-deployed" | "not-ready" | "ready" | "failed";

/** What a Manager gets: the Spec (with `dev` settled), where to report, and where its state lives. */
export interface DevConfig {
  spec: Spec;
  log: Reporter;
  /** The state file `togo dev status` reads (written by the running manager). */
  stateFile: string;
  /** The app's environment in development: deploy.env, resolved secrets, dev.env, PORT. */
  env: Record<string, string>;
}

/** What `togo dev status` reports, and what a running manager writes to its state file. */
export interface DevStatus {
  state: DevState;
  message: string;
  type?: string;
  /** The manager's own pid (status checks it is alive). */
  pid?: number;
  /** Where the app answers in development. */
  url?: string;
  /** ISO time of the last reload that served, and what triggered it. */
  lastReload?: string;
  reloads?: number;
  restarts?: number;
}

export interface Manager {
  readonly type: string;
  /** Problems with the config, before anything runs (paths that a build will create are not problems). */
  validate(config: DevConfig): ConfigProblem[];
  /** Pre-run setup, start, watch, reload on change, restart on crash; cleans up everything when `signal` aborts. */
  run(config: DevConfig, signal: AbortSignal): Promise<void>;
  status(config: DevConfig): Promise<DevStatus>;
}

export type ReloaderFactory = () => Manager;

export class UnknownReloaderError extends TogoError {
  constructor(type: string, known: string[], source: string) {
    super(`unknown reloader type "${type}" (from ${source}); known types: ${known.join(", ")}. Set dev.type to one of them, or name the npm package that provides it under plugins:`, 2);
  }
}
/** The manager could not start or keep the app running. */
export class ReloaderRunError extends OperationError {}
/** The manager's state could not be read. */
export class ReloaderStatusError extends OperationError {}
/** Where the app should run in development is not there (the host is unreachable or not provisioned). */
export class ReloaderTargetNotFoundError extends OperationError {}

const reloaders = new Registry<ReloaderFactory>("reloader", (type, known, source) => new UnknownReloaderError(type, known, source));

export function registerReloader(type: string, factory: ReloaderFactory): void {
  reloaders.register(type, factory);
}

export function registerLazyReloader(type: string, load: () => Promise<unknown>): void {
  reloaders.registerLazy(type, load);
}

/** Registered reloader types (loaded or not), sorted. */
export function reloaderTypes(): string[] {
  return reloaders.names();
}

export async function newReloader(type: string, source = "dev.type"): Promise<Manager> {
  return (await reloaders.get(type, source))();
}

/** For tests: forget a reloader registered by the test itself. */
export function unregisterReloader(type: string): void {
  reloaders.unregister(type);
}
