// Builds the CLI into dist/togo.cjs: one bundle, so a command loads one file instead of hundreds,
// and CommonJS, so bin/togo.js can run it with a V8 code cache (Node 20 has no compile cache for
// ES modules). cdktf, constructs and the providers stay external: they load only when a command
// synthesizes, and must be the very packages cdktf-cli sees. Type-checking is `tsc --noEmit`.
import { build } from "esbuild";
import { renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

// Built beside dist/ and swapped in, so a run of the CLI never sees a half-written dist/.
const dist = new URL("../dist", import.meta.url).pathname;
const next = `${dist}.${process.pid}`;
// The build proxy (`togo artifacts serve`) is its own bundle: the CLI's import of it becomes a
// require of dist/artifacts-server.cjs at run time (a require: the code-cached bundle has no loader
// for import()), so fastify is never parsed by another command. The S3 SDK stays an installed
// dependency, loaded only by an s3:// store.
const serverEntry = {
  name: "artifacts-server-entry",
  setup(b) {
    b.onResolve({ filter: /artifacts\/server\/index\.js$/ }, () => ({ path: "artifacts-server", namespace: "togo-split" }));
    b.onLoad({ filter: /.*/, namespace: "togo-split" }, () => ({
      contents: 'module.exports = require(require("node:path").join(__dirname, "artifacts-server.cjs"));',
      loader: "js",
    }));
  },
};
/** What both bundles share. */
const bundleOptions = {
  absWorkingDir: new URL("..", import.meta.url).pathname,
  bundle: true,
  format: "cjs",
  outExtension: { ".js": ".cjs" },
  platform: "node",
  target: "node20",
  outdir: next,
  // The sources are ES modules; in the bundle import.meta.url is the bundle's own URL.
  define: { "import.meta.url": "__togo_url" },
  banner: { js: "const __togo_url = require('node:url').pathToFileURL(__filename).href;" },
  minify: true,
  // Names stay readable in stack traces (TOGO_DEBUG=1).
  keepNames: true,
  logLevel: "warning",
};
await build({ ...bundleOptions, entryPoints: { "artifacts-server": "src/artifacts/server/index.ts" }, external: ["@aws-sdk/*"] });
await build({
  ...bundleOptions,
  entryPoints: { togo: "bin/cli.ts" },
  plugins: [serverEntry],
  external: ["cdktf", "constructs", "@cdktf/*", "cdktf-cli", "@aws-sdk/*"],
});
// togo.yaml's JSON Schema beside the bundle, for editors (`togo init` points togo.yaml at it).
const schemaBundle = await build({
  entryPoints: ["src/config/json-schema.ts"],
  absWorkingDir: new URL("..", import.meta.url).pathname,
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  write: false,
  logLevel: "warning",
});
const loaded = { exports: {} };
new Function("module", "exports", "require", schemaBundle.outputFiles[0].text)(loaded, loaded.exports, createRequire(import.meta.url));
writeFileSync(`${next}/togo.schema.json`, `${JSON.stringify(loaded.exports.togoJsonSchema(), null, 2)}\n`);
rmSync(dist, { recursive: true, force: true });
renameSync(next, dist);
