// Mutation check for the deploy engine's protective branches: each mutation removes one branch
// that protects a user, in a throwaway copy of the working tree, and the unit tests must fail.
// `node scripts/mutations.mjs` (a few minutes); prints one line per mutation and exits 1 if any
// mutation survives. Nothing in this checkout is changed.
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const UNDO = `  await t.transport.run(t.dir.restore(s.previous, s.takeNextEnv), { check: false });
  if (s.previous) await t.transport.run(service.restart(s.previous), { check: false });
  else await t.transport.run(service.stop(), { check: false });`;
const mutations = [
  { name: "no undo after a failed cutover (deploy)", file: "src/ship/switch.ts", from: UNDO, to: `  if (!s.takeNextEnv) {\n${UNDO}\n  }` },
  { name: "no undo after a failed rollback", file: "src/ship/switch.ts", from: UNDO, to: `  if (s.takeNextEnv) {\n${UNDO}\n  }` },
  { name: "no same-version/different-bytes guard", file: "src/ship/deploy.ts", from: `if (installed !== "" && version === ctx.previous) {`, to: `if (false) {` },
  { name: "no failure record after a failed release_cmd", file: "src/ship/deploy.ts", from: `        run.onFailure(FAILED_RECORD, () => t.transport.run(t.dir.recordFailed(version), { check: false }));\n`, to: "" },
  { name: "no dirty-tree version suffix", file: "src/ship/artifact.ts", from: "return described.endsWith(\"-dirty\") ? `${described}.${sha256.slice(0, 8)}` : described;", to: "return described;" },
  { name: "aws: a hosts output with an instance lacking an address makes a smaller fleet", file: "drivers/aws/index.ts", from: "    if (missing.length > 0) {\n", to: "    if (false) {\n" },
  { name: "aws: an earlier togo's instance (caddy_site empty) gets a :80 site", file: "drivers/aws/index.ts", from: "return out.caddy_site ? { ...rest, domain: out.caddy_site } : rest;", to: "return { ...rest, domain: out.caddy_site || \":80\" };" },
  { name: "racy files vouched for in the digest cache", file: "src/ship/artifact.ts", from: "const trusted = (f: FileEntry) => f.cached || f.changed < startMs - (f.coarse ? 2000 : 100);", to: "const trusted = (f: FileEntry) => true;" },
  { name: "the device left out of a file's stat key", file: "src/ship/artifact.ts", from: "${s.ino}:${s.dev}:${s.mode}", to: "${s.ino}:0:${s.mode}" },
  { name: "a digest cache of another tree believed", file: "src/ship/artifact.ts", from: "c.format === CACHE_FORMAT && c.root === root &&", to: "c.format === CACHE_FORMAT &&" },
  { name: "an unwritable digest cache is fatal", file: "src/ship/artifact.ts", from: "    try {\n      rmSync(tmp, { force: true });\n    } catch {", to: "    {\n      rmSync(tmp, { force: true });\n    } if (0) {" },
  { name: "a digest cache inside the tree it describes", file: "src/ship/artifact.ts", from: "if (opts.cache && !isOutside(root, resolve(opts.cache))) opts = { ...opts, cache: undefined };", to: "" },
  { name: "the digest cache of `binary: .` in the project's .togo", file: "src/core/workspace.ts", from: "if (rel === \"..\" || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return", to: "if (true) return" },
  { name: "progress notes under --json", file: "src/core/log.ts", from: "      if (opts.progress === false) return;\n", to: "" },
  { name: "no clearing of .failed on redeploy", file: "src/ship/scripts.ts", from: "    `if [ -f .failed ]; then t=$(mktemp .failed.XXXXXX) && grep -vxF ${q(version)} .failed > \"$t\"; mv -f \"$t\" .failed; fi`,\n", to: "" },
];

const files = execFileSync("git", ["ls-files", "-co", "--exclude-standard"], { cwd: root, encoding: "utf8" }).split("\n").filter(Boolean);
const work = mkdtempSync(join(tmpdir(), "togo-mutations-"));
let survived = 0;
try {
  for (const f of files) {
    mkdirSync(dirname(join(work, f)), { recursive: true });
    cpSync(join(root, f), join(work, f));
  }
  symlinkSync(join(root, "node_modules"), join(work, "node_modules"));
  for (const m of mutations) {
    const path = join(work, m.file);
    const original = readFileSync(path, "utf8");
    if (original.split(m.from).length !== 2) throw new Error(`${m.name}: the text to mutate is not in ${m.file} exactly once (update this script)`);
    writeFileSync(path, original.replace(m.from, m.to));
    const r = spawnSync("npx", ["jest", "test/unit", "--silent"], { cwd: work, encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "--experimental-vm-modules" } });
    writeFileSync(path, original);
    const failing = [...`${r.stdout}${r.stderr}`.matchAll(/● (.+)$/gm)].map((x) => x[1].trim());
    const killed = r.status !== 0 && failing.length > 0;
    if (!killed) survived++;
    console.log(`${killed ? "killed  " : "SURVIVED"} ${m.name}${killed ? ` — failing: ${[...new Set(failing)].slice(0, 3).join(" | ")}` : ""}`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
process.exit(survived ? 1 : 0);
