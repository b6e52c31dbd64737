// The built-in drivers, by name. Each module registers itself when loaded; it is loaded only when
// its driver is asked for, so `togo status` on one driver pays nothing for the others (and stacks
// and provider classes load only when an operation synthesizes).
import { registerLazyDriver } from "../src/core/registry.js";

export const builtinDrivers: Record<string, () => Promise<unknown>> = {
  aws: () => import("./aws/index.js"),
  docker: () => import("./docker/index.js"),
  local: () => import("./local/index.js"),
  vps: () => import("./vps/index.js"),
};

export function registerBuiltinDrivers(): void {
  for (const [name, load] of Object.entries(builtinDrivers)) registerLazyDriver(name, load);
}
