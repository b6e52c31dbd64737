// The driver registry. Drivers register a factory by name; the built-in drivers are loaded lazily
// (through drivers/index.ts) so a command pays only for what it uses.
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { TogoError, UnknownDriverError } from "./errors.js";
import type { Reporter } from "./log.js";
import type { Driver, RunOptions } from "./spec.js";

export interface DriverContext {
  log: Reporter;
  opts: RunOptions;
}

export type DriverFactory = (ctx: DriverContext) => Driver;

const factories = new Map<string, DriverFactory>();
/** Built-in drivers not loaded yet: name → the import that registers it. */
const lazy = new Map<string, () => Promise<unknown>>();
let builtinsLoaded = false;

const NAME = /^[a-z][a-z0-9-]{0,40}$/;

export function registerDriver(name: string, factory: DriverFactory): void {
  if (!NAME.test(name)) throw new TogoError(`driver name "${name}" must match ${NAME}`, 2);
  factories.set(name, factory);
}

/** Registered driver names (built-ins included, loaded or not), sorted. */
export function drivers(): string[] {
  return [...new Set([...factories.keys(), ...lazy.keys()])].sort();
}

export function hasDriver(name: string): boolean {
  return factories.has(name) || lazy.has(name);
}

/** For tests: forget a driver registered by the test itself. */
export function unregisterDriver(name: string): void {
  factories.delete(name);
}

/** Makes the built-in drivers known by name; each module is imported when it is first asked for. */
export async function loadBuiltinDrivers(): Promise<void> {
  if (builtinsLoaded) return;
  builtinsLoaded = true;
  const { builtinDrivers } = await import("../../drivers/index.js");
  for (const [name, load] of Object.entries(builtinDrivers)) if (!factories.has(name)) lazy.set(name, load);
}

/**
 * Loads third-party drivers named under `plugins:`: npm packages resolved from the project
 * directory, whose import calls `registerDriver`.
 */
export async function loadPlugins(plugins: string[], projectDir: string): Promise<void> {
  const require = createRequire(join(projectDir, "package.json"));
  for (const name of plugins) {
    let resolved: string;
    try {
      resolved = require.resolve(name);
    } catch {
      throw new TogoError(
        `plugin "${name}" (plugins: in togo.yaml) is not installed in ${projectDir}; run: npm install ${name}`,
        2,
      );
    }
    const mod = (await importModule(pathToFileURL(resolved).href)) as { default?: unknown };
    // A plugin either calls registerDriver itself (importing togo) or exports a function that
    // receives it, which keeps it free of a second copy of togo's registry.
    if (typeof mod.default === "function") await (mod.default as (api: { registerDriver: typeof registerDriver }) => unknown)({ registerDriver });
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

export async function createDriver(name: string, ctx: DriverContext, source = "deploy.provider"): Promise<Driver> {
  const load = lazy.get(name);
  if (load && !factories.has(name)) {
    await load();
    lazy.delete(name);
  }
  const factory = factories.get(name);
  if (!factory) throw new UnknownDriverError(name, drivers(), source);
  return factory(ctx);
}
