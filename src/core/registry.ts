// Registries by name: drivers today, reloaders and artifact stores beside them. A registry knows
// nothing of what it holds; built-ins are registered lazily by the CLI's composition root, so a
// command pays only for what it uses and the core never imports a driver.
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { TogoError, UnknownDriverError } from "./errors.js";
import type { Reporter } from "./log.js";
import type { Driver, RunOptions } from "./spec.js";

const NAME = /^[a-z][a-z0-9-]{0,40}$/;

export class Registry<F> {
  private readonly factories = new Map<string, F>();
  /** Registered by name but not loaded yet: name → the import that registers it. */
  private readonly lazy = new Map<string, () => Promise<unknown>>();

  constructor(
    readonly kind: string,
    private readonly unknown: (name: string, known: string[], source: string) => Error,
  ) {}

  register(name: string, factory: F): void {
    if (!NAME.test(name)) throw new TogoError(`${this.kind} name "${name}" must match ${NAME}`, 2);
    this.factories.set(name, factory);
  }

  /** Makes `name` known; `load` (an import that calls register) runs when it is first asked for. */
  registerLazy(name: string, load: () => Promise<unknown>): void {
    if (!this.factories.has(name)) this.lazy.set(name, load);
  }

  unregister(name: string): void {
    this.factories.delete(name);
    this.lazy.delete(name);
  }

  has(name: string): boolean {
    return this.factories.has(name) || this.lazy.has(name);
  }

  /** Every name, loaded or not, sorted. */
  names(): string[] {
    return [...new Set([...this.factories.keys(), ...this.lazy.keys()])].sort();
  }

  async get(name: string, source = "togo.yaml"): Promise<F> {
    const load = this.lazy.get(name);
    if (load && !this.factories.has(name)) {
      await load();
      this.lazy.delete(name);
    }
    const factory = this.factories.get(name);
    if (!factory) throw this.unknown(name, this.names(), source);
    return factory;
  }
}

// --- drivers ---

export interface DriverContext {
  log: Reporter;
  opts: RunOptions;
  /** Aborted when the user interrupts (Ctrl-C, SIGTERM): stages stop and clean up. */
  signal?: AbortSignal;
}

export type DriverFactory = (ctx: DriverContext) => Driver;

const driverRegistry = new Registry<DriverFactory>("driver", (name, known, source) => new UnknownDriverError(name, known, source));

export function registerDriver(name: string, factory: DriverFactory): void {
  driverRegistry.register(name, factory);
}

export function registerLazyDriver(name: string, load: () => Promise<unknown>): void {
  driverRegistry.registerLazy(name, load);
}

/** Registered driver names (loaded or not), sorted. */
export function drivers(): string[] {
  return driverRegistry.names();
}

/** For tests: forget a driver registered by the test itself. */
export function unregisterDriver(name: string): void {
  driverRegistry.unregister(name);
}

export async function createDriver(name: string, ctx: DriverContext, source = "deploy.provider"): Promise<Driver> {
  return (await driverRegistry.get(name, source))(ctx);
}

// --- plugins ---

/** What a plugin's default export receives. */
export interface PluginApi {
  registerDriver: typeof registerDriver;
  [more: string]: unknown;
}

/**
 * Loads the npm packages named under `plugins:`, resolved from the project directory. A plugin
 * either registers itself on import or exports a function that receives the plugin API, which
 * keeps it free of a second copy of togo's registries.
 */
export async function loadPlugins(plugins: string[], projectDir: string, api: PluginApi): Promise<void> {
  const require = createRequire(join(projectDir, "package.json"));
  for (const name of plugins) {
    let resolved: string;
    try {
      resolved = require.resolve(name);
    } catch {
      throw new TogoError(`plugin "${name}" (plugins: in togo.yaml) is not installed in ${projectDir}; run: npm install ${name}`, 2);
    }
    const mod = (await importModule(pathToFileURL(resolved).href)) as { default?: unknown };
    if (typeof mod.default === "function") await (mod.default as (api: PluginApi) => unknown)(api);
  }
}

/**
 * `import()` of a file outside the bundle. Inside the code-cached bundle V8 loses the loader a
 * dynamic import needs, so bin/togo.js (a real ES module) lends its own; from source, plain import().
 */
function importModule(url: string): Promise<unknown> {
  const lent = (globalThis as { __togoImport?: (url: string) => Promise<unknown> }).__togoImport;
  return lent ? lent(url) : import(url);
}
