// The command channel's loop under a real sh on this machine (the protocol; over a real sshd it is
// tested in vps-transport): counted bytes copied by `head -c`, a request that runs only when it
// arrived whole, and no channel on a host whose `head` reads past its count.
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { CHANNEL_SCRIPT, CommandChannel, encodeRequest } from "../../src/exec/channel.js";
import { cleanupTempDirs, tempDir } from "../helpers/index.js";

afterAll(cleanupTempDirs);

/** The loop on this machine, with a home of its own (it records commands under ~/.cache/togo/runs). */
function loop(env: Record<string, string> = {}) {
  const home = env.HOME ?? tempDir("togo-channel-");
  return { home, proc: execa("sh", ["-c", CHANNEL_SCRIPT], { stdin: "pipe", stdout: "pipe", stderr: "pipe", buffer: false, reject: false, env: { HOME: home, ...env } }) };
}

describe("the command channel's loop", () => {
  test("scripts and input cross as counted bytes: every byte value, no final newline, lines like the end marker", async () => {
    const { proc } = loop();
    const channel = await CommandChannel.open(() => proc);
    if (!(channel instanceof CommandChannel)) throw new Error(`no channel: ${String(channel)}`);
    try {
      const bytes = String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i));
      expect(await channel.run("cat", bytes)).toEqual({ code: 0, stdout: bytes, stderr: "" });
      expect(await channel.run("printf 'no newline at the end'; exit 3", "")).toEqual({ code: 3, stdout: "no newline at the end", stderr: "" });
      // A script line that looks like an end line is only script.
      const lookalike = "togo-end-0123\n- 1 2\n";
      expect((await channel.run(`cat <<'EOF'\n${lookalike}EOF`, "")).stdout).toBe(lookalike);
      expect((await channel.run("read -r a; read -r b; echo \"$b$a\"", "1\n2\n")).stdout).toBe("21\n");
    } finally {
      await channel.close();
    }
  });

  test("a request cut off before its end line never runs, and the loop ends", async () => {
    const { home, proc } = loop();
    const ran = join(home, "ran");
    const request = encodeRequest(`touch '${ran}'`, "", "togo-end-cut");
    await new Promise<void>((resolve) => proc.stdout!.once("data", () => resolve()));
    proc.stdin!.end(request.subarray(0, request.length - 3));
    const r = await proc;
    expect(r.exitCode).not.toBe(0);
    expect(existsSync(ran)).toBe(false);
  });

  test("a header that is not one ends the loop before anything runs", async () => {
    const { home, proc } = loop();
    const ran = join(home, "ran");
    await new Promise<void>((resolve) => proc.stdout!.once("data", () => resolve()));
    const script = `touch '${ran}'`;
    proc.stdin!.end(`togo-end-x - ${script.length}x 0\n${script}togo-end-x\n`);
    const r = await proc;
    expect(r.exitCode).toBe(1);
    expect(existsSync(ran)).toBe(false);
  });

  test("a loop killed outright leaves its folder; the next loop of the user removes it, not a live one's", async () => {
    const tmp = tempDir("togo-channel-tmp-");
    const folders = () => readdirSync(tmp).filter((f) => f.startsWith("togo-ch.")).sort();
    const home = tempDir("togo-channel-home-");
    const start = async () => {
      const { proc } = loop({ TMPDIR: tmp, HOME: home });
      const channel = await CommandChannel.open(() => proc);
      if (!(channel instanceof CommandChannel)) throw new Error(`no channel: ${String(channel)}`);
      return { proc, channel };
    };
    const killed = await start();
    const live = await start();
    const a = folders();
    expect(a).toHaveLength(2);
    killed.proc.kill("SIGKILL");
    await killed.proc;
    expect(folders()).toEqual(a);
    const next = await start();
    try {
      const now = folders();
      expect(now).toHaveLength(2);
      const gone = a.filter((f) => !now.includes(f));
      expect(gone).toHaveLength(1);
      expect(readFileSync(join(tmp, now.find((f) => a.includes(f))!, "pid"), "utf8").trim()).toBe(String(live.proc.pid));
    } finally {
      await live.channel.close();
      await next.channel.close();
    }
    expect(folders()).toEqual([]);
  });

  test("a host whose head reads past its count (stdio buffering) gets no channel: commands take sessions of their own", async () => {
    const bin = tempDir("togo-channel-bin-");
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, "head"), "#!/bin/sh\n# reads all it is given, as a buffered head may\ncat > /dev/null\n");
    chmodSync(join(bin, "head"), 0o755);
    const { proc } = loop({ PATH: `${bin}:${process.env.PATH}` });
    expect(await CommandChannel.open(() => proc)).toBe("unavailable");
  });
});
