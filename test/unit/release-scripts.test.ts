// The release engine's scripts, asserted as data, and the pieces run under a real sh.
import { execa } from "execa";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:http";
import { formatDotenv, parseDotenv } from "../../src/ship/dotenv.js";
import * as S from "../../src/ship/scripts.js";
import { probe, waitHealthy } from "../../src/ship/health.js";
import { q, qpath } from "../../src/core/shell.js";

const sh = (script: string, input = "") => execa("sh", ["-c", script], { input, reject: false });

describe("quoting", () => {
  const nasty = ["plain", "two words", "it's", '"dq"', "$(rm -rf /)", "`id`", "a\nb", "ünï ✓", "", "-n", "*"];
  test.each(nasty)("q(%j) reaches the shell as exactly one word with the same bytes", async (value) => {
    const r = await sh(`printf '%s|' ${q(value)}`);
    expect(r.stdout).toBe(`${value}|`);
  });
  test("qpath leaves ~/ to the target's shell and quotes the rest", async () => {
    expect(qpath("~/apps/my app")).toBe(`"$HOME"/'apps/my app'`);
    expect((await sh(`printf %s ${qpath("~/x y")}`)).stdout).toBe(`${process.env.HOME}/x y`);
    expect(q("/srv/a;b")).toBe("'/srv/a;b'");
  });
  test("NUL cannot be passed", () => expect(() => q("a\0b")).toThrow(/NUL/));
});

describe(".env: the bytes POSIX sh (and systemd's EnvironmentFile) read back exactly", () => {
  const values: Record<string, string> = {
    SIMPLE: "abc",
    QUOTE: "it's",
    BOTH: `it's "both"`,
    DOLLAR: "$HOME ${PATH} $(id) `id`",
    MIXED: `'$x' "\\n" \`y\``,
    NEWLINES: "a\nb\n\nc\n",
    TRAIL: "  spaced  ",
    UNICODE: "日本語 ✓ é",
    BACKSLASH: "\\",
    EMPTY: "",
  };
  test("sourcing the file under sh gives the values byte for byte", async () => {
    const keys = Object.keys(values);
    const r = await sh(`f=$(mktemp); cat > "$f"; set -a; . "$f"; set +a; rm -f "$f"; node -e 'process.stdout.write(JSON.stringify(Object.fromEntries(${JSON.stringify(keys)}.map(k=>[k,process.env[k]]))))'`, formatDotenv(values));
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual(values);
  });
  test("single quotes unless the value has one; then double quotes escaping only \\ \" $ `", () => {
    expect(formatDotenv({ A: "x y" })).toBe("A='x y'\n");
    expect(formatDotenv({ A: `it's $x "q" \`c\` \\` })).toBe(`A="it's \\$x \\"q\\" \\\`c\\\` \\\\"\n`);
  });
  test("parseDotenv reads common dotenv files (for the file: secrets adapter)", () => {
    const text = `# comment\nexport A=1\nB='two words'\nC="line\\nnext \\"q\\""\nD=plain value # trailing comment\n\nE=\n`;
    expect(parseDotenv(text)).toEqual({ A: "1", B: "two words", C: 'line\nnext "q"', D: "plain value", E: "" });
  });
});

describe("the first-boot wait (aws instances: cloud-init)", () => {
  test("without cloud-init there is nothing to wait for: 0 at once", async () => {
    const empty = (await sh("mktemp -d")).stdout.trim();
    try {
      const r = await execa("/bin/sh", ["-c", S.firstBootWaitScript(600, `${empty}/boot-finished`)], { env: { PATH: empty }, extendEnv: false, reject: false });
      expect({ code: r.exitCode, out: r.stdout, err: r.stderr }).toEqual({ code: 0, out: "0", err: "" });
    } finally {
      await sh(`rm -rf ${empty}`);
    }
  });

  test("with cloud-init: 0 when the boot-finished file is there; else it waits, then gives up after the timeout saying where to look", async () => {
    const bin = (await sh("mktemp -d")).stdout.trim();
    try {
      await sh(`printf '#!/bin/sh\nexit 0\n' > ${bin}/cloud-init && chmod 755 ${bin}/cloud-init`);
      const run = (finished: string) => execa("sh", ["-c", S.firstBootWaitScript(1, finished)], { env: { PATH: `${bin}:/usr/bin:/bin` }, extendEnv: false, reject: false });
      const r = await run(`${bin}/boot-finished`);
      expect({ code: r.exitCode, out: r.stdout }).toEqual({ code: 1, out: "" });
      expect(r.stderr).toBe("the first boot (cloud-init) has not finished after 1 s: see /var/log/cloud-init-output.log on the host");
      await sh(`touch ${bin}/boot-finished`);
      const done = await run(`${bin}/boot-finished`);
      expect({ code: done.exitCode, out: done.stdout, err: done.stderr }).toEqual({ code: 0, out: "0", err: "" });
      expect(S.firstBootWaitScript(600)).toContain("until [ -e /var/lib/cloud/instance/boot-finished ]");
    } finally {
      await sh(`rm -rf ${bin}`);
    }
  });
});

describe("scripts as data", () => {
  test("release folders are v<version>; versions are validated", () => {
    expect(S.releaseFolder("1.2.3")).toBe("v1.2.3");
    for (const bad of ["", "../x", "a b", "-rf", "x;y", "a".repeat(65)]) expect(() => S.releaseFolder(bad)).toThrow(/invalid version/);
  });
  test("the lock is an atomic mkdir; a held lock exits 75 with the holder", async () => {
    const dir = (await sh("mktemp -d")).stdout.trim();
    try {
      expect((await sh(S.lockAcquireScript(dir, "holder=a version=1"))).exitCode).toBe(0);
      const again = await sh(S.lockAcquireScript(dir, "holder=b version=2"));
      expect(again.exitCode).toBe(S.LOCK_HELD);
      expect(again.stdout).toContain("holder=a version=1");
      await sh(S.lockReleaseScript(dir, "holder=b")); // not the holder: no effect
      expect((await sh(S.lockAcquireScript(dir, "holder=c"))).exitCode).toBe(S.LOCK_HELD);
      await sh(S.lockReleaseScript(dir, "holder=a"));
      expect((await sh(S.lockAcquireScript(dir, "holder=c"))).exitCode).toBe(0);
    } finally {
      await sh(`rm -rf ${q(dir)}`);
    }
  });
  test("switch renames a new link over current (never a moment without one)", () => {
    const s = S.switchScript("/srv/app", "2");
    expect(s).toContain(`ln -s v2 "$t" && mv -Tf "$t" current`);
  });
  test("a switch runs to its end when the session that started it is killed; otherwise its output and status pass through", async () => {
    const r = await sh(S.toTheEnd("echo out; echo err >&2; exit 3"));
    expect({ code: r.exitCode, out: r.stdout, err: r.stderr }).toEqual({ code: 3, out: "out", err: "err" });
    const dir = (await sh("mktemp -d")).stdout.trim();
    const d = q(dir);
    const exists = async (name: string) => (await sh(`[ -e ${d}/${name} ]`)).exitCode === 0;
    const until = async (name: string) => {
      const end = Date.now() + 10_000;
      while (!(await exists(name)) && Date.now() < end) await new Promise((res) => setTimeout(res, 20));
      return exists(name);
    };
    try {
      await sh(`touch ${d}/hold`);
      // Its own process group, as sshd gives a session: killing the group is what losing the session does.
      // Its output folder goes in a temp dir of this test's own (TMPDIR).
      await sh(`mkdir ${d}/tmp`);
      const env = { ...process.env, TMPDIR: `${dir}/tmp` };
      const run = execa("sh", ["-c", S.toTheEnd(`touch ${d}/started; while [ -e ${d}/hold ]; do sleep 0.05; done; touch ${d}/done`)], { detached: true, reject: false, env });
      expect(await until("started")).toBe(true);
      process.kill(-run.pid!, "SIGKILL");
      await run;
      await sh(`rm -f ${d}/hold`);
      expect(await until("done")).toBe(true);
      // The killed switch left its output folder; a later switch removes it once it is older than any
      // switch takes (an hour), and leaves a recent one (a switch still running) alone.
      const left = (await sh(`ls ${d}/tmp`)).stdout.split("\n").filter(Boolean);
      expect(left).toHaveLength(1);
      await sh(`mkdir ${d}/tmp/togo-switch.recent && touch -d '2 hours ago' ${d}/tmp/${left[0]}`);
      expect((await execa("sh", ["-c", S.toTheEnd("true")], { env, reject: false })).exitCode).toBe(0);
      expect((await sh(`ls ${d}/tmp`)).stdout.split("\n").filter(Boolean)).toEqual(["togo-switch.recent"]);
    } finally {
      await sh(`rm -rf ${d}`);
    }
  });
  test("prune keeps N and the current one, and drops failed releases but the newest", async () => {
    const dir = (await sh("mktemp -d")).stdout.trim();
    try {
      await sh(`cd ${q(dir)} && mkdir v1 v2 v3 v4 v5 vf1 vf2 && printf '5\\n4\\n3\\n2\\n1\\n' > .versions && printf 'f2\\nf1\\n' > .failed && ln -s v2 current`);
      const r = await sh(S.pruneScript(dir, 2));
      expect(r.stdout.split("\n").filter(Boolean).sort()).toEqual(["1", "3", "f1"]);
      expect((await sh(`cd ${q(dir)} && ls -d v* && cat .versions .failed`)).stdout).toBe("v2\nv4\nv5\nvf2\n5\n4\n2\nf2"); // execa strips the final newline
    } finally {
      await sh(`rm -rf ${q(dir)}`);
    }
  });
  test("the port-owner script names who listens: ours, another process, or nobody", async () => {
    const srv = createServer().listen(0, "127.0.0.1");
    await new Promise((r) => srv.once("listening", r));
    const port = (srv.address() as { port: number }).port;
    try {
      expect((await sh(S.portOwnerScript(port, "togo_ours() { false; }"))).stdout.trim()).toBe(`other ${process.pid} node`);
      expect((await sh(S.portOwnerScript(port, `togo_ours() { [ "$1" = ${process.pid} ]; }`))).stdout.trim()).toBe("ours");
    } finally {
      srv.close();
    }
    await new Promise((r) => srv.once("close", r));
    expect((await sh(S.portOwnerScript(port, "togo_ours() { true; }"))).stdout.trim()).toBe("none");
  });
  test("the free-port script finds a port nothing listens on", async () => {
    const srv = createServer().listen(0, "127.0.0.1");
    await new Promise((r) => srv.once("listening", r));
    const taken = (srv.address() as { port: number }).port;
    const r = await sh(S.freePortScript(taken, taken + 5));
    srv.close();
    expect(Number(r.stdout.trim())).toBeGreaterThan(taken);
  });
});

describe("health checks", () => {
  test("a redirect is reported as such, never followed", async () => {
    const srv = createServer((req, res) => {
      res.writeHead(req.url === "/up" ? 302 : 200, { location: "/login" });
      res.end();
    }).listen(0, "127.0.0.1");
    await new Promise((r) => srv.once("listening", r));
    const port = (srv.address() as { port: number }).port;
    const p = await probe(`http://127.0.0.1:${port}/up`);
    srv.close();
    expect(p.ok).toBe(false);
    expect(p.detail).toContain("302 redirect to /login");
  });
  test("waitHealthy stops early when the process is gone", async () => {
    const r = await waitHealthy("http://127.0.0.1:1/up", { timeoutSeconds: 30, intervalSeconds: 0.05, stillRunning: async () => false });
    expect(r.ok).toBe(false);
    expect(r.detail).toContain("the process exited");
    expect(r.attempts).toBe(1);
  });
});

describe("a tampered target: nothing outside app_dir is removed or written, nothing is followed", () => {
  const setup = async () => {
    const root = (await sh("mktemp -d")).stdout.trim();
    const app = `${root}/app`;
    await sh(`mkdir -p ${q(app)} ${q(`${root}/outside`)} && echo keep > ${q(`${root}/outside/file`)} && echo secret-old > ${q(`${root}/victim`)} && chmod 644 ${q(`${root}/victim`)}`);
    return { root, app, done: () => sh(`rm -rf ${q(root)}`) };
  };
  const run = (script: string, input = "") => sh(script, input);

  test("a .versions line that climbs out of app_dir never reaches rm -rf", async () => {
    const { root, app, done } = await setup();
    try {
      await sh(`cd ${q(app)} && mkdir v1 v2 && ln -s v2 current && printf '2\\n8/../../outside\\n../outside\\n1\\n-rf\\n' > .versions`);
      const r = await run(S.pruneScript(app, 1));
      expect(r.stdout.trim().split("\n")).toEqual(["1"]);
      expect((await sh(`cat ${q(`${root}/outside/file`)}`)).stdout).toBe("keep");
      expect((await sh(`cat ${q(`${app}/.versions`)}`)).stdout).toBe("2");
    } finally {
      await done();
    }
  });

  test("planted symlinks at temp names and at .env are never written through; .env ends a 0600 regular file", async () => {
    const { root, app, done } = await setup();
    const victim = `${root}/victim`;
    try {
      await sh(`cd ${q(app)} && mkdir v1 && for n in .env.next.tmp .versions.tmp .failed.tmp .current.tmp .env.prev .env.next; do ln -s ${q(victim)} "$n"; done && ln -s ${q(victim)} .env`);
      expect((await run(S.writeEnvNextScript(app), "TOKEN='new'\n")).exitCode).toBe(0);
      expect((await run(S.switchScript(app, "1"))).exitCode).toBe(0);
      expect((await run(S.recordScript(app, "1"))).exitCode).toBe(0);
      expect((await run(S.recordFailedScript(app, "0"))).exitCode).toBe(0);
      expect((await sh(`cat ${q(victim)}; stat -c %a ${q(victim)}`)).stdout).toBe("secret-old\n644");
      const env = await sh(`cd ${q(app)} && [ -f .env ] && [ ! -L .env ] && stat -c %a .env && cat .env && readlink current`);
      expect(env.stdout).toBe("600\nTOKEN='new'\nv1");
    } finally {
      await done();
    }
  });

  test("togo's own directories planted as symlinks are replaced, not followed", async () => {
    const { root, app, done } = await setup();
    try {
      await sh(`cd ${q(app)} && ln -s ${q(`${root}/outside`)} logs && ln -s ${q(`${root}/outside`)} .uploads`);
      await run(S.layoutScript(app));
      expect((await sh(`cd ${q(app)} && [ -d logs ] && [ ! -L logs ] && [ ! -L .uploads ] && echo ok`)).stdout).toBe("ok");
      await run(S.pruneUploadsScript(app));
      expect((await sh(`cat ${q(`${root}/outside/file`)}`)).stdout).toBe("keep");
    } finally {
      await done();
    }
  });

  test("releases missing from .versions (it was deleted) are still listed and pruned, and go back into .versions", async () => {
    const { app, done } = await setup();
    try {
      await sh(
        `cd ${q(app)} && for v in 1 2 3 4; do mkdir v$v && echo sha > v$v/.togo-sha256 && touch -d "2026-01-0$v" v$v; done && mkdir .v5.tmp && ln -s v4 current`,
      );
      const listed = await run(S.readReleasesScript(app));
      expect(listed.stdout.split("\n").map((l) => l.split(" ")[0])).toEqual(["current=4", "4", "3", "2", "1"]);
      const pruned = await run(S.pruneScript(app, 2));
      expect(pruned.stdout.trim().split("\n")).toEqual(["2", "1"]);
      expect((await sh(`cd ${q(app)} && cat .versions && ls -d v*`)).stdout).toBe("4\n3\nv3\nv4");
    } finally {
      await done();
    }
  });

  test("a .versions line whose release folder was removed is not listed, and prune does not count it as kept", async () => {
    const { app, done } = await setup();
    try {
      await sh(`cd ${q(app)} && for v in 1 2 3 4; do mkdir v$v && echo sha > v$v/.togo-sha256; done && ln -s v4 current && printf '4\\n9\\n3\\n2\\n1\\n' > .versions`);
      const listed = await run(S.readReleasesScript(app));
      expect(listed.stdout.split("\n").filter(Boolean).map((l) => l.split(" ")[0])).toEqual(["current=4", "4", "3", "2", "1"]);
      const pruned = await run(S.pruneScript(app, 3));
      expect(pruned.stdout.trim().split("\n")).toEqual(["1"]);
      expect((await sh(`cd ${q(app)} && cat .versions && ls -d v*`)).stdout).toBe("4\n3\n2\nv2\nv3\nv4");
    } finally {
      await done();
    }
  });

  test("a current link that is not a release, and a pid file that is not a pid, are read as nothing", async () => {
    const { root, app, done } = await setup();
    try {
      await sh(`cd ${q(app)} && ln -s ../outside current && mkdir run && echo -1 > run/app.pid`);
      expect((await run(S.currentVersionScript(app))).stdout).toBe("");
      expect((await run(S.processStatusScript(app, "app"))).stdout).toBe("stopped");
      expect((await sh(`cat ${q(`${root}/outside/file`)}`)).stdout).toBe("keep");
    } finally {
      await done();
    }
  });

  test("an env file that sets HOME does not move togo's pid and log files", async () => {
    const { root, done } = await setup();
    const home = `${root}/home`;
    try {
      await sh(`mkdir -p ${q(`${home}/app/v1`)} ${q(`${root}/elsewhere`)} && printf "HOME='%s'\\n" ${q(`${root}/elsewhere`)} > ${q(`${home}/app/.env`)}`);
      const start = S.processStartScript({ appDir: "~/app", name: "app", version: "1", run: "sleep 30", port: 1, envFile: "env" });
      const r = await execa("sh", ["-c", start], { env: { HOME: home, PATH: process.env.PATH }, extendEnv: false, reject: false });
      expect(r.stderr).toBe("");
      expect((await sh(`ls ${q(`${home}/app/run`)} ${q(`${home}/app/logs`)}; ls -A ${q(`${root}/elsewhere`)}`)).stdout).toBe(`${home}/app/logs:\n1.log\n\n${home}/app/run:\napp.pid`);
      await execa("sh", ["-c", S.processStopScript("~/app", "app")], { env: { HOME: home, PATH: process.env.PATH }, extendEnv: false });
    } finally {
      await done();
    }
  });
});

describe("stopping a release", () => {
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
    } catch {
      return false;
    }
  };
  test.each([
    ["its leader still runs", "sleep 300 & echo $! > \"$0.child\"; exec sleep 300"],
    ["its leader has already exited, a child of it runs on", "sleep 300 & echo $! > \"$0.child\"; exit 0"],
  ])("stops the whole process group when %s", async (_, body) => {
    const root = mkdtempSync(join(tmpdir(), "togo-stop-"));
    const env = { HOME: root, PATH: process.env.PATH };
    try {
      const pidFile = `${root}/app/run/app.pid`;
      await sh(`mkdir -p ${q(`${root}/app/run`)}`);
      // As the process manager starts an app: a session (and group) of its own, its pid in the file.
      await execa("sh", ["-c", `setsid sh -c 'echo $$ > "$0"; ${body}' ${q(pidFile)} < /dev/null > /dev/null 2>&1 &`]);
      while (!existsSync(`${pidFile}.child`) || !readFileSync(`${pidFile}.child`, "utf8").trim()) await new Promise((r) => setTimeout(r, 10));
      const child = Number(readFileSync(`${pidFile}.child`, "utf8"));
      expect(alive(child)).toBe(true);
      const r = await execa("sh", ["-c", S.processStopScript("~/app", "app", 5)], { env, extendEnv: false, reject: false });
      expect({ code: r.code ?? r.exitCode, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      expect(alive(child)).toBe(false);
      expect(existsSync(pidFile)).toBe(false);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
