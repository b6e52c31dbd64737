// The README's test command on a machine without the test servers: it stops at once, naming each
// missing package and the one command that installs them, and runs nothing (no npm ci, no tests).
import { cpSync, mkdirSync, readdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { cleanupTempDirs, ROOT, tempDir } from "../helpers/index.js";

afterAll(cleanupTempDirs);

const PACKAGES = ["openssh-server", "rsync", "caddy", "docker-registry", "skopeo", "docker.io", "iproute2", "debootstrap", "zstd", "systemd-container", "git"];

test("with the test servers hidden from PATH it names every missing package and the install command, and runs nothing", async () => {
  // A copy of the script in a project of its own: were the check to pass, nothing of the repo is touched.
  const dir = tempDir("togo-testcmd-");
  mkdirSync(join(dir, "scripts"));
  cpSync(join(ROOT, "scripts", "test.sh"), join(dir, "scripts", "test.sh"));
  const bin = join(dir, "bin");
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, "node"));
  const before = readdirSync(dir).sort();
  // apt-get is hidden too, so even as root it cannot install: it must say what to install instead.
  const r = await execa("/bin/bash", [join(dir, "scripts", "test.sh")], { env: { PATH: bin, TOGO_SBIN_DIRS: "" }, extendEnv: false, reject: false });
  const said = `exit ${r.exitCode}\n--- stderr ---\n${r.stderr}\n--- stdout ---\n${r.stdout}`;
  expect({ code: r.exitCode, said }).toMatchObject({ code: 1 });
  expect(r.stderr).toMatch(/^togo tests: nothing was run:\n/);
  for (const p of PACKAGES) expect({ said, names: r.stderr.includes(`(Debian package ${p})`) }).toMatchObject({ names: true });
  expect(r.stderr).toContain(`install them with: sudo apt-get install -y ${PACKAGES.join(" ")}`);
  expect(r.stderr).toContain("terraform (>= 1.5) is not on PATH");
  expect(r.stderr).toContain("node and npm (Node.js >= 20) are not on PATH");
  expect(r.stdout).toBe("");
  expect(readdirSync(dir).sort()).toEqual(before);
});

test("on this machine (every tool there) the check passes", async () => {
  const r = await execa("/bin/bash", [join(ROOT, "scripts", "test.sh")], { env: { ...process.env, TOGO_TEST_CHECK_ONLY: "1" }, reject: false });
  expect({ code: r.exitCode, stderr: r.stderr, stdout: r.stdout }).toEqual({ code: 0, stderr: "", stdout: "everything the tests need is here" });
});
