// Builds dist/ once before the tests: integration tests run the real CLI (bin/togo.js).
import { execaSync } from "execa";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

export default function globalSetup(): void {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
  execaSync(process.execPath, [join(root, "scripts", "build.mjs")], { cwd: root, stdio: "inherit" });
}
