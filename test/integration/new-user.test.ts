// A new user, for real: togo packed with `npm pack`, installed into a project of its own outside this
// repository (no access to the repo's node_modules, nor to its binaries on PATH), `togo init --yes`,
// then provision, deploy and status, and `cdktf synth` / `cdktf diff` run by cdktf-cli from the user's
// project agree with togo; the schema init points editors at is the installed package's; a stage is
// what `TOGO_STAGE=staging npx cdktf synth` synthesizes. Afterwards git sees nothing generated that is
// not ignored.
import { existsSync, readdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { delimiter, dirname, join, resolve, sep } from "node:path";
import { execa } from "execa";
import { cleanupTempDirs, EXAMPLE, freePort, killPidFile, ROOT, tempDir, testEnv } from "../helpers/index.js";

afterAll(cleanupTempDirs);

/**
 * PATH without what `npm test` put there for this repository: its node_modules/.bin (with cdktf and
 * the repo's own binaries) and the node_modules/.bin of every folder above it. A user's project has
 * none of them; with them a missing `.bin/cdktf` in the project went unnoticed.
 */
function userPath(path: string, root = ROOT): string {
  const real = (p: string) => (existsSync(p) ? realpathSync(p) : resolve(p));
  const roots = [...new Set([resolve(root), real(root), real(join(root, "node_modules"))])];
  const above: string[] = [];
  for (let d = dirname(resolve(root)); ; d = dirname(d)) {
    above.push(join(d, "node_modules", ".bin"));
    if (dirname(d) === d) break;
  }
  const ours = (entry: string) => {
    const p = resolve(entry);
    return roots.some((r) => p === r || p.startsWith(r + sep) || real(p).startsWith(r + sep)) || above.includes(p);
  };
  return path.split(delimiter).filter((e) => e && !ours(e)).join(delimiter);
}

const ENV = (() => {
  const env = testEnv();
  return { ...env, PATH: userPath(env.PATH ?? "") };
})();

async function sh(cmd: string, args: string[], cwd: string, extra: Record<string, string> = {}) {
  const r = await execa(cmd, args, { cwd, env: { ...ENV, ...extra }, extendEnv: false, reject: false, all: true, timeout: 300_000 });
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.exitCode} in ${cwd}\n${String(r.all)}`);
  return String(r.stdout);
}

test("the user's PATH has nothing of this repository's", () => {
  const bin = join(ROOT, "node_modules", ".bin");
  const path = ["/usr/bin", bin, realpathSync(bin), join(dirname(ROOT), "node_modules", ".bin"), "/bin"].join(delimiter);
  expect(userPath(path)).toBe(["/usr/bin", "/bin"].join(delimiter));
  for (const entry of ENV.PATH.split(delimiter)) expect({ entry, ours: userPath(entry) === "" }).toEqual({ entry, ours: false });
});

test("npm pack → npm install -D in a project of its own → togo init --yes → provision, deploy, status → cdktf synth and diff", async () => {
  const packs = tempDir("togo-pack-");
  // dist/ is built once for the suite (global setup); packing must not rebuild it under other tests.
  await sh("npm", ["pack", "--ignore-scripts", "--pack-destination", packs], ROOT);
  const tarball = join(packs, readdirSync(packs).find((f) => f.endsWith(".tgz"))!);

  const dir = tempDir("togo-newuser-");
  const port = await freePort();
  writeFileSync(join(dir, "server.js"), readFileSync(join(EXAMPLE, "server.js")));
  writeFileSync(join(dir, "package.json"), `${JSON.stringify({ name: "newapp", version: "1.0.0", private: true, scripts: { start: "node server.js" } }, null, 2)}\n`);
  await sh("git", ["init", "-q", "."], dir);
  // Before the install nothing named cdktf or togo is reachable from this repository.
  for (const name of ["cdktf", "togo"]) {
    const found = (await execa("sh", ["-c", `command -v ${name} || true`], { cwd: dir, env: ENV, extendEnv: false })).stdout.trim();
    const repo = [realpathSync(ROOT), realpathSync(join(ROOT, "node_modules"))].map((r) => r + sep);
    expect({ name, found, fromRepo: found !== "" && (repo.some((r) => realpathSync(found).startsWith(r)) || userPath(dirname(found)) === "") }).toMatchObject({ name, fromRepo: false });
  }
  try {
    await sh("npm", ["install", "-D", "--prefer-offline", "--no-audit", "--no-fund", tarball], dir);
    await sh("npx", ["togo", "init", "--yes", "--port", String(port)], dir);
    // What `npx cdktf` and `npx togo` run: the project's own binaries.
    for (const name of ["cdktf", "togo"]) expect({ name, there: existsSync(join(dir, "node_modules", ".bin", name)) }).toEqual({ name, there: true });
    // The schema init points editors at is in the installed package, and is what `togo schema` prints.
    const pointer = /^# yaml-language-server: \$schema=(\S+)$/m.exec(readFileSync(join(dir, "togo.yaml"), "utf8"))?.[1];
    expect(pointer).toBe("./node_modules/togo/dist/togo.schema.json");
    const schemaFile = join(dir, pointer!);
    expect(existsSync(schemaFile)).toBe(true);
    const printed = await sh("npx", ["togo", "schema"], dir);
    expect(JSON.parse(readFileSync(schemaFile, "utf8"))).toEqual(JSON.parse(printed));

    await sh("npx", ["togo", "provision", "--yes"], dir);
    await sh("npx", ["togo", "deploy", "--version", "1"], dir);
    expect(JSON.parse(await sh("npx", ["togo", "status", "--json"], dir))).toMatchObject({ state: "ready", version: "1" });
    expect((await (await fetch(`http://127.0.0.1:${port}/`)).text()).trim()).toBe("hello from 1");
    const synth = await sh("npx", ["cdktf", "synth"], dir);
    expect(synth).toContain("newapp-local");
    // cdktf's own plan of the stack togo applied: nothing to change.
    const diff = await sh("npx", ["cdktf", "diff"], dir);
    expect(diff).toContain("No changes");
    // A stage: cdktf.json's `togo synth` synthesizes the one in TOGO_STAGE.
    writeFileSync(join(dir, "togo.yaml"), `${readFileSync(join(dir, "togo.yaml"), "utf8")}stages:\n  staging:\n    deploy: { app_port: ${await freePort()} }\n`);
    const staging = await sh("npx", ["cdktf", "synth"], dir, { TOGO_STAGE: "staging" });
    expect(staging).toContain("newapp-staging-local");
    expect(existsSync(join(dir, "cdktf.out", "stacks", "newapp-staging-local", "cdk.tf.json"))).toBe(true);
    // What the user commits is theirs; all togo generated beside it is ignored.
    await sh("git", ["add", "togo.yaml", "cdktf.json", ".gitignore", ".github", "package.json", "package-lock.json", "server.js"], dir);
    expect(await sh("git", ["ls-files", "--others", "--exclude-standard"], dir)).toBe("");
    await sh("npx", ["togo", "destroy", "--yes"], dir);
  } finally {
    await killPidFile(join(dir, ".togo", "newapp", "run", "app.pid"));
  }
}, 600_000);
