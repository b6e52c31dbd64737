// The CLI's composition root: the only place where the core and the built-in drivers meet. The
// core never imports a driver; it learns their names here, and loads one when it is asked for.
import { main } from "../src/cli/main.js";
import { registerBuiltinDrivers } from "../drivers/index.js";
import { registerBuiltinReloaders } from "../src/dev/index.js";

registerBuiltinDrivers();
registerBuiltinReloaders();
main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`togo: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
