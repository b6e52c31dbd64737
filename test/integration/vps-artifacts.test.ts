// A directory artifact of a few hundred files over a real sshd: the first deploy sends it all, a
// one-file change sends about one file (the new upload is built on the host from the previous
// one, its unchanged files hard-linked), an unchanged artifact sends nothing, and without rsync
// (scp) the full upload still makes an exact release. Every release is compared with the
// artifact, file by file.
import { cpSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync, chmodSync } from "node:fs";
import { join, relative } from "node:path";
import { afterAll, beforeAll, expect, test } from "@jest/globals";
import { artifactSha256 } from "../../src/ship/artifact.js";
import { cleanupTempDirs, EXAMPLE, freePort, tempDir, togo, type CliResult } from "../helpers/index.js";
import { startSshd, type Sshd } from "../helpers/sshd.js";

let sshd: Sshd;
let dir: string;
let dist: string;
let appPort: number;
let appDir: string;

const yaml = (extra = "") => `app: art
deploy:
  provider: vps
  host: 127.0.0.1
  port: ${sshd.port}
  user: ${sshd.user}
  identity_file: ${sshd.identityFile}
  known_hosts: ${sshd.knownHosts}
  ssh_config: ${sshd.sshConfig}
  binary: dist
  run: node dist/server.js
  app_port: ${appPort}
  app_dir: ~/apps/art
  healthcheck: { path: /up, timeout: 8, interval: 0.1, settle: 0.2 }
${extra}`;

interface Raw {
  sha256: string;
  uploaded: boolean;
  bytes: number;
  files: number;
  base?: string;
  artifact: { files: number; bytes: number; hashedFiles: number };
}

function ok(r: CliResult): Raw {
  if (r.exitCode !== 0) throw new Error(`togo exited ${r.exitCode}\n${r.stderr}`);
  return JSON.parse(r.stdout).raw as Raw;
}
const deploy = async (version: string, config = "togo.yaml") => ok(await togo(["deploy", "-c", config, "--version", version, "--json"], { cwd: dir }));

/** Every entry of a tree: type, exec bit, link target or content hash; what must match exactly. */
function tree(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const s = lstatSync(p);
      const r = relative(root, p);
      if (s.isSymbolicLink()) out.push(`l ${r} -> ${readlinkSync(p)}`);
      else if (s.isDirectory()) {
        out.push(`d ${r}`);
        walk(p);
      } else out.push(`f ${r} ${s.mode & 0o111 ? "x" : "-"} ${s.size} ${readFileSync(p).toString("base64").slice(0, 40)}`);
    }
  };
  walk(root);
  return out;
}

async function expectExact(version: string, sha256: string): Promise<void> {
  const release = join(appDir, `v${version}`, "dist");
  expect(tree(release)).toEqual(tree(dist));
  expect(await artifactSha256(release)).toBe(sha256);
  expect(await artifactSha256(dist)).toBe(sha256);
}

beforeAll(async () => {
  sshd = await startSshd();
  appPort = await freePort();
  dir = tempDir("togo-art-");
  appDir = join(sshd.home, "apps", "art");
  dist = join(dir, "dist");
  // 400 files over 20 folders, 1–9 KiB each (about 2 MiB), an executable, links (one dangling), an empty folder.
  for (let i = 0; i < 400; i++) {
    const d = join(dist, "assets", `m${i % 20}`);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `a${i}.txt`), `${i}:`.padEnd(1024 * (1 + (i % 9)), String.fromCharCode(97 + (i % 26))));
  }
  cpSync(join(EXAMPLE, "server.js"), join(dist, "server.js"));
  writeFileSync(join(dist, "start.sh"), "#!/bin/sh\nexec node server.js\n");
  chmodSync(join(dist, "start.sh"), 0o755);
  symlinkSync("assets/m0/a0.txt", join(dist, "first.txt"));
  symlinkSync("../not-shipped.txt", join(dist, "dangling.txt"));
  mkdirSync(join(dist, "empty"));
  writeFileSync(join(dir, "togo.yaml"), yaml());
  writeFileSync(join(dir, "scp.yaml"), yaml("  options: { upload: scp }\n"));
});

afterAll(async () => {
  await sshd?.stop();
  cleanupTempDirs();
});

test("a one-file change sends about one file; the release is exactly the artifact, its unchanged files hard links", async () => {
  const first = await deploy("1");
  expect(first).toMatchObject({ uploaded: true, files: 402, artifact: { files: 402 } });
  expect(first.base).toBeUndefined();
  expect(first.bytes).toBeGreaterThan(first.artifact.bytes);
  await expectExact("1", first.sha256);
  expect(await (await fetch(`http://127.0.0.1:${appPort}/`)).text()).toBe("hello from 1\n");
  // The digest cache lives in the project's .togo.
  expect(readdirSync(join(dir, ".togo", "cache")).some((n) => /^digests-[0-9a-f]{16}\.json$/.test(n))).toBe(true);

  writeFileSync(join(dist, "assets", "m7", "a27.txt"), "changed\n");
  const second = await deploy("2");
  expect(second).toMatchObject({ uploaded: true, files: 1, base: first.sha256 });
  // The file list of 400 names and the one file: a small fraction of the first upload.
  expect(second.bytes).toBeLessThan(first.bytes / 20);
  await expectExact("2", second.sha256);
  // v1 is untouched by the link-sharing v2.
  expect(await artifactSha256(join(appDir, "v1", "dist"))).toBe(first.sha256);
  const ino = (v: string, r: string) => statSync(join(appDir, `v${v}`, "dist", r)).ino;
  expect(ino("2", "assets/m0/a0.txt")).toBe(ino("1", "assets/m0/a0.txt"));
  expect(ino("2", "assets/m7/a27.txt")).not.toBe(ino("1", "assets/m7/a27.txt"));
  expect(await (await fetch(`http://127.0.0.1:${appPort}/`)).text()).toBe("hello from 2\n");

  // Unchanged: nothing sent, nothing uploaded again.
  const third = await deploy("3");
  expect(third).toMatchObject({ uploaded: false, bytes: 0, files: 0, sha256: second.sha256 });
  await expectExact("3", second.sha256);
});

test("without rsync (scp) a change is sent in full and the release is still exact", async () => {
  writeFileSync(join(dist, "assets", "m3", "a3.txt"), "changed for scp\n");
  const r = await deploy("4", "scp.yaml");
  expect(r).toMatchObject({ uploaded: true, files: 402 });
  expect(r.base).toBeUndefined();
  await expectExact("4", r.sha256);
  expect(readdirSync(join(appDir, ".uploads")).filter((n) => n.includes("partial"))).toEqual([]);
});
