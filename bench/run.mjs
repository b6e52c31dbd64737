// `npm run bench`: every bench/*.mjs but the helpers, one after another (they share the machine).
import { readdirSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const benches = readdirSync(here).filter((f) => f.endsWith(".mjs") && !["run.mjs", "lib.mjs"].includes(f) && (only.length === 0 || only.some((o) => f.startsWith(o))));
let failed = 0;
for (const f of benches.sort()) {
  console.log(`\n# bench/${f}`);
  const r = spawnSync(process.execPath, [join(here, f)], { stdio: "inherit" });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
