// A new user, for real: togo packed with `npm pack`, installed into a project of its own outside this
// repository (no access to the repo's node_modules), `togo init --yes`, then provision, deploy and
// status, and `cdktf synth` / `cdktf diff` run by cdktf-cli from the user's project agree with togo.
// Afterwards git sees nothing generated that is not ignored.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { cleanupTempDirs, EXAMPLE, freePort, killPidFile, ROOT, tempDir, testEnv } from "../helpers/index.js";

afterAll(cleanupTempDirs);

async function sh(cmd: string, args: string[], cwd: string) {
  const r = await execa(cmd, args, { cwd, env: testEnv(), extendEnv: false, reject: false, all: true, timeout: 300_000 });
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.exitCode} in ${cwd}\n${String(r.all)}`);
  return String(r.stdout);
}

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
  try {
    await sh("npm", ["install", "-D", "--prefer-offline", "--no-audit", "--no-fund", tarball], dir);
    await sh("npx", ["togo", "init", "--yes", "--port", String(port)], dir);
    await sh("npx", ["togo", "provision", "--yes"], dir);
    await sh("npx", ["togo", "deploy", "--version", "1"], dir);
    expect(JSON.parse(await sh("npx", ["togo", "status", "--json"], dir))).toMatchObject({ state: "ready", version: "1" });
    expect((await (await fetch(`http://127.0.0.1:${port}/`)).text()).trim()).toBe("hello from 1");
    const synth = await sh("npx", ["cdktf", "synth"], dir);
    expect(synth).toContain("newapp-local");
    // cdktf's own plan of the stack togo applied: nothing to change.
    const diff = await sh("npx", ["cdktf", "diff"], dir);
    expect(diff).toContain("No changes");
    // What the user commits is theirs; all togo generated beside it is ignored.
    await sh("git", ["add", "togo.yaml", "cdktf.json", ".gitignore", ".github", "package.json", "package-lock.json", "server.js"], dir);
    expect(await sh("git", ["ls-files", "--others", "--exclude-standard"], dir)).toBe("");
    await sh("npx", ["togo", "destroy", "--yes"], dir);
  } finally {
    await killPidFile(join(dir, ".togo", "newapp", "run", "app.pid"));
  }
}, 600_000);
