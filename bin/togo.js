#!/usr/bin/env node
// The togo command. The CLI is compiled to dist/ by `npm run build` (npm install runs it).
import { existsSync } from "node:fs";

const entry = new URL("../dist/togo.js", import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write("togo: dist/ is missing; run `npm run build` in the togo package first\n");
  process.exit(1);
}
await import(entry.href);
