// The SSH transport against a real sshd on loopback: one multiplexed connection for many commands,
// stdin bytes intact, rsync and scp uploads, a port forward, host key verification (accept-new
// records, a wrong key refuses), and a killed connection replaced by a new, counted one.
import { createServer, type Server } from "node:http";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { SshTransport, type SshTarget } from "../../src/exec/ssh.js";
import { command } from "../../src/exec/transport.js";
import { cleanupTempDirs, freePort, tempDir } from "../helpers/index.js";
import { startSshd, type Sshd } from "../helpers/sshd.js";

let sshd: Sshd;
const target = (extra: Partial<SshTarget> = {}): SshTarget => ({
  host: "127.0.0.1",
  port: sshd.port,
  user: sshd.user,
  identityFile: sshd.identityFile,
  knownHosts: sshd.knownHosts,
  sshConfig: sshd.sshConfig,
  ...extra,
});

beforeAll(async () => {
  sshd = await startSshd();
});

/** Polls until `cond` holds or `ms` pass. */
async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

afterAll(async () => {
  await sshd?.stop();
  cleanupTempDirs();
});

describe("SshTransport", () => {
  test("runs many commands over one connection and passes stdin bytes exactly", async () => {
    const before = sshd.accepted();
    const t = new SshTransport(target());
    try {
      for (let i = 0; i < 5; i++) expect((await t.run(command("t", `echo ${i}`))).stdout).toBe(`${i}\n`);
      const tricky = `it's "quoted" $HOME \`date\` \\ back\nnew line ünïcødé 🚀\n`;
      expect((await t.run(command("t", "cat", { input: tricky }))).stdout).toBe(tricky);
      expect((await t.run(command("t", "id -un"))).stdout.trim()).toBe(sshd.user);
      const failed = await t.run(command("t", "echo oops >&2; exit 3"), { check: false });
      expect(failed.code).toBe(3);
      expect(failed.stderr).toBe("oops\n");
      await expect(t.run(command("t", "exit 4", { what: "a failing step" }))).rejects.toThrow(/a failing step failed on .* \(exit 4\)/);
      expect(t.stats.connections).toBe(1);
      expect(t.stats.commands).toBe(9);
      // All of them over the one command channel: one ssh client and sshd session, not nine.
      expect(t.stats.sessions).toBe(1);
    } finally {
      await t.close();
    }
    expect(sshd.accepted() - before).toBe(1);
  });

  test("the command channel: exact bytes both ways, a fresh output for each command, a session of its own when busy or too big", async () => {
    const t = new SshTransport(target());
    try {
      // Every character from NUL to ÿ (UTF-8 on the wire) through stdin and back out; a large output in one reply.
      const chars = String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i));
      expect((await t.run(command("t", "cat", { input: chars }))).stdout).toBe(chars);
      expect((await t.run(command("t", "head -c 3000000 /dev/zero | tr '\\0' x"))).stdout).toBe("x".repeat(3_000_000));
      // A process a command leaves behind writing to its stdout never lands in a later command's output.
      await t.run(command("t", "(i=0; while [ $i -lt 300 ]; do echo stray; sleep 0.01; i=$((i+1)); done) &"));
      for (let i = 0; i < 5; i++) expect((await t.run(command("t", `echo ${i}; sleep 0.1`))).stdout).toBe(`${i}\n`);
      // Each command is a session (and process group) of its own, so an interrupt can stop the whole group.
      const ids = (await t.run(command("t", "ps -o pid=,pgid=,sid= -p $$"))).stdout.trim().split(/\s+/);
      expect(new Set(ids).size).toBe(1);
      expect(t.stats.sessions).toBe(1);
      // Two at once: the second does not wait behind the first, it takes a session of its own.
      const gate = join(sshd.home, "gate");
      const first = t.run(command("t", `while [ ! -e ${gate} ]; do sleep 0.02; done; echo first`));
      expect((await t.run(command("t", `echo second; touch ${gate}`))).stdout).toBe("second\n");
      expect((await first).stdout).toBe("first\n");
      expect(t.stats.sessions).toBe(2);
      // A request too big for the channel's line reader takes a session too, and arrives intact.
      const big = "y".repeat(400_000);
      expect((await t.run(command("t", "wc -c", { input: big }))).stdout.trim()).toBe("400000");
      expect(t.stats.sessions).toBe(3);
      expect(t.stats.connections).toBe(1);
    } finally {
      await t.close();
    }
  });

  test("a command channel that dies fails the command in flight; the next command opens a new channel on the same connection", async () => {
    const t = new SshTransport(target());
    try {
      await t.run(command("t", "true"));
      // The command's parent is the channel's loop: killing it ends the channel under the command.
      const r = await t.run(command("t", "kill -9 $PPID; sleep 5"), { check: false });
      expect(r.code).toBe(255);
      expect(r.stderr).toContain("the command channel ended");
      expect((await t.run(command("t", "echo back"))).stdout).toBe("back\n");
      expect(t.stats.sessions).toBe(2);
      expect(t.stats.connections).toBe(1);
    } finally {
      await t.close();
    }
  });

  test("an interruptible command in the channel dies with the connection (togo killed, the network gone)", async () => {
    const t = new SshTransport(target());
    // The sleep's own argument marks it: in the channel a script runs from a file, so its text is on no command line.
    const marker = `300.${process.pid}${Date.now() % 100000}`;
    const running = () =>
      sshd.userPids().filter((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, "utf8").includes(marker);
        } catch {
          return false;
        }
      });
    try {
      await t.run(command("t", "true"));
      const inFlight = t.run(command("t", `sleep ${marker}`), { signal: new AbortController().signal, check: false });
      if (!(await until(() => running().length > 0, 30_000))) throw new Error("the command never showed up on the host");
      expect(t.stats.sessions).toBe(1); // it runs in the channel
      // The connection's sshd processes go (as when the network or togo's master is gone); the shells they started stay.
      const conn = sshd.sessions().filter((p) => readFileSync(`/proc/${p}/comm`, "utf8").trim() === "sshd");
      expect(conn.length).toBeGreaterThan(0);
      for (const p of conn) process.kill(p, "SIGKILL");
      expect((await inFlight.catch((e: Error) => ({ code: -1, stderr: e.message }))).code).not.toBe(0);
      // The command's watcher sees the connection's sshd process go and stops the command's group.
      if (!(await until(() => running().length === 0, 15_000))) throw new Error(`still running on the host: ${running().join(", ")}`);
    } finally {
      await t.close();
    }
  });

  test("uploads a file and a directory with rsync and with scp", async () => {
    const src = tempDir();
    writeFileSync(join(src, "one.bin"), Buffer.alloc(100_000, 7));
    mkdirSync(join(src, "tree", "sub"), { recursive: true });
    writeFileSync(join(src, "tree", "a.txt"), "a\n");
    writeFileSync(join(src, "tree", "sub", "b.sh"), "#!/bin/sh\necho b\n", { mode: 0o755 });
    for (const upload of ["rsync", "scp"] as const) {
      const t = new SshTransport(target({ upload }));
      try {
        await t.run(command("t", `mkdir -p ~/up-${upload}`));
        const { bytes, files } = await t.upload(join(src, "one.bin"), `~/up-${upload}/one.bin`);
        expect(bytes).toBeGreaterThan(0);
        expect(files).toBe(1);
        await t.upload(join(src, "tree"), `~/up-${upload}/tree`);
        expect(t.stats.connections).toBe(1);
      } finally {
        await t.close();
      }
      const base = join(sshd.home, `up-${upload}`);
      expect(readFileSync(join(base, "one.bin")).equals(Buffer.alloc(100_000, 7))).toBe(true);
      expect(readFileSync(join(base, "tree", "a.txt"), "utf8")).toBe("a\n");
      expect(statSync(join(base, "tree", "sub", "b.sh")).mode & 0o111).not.toBe(0);
      expect(statSync(join(base, "one.bin")).uid).toBe(sshd.uid);
    }
  });

  test("a small file travels inline over the command channel, bytes and mode intact; a chosen method or a bandwidth limit is honoured", async () => {
    const src = tempDir();
    const file = join(src, "app.bin");
    const content = Buffer.from(Array.from({ length: 20_000 }, (_, i) => (i * 7) % 256));
    writeFileSync(file, content, { mode: 0o750 });
    for (const [name, extra, sessions] of [
      ["inline", {}, 1],
      ["rsync", { upload: "rsync" as const }, 2],
      ["limited", { bwlimit: 10_000 }, 2],
    ] as const) {
      const t = new SshTransport(target(extra));
      try {
        await t.run(command("t", `mkdir -p ~/inline-${name}`));
        expect(await t.upload(file, `~/inline-${name}/app.bin`)).toMatchObject({ bytes: name === "inline" ? content.length : expect.any(Number), files: 1 });
        expect({ name, sessions: t.stats.sessions }).toEqual({ name, sessions });
      } finally {
        await t.close();
      }
      const dest = join(sshd.home, `inline-${name}`, "app.bin");
      expect(readFileSync(dest).equals(content)).toBe(true);
      expect(statSync(dest).mode & 0o777).toBe(0o750);
      expect(readdirSync(join(sshd.home, `inline-${name}`))).toEqual(["app.bin"]); // no temp file left
    }
  });

  test("reaches a port on the host's loopback through the connection", async () => {
    const port = await freePort();
    const server: Server = createServer((_, res) => res.end("through the tunnel\n"));
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
    const t = new SshTransport(target());
    try {
      const base = await t.reach(port);
      expect(base).not.toBe(`http://127.0.0.1:${port}`);
      expect(await (await fetch(base)).text()).toBe("through the tunnel\n");
      expect(await t.reach(port)).toBe(base); // one forward a port
      expect(t.stats.connections).toBe(1);
    } finally {
      await t.close();
      server.close();
    }
  });

  test("accept-new records an unknown host key; a wrong key is refused with what to do", async () => {
    const dir = tempDir();
    const empty = join(dir, "known_hosts");
    writeFileSync(empty, "");
    const t = new SshTransport(target({ knownHosts: empty }));
    try {
      await t.run(command("t", "true"));
    } finally {
      await t.close();
    }
    expect(readFileSync(empty, "utf8")).toContain(sshd.hostKey.split(" ")[1]);

    const wrong = join(dir, "wrong_hosts");
    // Another valid ed25519 key recorded for this host:port.
    writeFileSync(wrong, `[127.0.0.1]:${sshd.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n`);
    // A changed key is refused as not matching, with accept-new and with yes alike.
    for (const hostKeyChecking of ["accept-new", "yes"] as const) {
      const bad = new SshTransport(target({ knownHosts: wrong, hostKeyChecking }));
      try {
        await expect(bad.run(command("t", "true"))).rejects.toThrow(/failed: the host key does not match known_hosts\. .*ssh-keygen -R/);
        expect(bad.stats.commands).toBe(0);
      } finally {
        await bad.close();
      }
    }

    // An unknown key under `yes` is not a mismatch: OpenSSH says so, then "Host key verification failed".
    for (const knownHosts of [join(dir, "none"), empty.replace("known_hosts", "empty_hosts")]) {
      if (!knownHosts.endsWith("none")) writeFileSync(knownHosts, "");
      const strict = new SshTransport(target({ knownHosts, hostKeyChecking: "yes" }));
      try {
        const err = await strict.run(command("t", "true")).then(
          () => new Error("connected"),
          (e: Error) => e,
        );
        expect(err.message).toMatch(/^ssh to .* failed: the host key is not in known_hosts and host_key_checking is yes; add it \(ssh-keyscan, checked out of band\) or use accept-new\n/);
        expect(err.message).toMatch(/No ED25519 host key is known for \[127\.0\.0\.1\]:\d+ and you have requested strict checking\.\nHost key verification failed\./);
        expect(err.message).not.toContain("does not match");
        expect(strict.stats.commands).toBe(0);
      } finally {
        await strict.close();
      }
      expect(existsSync(knownHosts) ? readFileSync(knownHosts, "utf8") : "").toBe(""); // nothing recorded under yes
    }
  });

  test("a killed connection fails the command in flight; the next command opens a new, counted one", async () => {
    const t = new SshTransport(target());
    try {
      await t.run(command("t", "true"));
      const inFlight = t.run(command("t", "sleep 30", { what: "a long step" }));
      await new Promise((r) => setTimeout(r, 300));
      sshd.killSessions();
      await expect(inFlight).rejects.toThrow(/a long step/);
      expect((await t.run(command("t", "echo back"))).stdout).toBe("back\n");
      expect(t.stats.connections).toBe(2);
    } finally {
      await t.close();
    }
  });
});
