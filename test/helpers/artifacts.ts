// The build proxy in tests: git repositories the test makes (bare repos reached by file:// URLs
// through --git-url), and `togo artifacts serve` as a real process on loopback, stopped by pid.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { execa } from "execa";
import { BIN, testEnv } from "./index.js";

const GIT_ENV = { GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.com", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.com", GIT_CONFIG_NOSYSTEM: "1", HOME: "/nonexistent" };

async function git(cwd: string, args: string[]): Promise<string> {
  const r = await execa("git", args, { cwd, env: { ...process.env, ...GIT_ENV }, reject: false });
  if (r.exitCode !== 0) throw new Error(`git ${args.join(" ")} failed in ${cwd}:\n${r.stderr}`);
  return String(r.stdout).trim();
}

/** Bare repositories under root/git/<remote>/<owner>/<repo>.git, edited through a work tree beside them. */
export class GitFixture {
  readonly gitUrl: string;
  constructor(readonly root: string) {
    this.gitUrl = `file://${root}/git/{remote}/{owner}/{repo}.git`;
  }

  private paths(name: string): { bare: string; work: string } {
    return { bare: join(this.root, "git", "example.test", "acme", `${name}.git`), work: join(this.root, "work", name) };
  }

  /** Creates acme/<name> on remote example.test with files; returns the commit. */
  async create(name: string, files: Record<string, string>): Promise<string> {
    const { bare, work } = this.paths(name);
    mkdirSync(bare, { recursive: true });
    await git(bare, ["init", "-q", "--bare", "-b", "main"]);
    mkdirSync(work, { recursive: true });
    await git(work, ["init", "-q", "-b", "main"]);
    await git(work, ["remote", "add", "origin", bare]);
    return this.commit(name, files);
  }

  /** Writes files, commits and pushes main; returns the commit. */
  async commit(name: string, files: Record<string, string>): Promise<string> {
    const { work } = this.paths(name);
    for (const [rel, content] of Object.entries(files)) {
      mkdirSync(dirname(join(work, rel)), { recursive: true });
      writeFileSync(join(work, rel), content);
    }
    await git(work, ["add", "-A"]);
    await git(work, ["commit", "-q", "-m", `change ${Date.now()}`]);
    await git(work, ["push", "-q", "origin", "HEAD:main"]);
    return git(work, ["rev-parse", "HEAD"]);
  }

  /** Points tag at commit (annotated, moved if it exists) and pushes it. */
  async tag(name: string, tag: string, commit: string): Promise<void> {
    const { work } = this.paths(name);
    await git(work, ["tag", "-f", "-a", "-m", tag, tag, commit]);
    await git(work, ["push", "-q", "-f", "origin", `refs/tags/${tag}`]);
  }
}

export interface Proxy {
  url: string;
  proc: ChildProcess;
  /** Everything it printed so far. */
  output(): string;
  /** Resolves when a line matching re has been printed. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>;
  /** SIGTERM (or the signal given), then waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `togo artifacts serve` on 127.0.0.1 (a free port it picks itself) and waits until it listens. */
export async function startProxy(args: string[], opts: { cwd: string; env?: Record<string, string> }): Promise<Proxy> {
  const proc = spawn(process.execPath, [BIN, "artifacts", "serve", "--listen", "127.0.0.1:0", ...args], { cwd: opts.cwd, env: testEnv(opts.env), stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  const onData = (c: Buffer) => {
    out += c.toString();
    for (const w of [...waiters]) {
      if (w.re.test(out)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  proc.stdout?.on("data", onData);
  proc.stderr?.on("data", onData);
  const exited = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));
  const waitFor = (re: RegExp, timeoutMs = 60_000) =>
    new Promise<void>((resolve, reject) => {
      if (re.test(out)) return resolve();
      const t = setTimeout(() => reject(new Error(`the proxy did not print ${re} within ${timeoutMs} ms; it printed:\n${out}`)), timeoutMs);
      waiters.push({
        re,
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
      });
      void exited.then((code) => {
        clearTimeout(t);
        if (!re.test(out)) reject(new Error(`the proxy exited (${code}) before printing ${re}; it printed:\n${out}`));
      });
    });
  await waitFor(/listening on http:\/\/127\.0\.0\.1:\d+/);
  const port = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1];
  return {
    url: `http://127.0.0.1:${port}`,
    proc,
    output: () => out,
    waitFor,
    stop: async (signal = "SIGTERM") => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** Polls `GET /builds/{id}` until the build has finished; returns its record. */
export async function waitBuild(url: string, id: string, headers: Record<string, string> = {}, timeoutMs = 120_000): Promise<Record<string, unknown>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await fetch(`${url}/builds/${id}`, { headers });
    const body = (await r.json()) as Record<string, unknown>;
    if (body.state === "succeeded" || body.state === "failed") return body;
    if (Date.now() > until) throw new Error(`build ${id} still ${String(body.state)} after ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, 100));
  }
}
