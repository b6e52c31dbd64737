// The builder: one commit of one repository into one artifact file, for one os/arch.
//
// A clean checkout of exactly that commit (a fresh directory, fetched by commit id, HEAD checked);
// then the repository's own togo.yaml says how (deploy.build_cmd, deploy.binary), else `make` (the
// repository's Makefile, or togo's default one, as Cargo did). TOGO_OS/TOGO_ARCH and GOOS/GOARCH
// are set. The build command runs in its own process group (or in a container with isolation
// docker) with an environment of its own: nothing of the server's (tokens, keys) reaches it.
// Every line it prints goes to `log` as it is printed.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, lstatSync, realpathSync } from "node:fs";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { basename, join, relative, resolve, sep } from "node:path";
import { parse } from "yaml";
import { OperationError } from "../core/errors.js";
import type { Coordinates, Recipe } from "./key.js";

/** Used when the repository has no Makefile: a Go module, cross-compiled for GOOS/GOARCH into dist/. */
export const DEFAULT_MAKEFILE = `# togo's default Makefile (the repository has none): builds a Go module for GOOS/GOARCH.
.PHONY: build
build:
\tmkdir -p dist
\tCGO_ENABLED=0 go build -trimpath -o dist/ ./...
`;

export interface BuildRequest {
  coordinates: Coordinates;
  /** The full commit id the version resolved to. */
  commit: string;
  cloneUrl: string;
  recipe: Recipe;
  /** A fresh directory for this run (the checkout and the output go here); the caller removes it. */
  workDir: string;
  /** Receives the build's output as it comes. */
  log: (chunk: string | Buffer) => void;
  /** Stops the build (its process group is killed). */
  signal?: AbortSignal;
  /** Called with the pid (= process group) of each command the build starts. */
  onSpawn?: (pid: number) => void;
  /** PATH for the build (default: the server's). */
  path?: string;
}

export interface BuiltArtifact {
  /** The artifact file (inside workDir). */
  file: string;
  /** The name a download gets. */
  fileName: string;
  sha256: string;
  size: number;
}

/** What the repository's togo.yaml at that commit says about building (nothing else of it is used). */
export interface RepoRecipe {
  buildCmd?: string;
  binary?: string;
}

/** Reads deploy.build_cmd and deploy.binary from a checkout's togo.yaml (absent: make). */
export async function readRepoRecipe(checkout: string): Promise<RepoRecipe> {
  const file = join(checkout, "togo.yaml");
  if (!existsSync(file)) return {};
  let doc: unknown;
  try {
    doc = parse(await readFile(file, "utf8"), { maxAliasCount: 100 });
  } catch (e) {
    throw new OperationError(`the repository's togo.yaml does not parse: ${(e as Error).message}`);
  }
  const deploy = (doc as { deploy?: Record<string, unknown> } | null)?.deploy;
  const pick = (k: string): string | undefined => {
    const v = deploy?.[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string" || v.trim() === "") throw new OperationError(`the repository's togo.yaml: deploy.${k} must be a non-empty string`);
    return v;
  };
  return { buildCmd: pick("build_cmd"), binary: pick("binary") };
}

/** The environment a build gets: its own, never the server's. */
export function buildEnv(req: Pick<BuildRequest, "coordinates" | "commit" | "path">, home: string): Record<string, string> {
  const c = req.coordinates;
  return {
    PATH: req.path ?? process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    HOME: home,
    LANG: "C.UTF-8",
    TOGO_OS: c.os,
    TOGO_ARCH: c.arch,
    GOOS: c.os,
    GOARCH: c.arch,
    TOGO_VERSION: c.version,
    TOGO_COMMIT: req.commit,
    TOGO_REPO: `${c.remote}/${c.owner}/${c.repo}`,
  };
}

/**
 * The build command as argv. isolation none: sh -c / make in the checkout. isolation docker: the same
 * inside `image` on the daemon DOCKER_HOST names, the checkout bind-mounted at /src, as the server's uid.
 */
export function buildCommand(
  recipe: Recipe,
  repo: RepoRecipe,
  paths: { checkout: string; makefile?: string },
  env: Record<string, string>,
  uid = process.getuid?.() ?? 0,
  gid = process.getgid?.() ?? 0,
): string[] {
  const inner = repo.buildCmd !== undefined ? ["sh", "-c", repo.buildCmd] : paths.makefile ? ["make", "-f", recipe.isolation === "docker" ? "/togo/Makefile" : paths.makefile] : ["make"];
  if (recipe.isolation === "none") return inner;
  if (!recipe.image) throw new OperationError("isolation docker needs an image");
  const mounts = ["-v", `${paths.checkout}:/src`];
  if (paths.makefile) mounts.push("-v", `${paths.makefile}:/togo/Makefile:ro`);
  const envArgs = Object.entries(env)
    .filter(([k]) => k !== "PATH" && k !== "HOME")
    .flatMap(([k, v]) => ["-e", `${k}=${v}`]);
  return ["docker", "run", "--rm", "--init", "--user", `${uid}:${gid}`, ...mounts, "-w", "/src", "-e", "HOME=/tmp", ...envArgs, recipe.image, ...inner];
}

/** Runs argv in its own process group, its output to log; rejects with the exit status. */
function runLogged(argv: string[], opts: { cwd: string; env: Record<string, string>; log: (c: string | Buffer) => void; signal?: AbortSignal; onSpawn?: (pid: number) => void; capture?: boolean }): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    if (opts.signal?.aborted) return reject(new OperationError("build stopped"));
    const child = spawn(argv[0], argv.slice(1), { cwd: opts.cwd, env: opts.env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let captured = "";
    const stop = () => {
      try {
        if (child.pid) process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    };
    opts.signal?.addEventListener("abort", stop, { once: true });
    if (child.pid) opts.onSpawn?.(child.pid);
    child.stdout.on("data", (c: Buffer) => (opts.capture ? (captured += c.toString()) : opts.log(c)));
    child.stderr.on("data", (c: Buffer) => opts.log(c));
    child.on("error", (e) => {
      opts.signal?.removeEventListener("abort", stop);
      reject(new OperationError(`${argv[0]} could not start: ${e.message}`));
    });
    child.on("close", (code, sig) => {
      opts.signal?.removeEventListener("abort", stop);
      // Whatever the command left running in its group goes with it.
      stop();
      if (opts.signal?.aborted) return reject(new OperationError("build stopped"));
      if (code === 0) return resolvePromise(captured);
      reject(new OperationError(`${argv[0] === "sh" ? "build_cmd" : argv.slice(0, 2).join(" ")} failed (${sig ? `signal ${sig}` : `exit ${code}`})`));
    });
  });
}

async function sha256File(path: string): Promise<{ sha256: string; size: number }> {
  const h = createHash("sha256");
  let size = 0;
  for await (const c of createReadStream(path)) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { sha256: h.digest("hex"), size };
}

/** A path inside the checkout (no `..`, no symlink leading out), or an error naming it. */
function inside(checkout: string, rel: string): string {
  const p = resolve(checkout, rel);
  const r = relative(checkout, p);
  if (r === "" || r.startsWith(`..${sep}`) || r === ".." || resolve(r) === r) throw new OperationError(`deploy.binary "${rel}" must name a file or directory inside the repository`);
  if (!existsSync(p)) throw new OperationError(`the build did not make deploy.binary "${rel}"`);
  const real = realpathSync(p);
  const realRoot = realpathSync(checkout);
  if (real !== realRoot && !real.startsWith(realRoot + sep)) throw new OperationError(`deploy.binary "${rel}" leads outside the repository`);
  return p;
}

/** Builds one commit for one os/arch; the artifact file is left in workDir. */
export async function buildArtifact(req: BuildRequest): Promise<BuiltArtifact> {
  const { coordinates: c, workDir, log } = req;
  const checkout = join(workDir, "src");
  const home = join(workDir, "home");
  await mkdir(checkout, { recursive: true });
  await mkdir(home, { recursive: true });
  const gitEnv = { PATH: req.path ?? process.env.PATH ?? "/usr/bin:/bin", HOME: home, GIT_TERMINAL_PROMPT: "0", LANG: "C.UTF-8" };
  const git = (args: string[], capture = false) =>
    runLogged(["git", "-c", "protocol.ext.allow=never", "-c", "advice.detachedHead=false", ...args], { cwd: checkout, env: gitEnv, log, signal: req.signal, capture });

  log(`togo: checking out ${req.commit} (${c.remote}/${c.owner}/${c.repo} ${c.version}) for ${c.os}/${c.arch}\n`);
  await git(["init", "-q"]);
  try {
    await git(["fetch", "-q", "--no-tags", "--depth", "1", req.cloneUrl, req.commit]);
  } catch {
    // A server that does not serve commits by id: fetch its refs, the commit is among them.
    log("togo: fetching by commit id was refused; fetching every branch and tag\n");
    await git(["fetch", "-q", "--no-tags", req.cloneUrl, "+refs/heads/*:refs/togo/heads/*", "+refs/tags/*:refs/togo/tags/*"]);
  }
  await git(["checkout", "-q", "--detach", req.commit]);
  const head = (await git(["rev-parse", "HEAD"], true)).trim();
  if (head !== req.commit) throw new OperationError(`the checkout is at ${head}, not ${req.commit}`);

  const repo = await readRepoRecipe(checkout);
  let makefile: string | undefined;
  if (repo.buildCmd === undefined && !["Makefile", "makefile", "GNUmakefile"].some((f) => existsSync(join(checkout, f)))) {
    makefile = join(workDir, "togo-default.mk");
    await writeFile(makefile, req.recipe.defaultMakefile);
  }
  const env = buildEnv(req, home);
  const argv = buildCommand(req.recipe, repo, { checkout, makefile }, env);
  log(`togo: ${repo.buildCmd !== undefined ? `build_cmd: ${repo.buildCmd}` : makefile ? "make (togo's default Makefile)" : "make"}${req.recipe.isolation === "docker" ? ` in ${req.recipe.image}` : ""}\n`);
  await runLogged(argv, { cwd: checkout, env: req.recipe.isolation === "docker" ? { ...gitEnv, ...dockerEnv() } : env, log, signal: req.signal, onSpawn: req.onSpawn });

  const out = join(workDir, "out");
  await mkdir(out, { recursive: true });
  let file: string;
  let fileName: string;
  if (repo.binary !== undefined) {
    const p = inside(checkout, repo.binary);
    const s = lstatSync(p);
    if (s.isDirectory()) {
      fileName = `${basename(p)}.tar.gz`;
      file = join(out, fileName);
      await tarGz(file, p, ["."], true, gitEnv, log, req.signal);
    } else {
      fileName = basename(p);
      file = p;
    }
  } else {
    // As Cargo did: what the build made (files git does not track) is the artifact, tarred.
    const listed = await git(["ls-files", "--others", "-z"], true);
    const files = listed.split("\0").filter((f) => f !== "");
    if (files.length === 0) throw new OperationError("the build made no files (set deploy.binary in the repository's togo.yaml, or have make write its output)");
    fileName = `${c.repo}_${c.os}_${c.arch}.tar.gz`;
    file = join(out, fileName);
    await tarGz(file, checkout, files, false, gitEnv, log, req.signal);
  }
  const { sha256, size } = await sha256File(file);
  if ((await stat(file)).size !== size) throw new OperationError("the artifact changed while it was read");
  log(`togo: artifact ${fileName}, ${size} bytes, sha256 ${sha256}\n`);
  return { file, fileName, sha256, size };
}

function dockerEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of ["DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"]) {
    const v = process.env[k];
    if (v !== undefined) env[k] = v;
  }
  return env;
}

/** A reproducible tar.gz (sorted names, fixed times and owners) of files under dir. */
async function tarGz(dest: string, dir: string, files: string[], recursive: boolean, env: Record<string, string>, log: (c: string | Buffer) => void, signal?: AbortSignal): Promise<void> {
  const list = `${dest}.list`;
  await writeFile(list, files.map((f) => `${f}\0`).join(""));
  await runLogged(["tar", "--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "-I", "gzip -n", "-cf", dest, "-C", dir, "--null", ...(recursive ? [] : ["--no-recursion"]), "-T", list], { cwd: dir, env, log, signal });
}
