#!/usr/bin/env node
// The togo command. Runs the bundle (dist/togo.cjs, built by `npm run build`, which `npm install`
// runs) through a V8 code cache kept beside it: parsing and compiling the CLI is most of what a fast
// command like `togo status` costs, and Node 20 caches neither for us.
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import vm from "node:vm";

const bundle = fileURLToPath(new URL("../dist/togo.cjs", import.meta.url));
if (!existsSync(bundle)) {
  process.stderr.write("togo: dist/ is missing; run `npm run build` in the togo package first\n");
  process.exit(1);
}
// One cache per command: V8 caches what a run compiled, and `status` compiles other code than `deploy`.
const command = process.argv.slice(2).find((a) => /^[a-z]+$/.test(a)) ?? "none";
const cacheFile = `${bundle}.${command}.cache`;
let cachedData;
try {
  cachedData = readFileSync(cacheFile);
} catch {
  // first run, or the cache could not be written: compile from source
}
const source = readFileSync(bundle, "utf8");
const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
  filename: bundle,
  cachedData,
});
// The bundle's import() of plugins goes through here (src/registry.ts).
globalThis.__togoImport = (url) => import(url);
if (!cachedData || script.cachedDataRejected) {
  // Written at the end of the run, so the functions this run compiled are in it too.
  process.once("beforeExit", () => {
    try {
      const tmp = `${cacheFile}.${process.pid}`;
      writeFileSync(tmp, script.createCachedData());
      renameSync(tmp, cacheFile);
    } catch {
      // a read-only install: run without a cache
    }
  });
}
const module = { exports: {} };
script.runInThisContext()(module.exports, createRequire(bundle), module, bundle, dirname(bundle));
