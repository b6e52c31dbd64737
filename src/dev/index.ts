// The built-in reloader types, by name. Each module registers itself when loaded; it is loaded only
// when `togo dev` asks for its type.
import { registerLazyReloader } from "./reloader.js";

export const builtinReloaders: Record<string, () => Promise<unknown>> = {
  docker: () => import("./docker.js"),
  process: () => import("./process.js"),
  sync: () => import("./sync.js"),
};

export function registerBuiltinReloaders(): void {
  for (const [type, load] of Object.entries(builtinReloaders)) registerLazyReloader(type, load);
}
