// Builds the CLI into dist/: one ESM bundle (plus lazily loaded chunks) so `togo status` loads a few
// files instead of hundreds. cdktf, constructs and the providers stay external: they load only when
// a command synthesizes, and must be the very packages cdktf-cli sees. Type-checking is `tsc --noEmit`.
import { build } from "esbuild";
import { renameSync, rmSync } from "node:fs";

// Built beside dist/ and swapped in, so a run of the CLI never sees a half-written dist/.
const dist = new URL("../dist", import.meta.url).pathname;
const next = `${dist}.${process.pid}`;
await build({
  entryPoints: { togo: "src/cli/main.ts" },
  absWorkingDir: new URL("..", import.meta.url).pathname,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  outdir: next,
  chunkNames: "chunks/[name]-[hash]",
  external: ["cdktf", "constructs", "@cdktf/*", "cdktf-cli"],
  // Bundled CommonJS dependencies still call require().
  banner: { js: "import { createRequire as __togoRequire } from 'node:module'; const require = __togoRequire(import.meta.url);" },
  minify: true,
  // Names stay readable in stack traces (TOGO_DEBUG=1).
  keepNames: true,
  logLevel: "warning",
});
rmSync(dist, { recursive: true, force: true });
renameSync(next, dist);
