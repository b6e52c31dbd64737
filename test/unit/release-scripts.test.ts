// The release engine's scripts, asserted as data, and the pieces run under a real sh.
import { execa } from "execa";
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
    expect(s).toContain("ln -sfn v2 .current.tmp && mv -Tf .current.tmp current");
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
