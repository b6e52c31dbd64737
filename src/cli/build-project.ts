// What `togo build` does: the project's coordinates and commit, then either the build proxy builds
// it (artifacts.server; its logs stream here) or the builder runs here and puts the artifact into
// artifacts.store with its metadata and a build record (a failed build's record and log are kept
// there too, as the proxy keeps them).
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { arch as hostArch, tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { OperationError, UsageError } from "../core/errors.js";
import type { Reporter } from "../core/log.js";
import type { Spec } from "../core/spec.js";
import { ArtifactClient, describeCoordinates, type BuildCoordinates } from "../artifacts/client.js";
import { projectSource, unpushedNote } from "../ship/store-artifact.js";

export interface BuildWanted {
  os?: string;
  arch?: string;
  version?: string;
}

export interface BuildOutput {
  coordinates: BuildCoordinates;
  commit?: string;
  sha256: string;
  size: number;
  file_name?: string;
  store?: string;
  server?: string;
  build_id?: string;
  /** false: it was built before (nothing ran). */
  built: boolean;
}

const GO_ARCH: Record<string, string> = { x64: "amd64", arm64: "arm64", ia32: "386", arm: "arm", riscv64: "riscv64", ppc64: "ppc64le", s390x: "s390x" };
const NAME = /^[a-z0-9]{1,20}$/;

export function defaultPlatform(w: BuildWanted): { os: string; arch: string } {
  const os = w.os ?? "linux";
  const arch = w.arch ?? GO_ARCH[hostArch()] ?? hostArch();
  if (!NAME.test(os)) throw new UsageError(`--os "${os}" is not an os name as GOOS writes it (linux, darwin, freebsd, ...)`);
  if (!NAME.test(arch)) throw new UsageError(`--arch "${arch}" is not an architecture as GOARCH writes it (amd64, arm64, 386, arm, ...)`);
  return { os, arch };
}

export async function buildProject(spec: Spec, w: BuildWanted, log: Reporter, onLog: (chunk: string | Buffer) => void): Promise<{ data: BuildOutput; message: string }> {
  const platform = defaultPlatform(w);
  const why = "togo build builds a commit of the project";
  // The current commit must be what the working tree holds; a named version is what it names.
  const source = await projectSource(spec, why, { requireClean: w.version === undefined, forDeploy: false });
  const version = w.version ?? source.commit;
  const coordinates: BuildCoordinates = { remote: source.remote, owner: source.owner, repo: source.repo, ...platform, version };
  const { checkCoordinates } = await import("../artifacts/key.js");
  try {
    checkCoordinates(coordinates);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }

  if (spec.artifacts.server) {
    const client = new ArtifactClient({ server: spec.artifacts.server, tokenFile: spec.artifacts.tokenFile });
    log.info(`asking ${client.server} for ${describeCoordinates(coordinates)}`);
    let built;
    try {
      built = await client.ensure(coordinates, (t) => onLog(t));
    } catch (e) {
      const note = e instanceof OperationError && w.version === undefined ? await unpushedNote(spec.dir, source.commit) : undefined;
      if (note) throw new OperationError(`${(e as Error).message}\n(${note})`);
      throw e;
    }
    const data: BuildOutput = { coordinates, commit: w.version === undefined ? source.commit : undefined, sha256: built.sha256, size: built.size, server: client.server, build_id: built.build_id, built: built.build_id !== undefined };
    return { data, message: `${describeCoordinates(coordinates)}: ${built.build_id ? `built by ${client.server} (build ${built.build_id})` : `already built on ${client.server}`}, sha256 ${built.sha256}` };
  }
  return buildHere(spec, coordinates, source.commit, w.version, log, onLog);
}

/** The builder here, into artifacts.store: the local repository is what is checked out from. */
async function buildHere(spec: Spec, c: BuildCoordinates, headCommit: string, named: string | undefined, log: Reporter, onLog: (chunk: string | Buffer) => void): Promise<{ data: BuildOutput; message: string }> {
  const [{ openStore }, { artifactKey, recipeHash }, { buildArtifact, DEFAULT_MAKEFILE }] = await Promise.all([
    import("../artifacts/store.js"),
    import("../artifacts/key.js"),
    import("../artifacts/builder.js"),
  ]);
  let commit = headCommit;
  if (named !== undefined) {
    const r = await execa("git", ["rev-parse", "--verify", "-q", `${named}^{commit}`], { cwd: spec.dir, reject: false });
    if (r.exitCode !== 0) throw new UsageError(`--version ${named} names no commit in ${spec.dir} (a tag, branch or commit id; fetch it first if it is only on the remote)`);
    commit = String(r.stdout).trim();
  }
  const recipe = { isolation: "none" as const, defaultMakefile: DEFAULT_MAKEFILE };
  const key = artifactKey(c, commit, recipeHash(recipe));
  const store = await openStore(spec.artifacts.store, { endpoint: spec.artifacts.endpoint, cwd: spec.dir });
  const before = await store.stat(key);
  if (before) {
    const data: BuildOutput = { coordinates: c, commit, sha256: before.sha256, size: before.size, file_name: before.file_name, store: store.location, build_id: before.build_id, built: false };
    return { data, message: `${describeCoordinates(c)} (${commit.slice(0, 12)}) is in ${store.location} already (built ${before.built_at}), sha256 ${before.sha256}` };
  }

  const id = randomBytes(8).toString("hex");
  const now = () => new Date().toISOString();
  const record = { id, state: "running" as const, coordinates: c, commit, key, attempt: 1, created_at: now(), started_at: now() };
  await store.writeBuild(record);
  const logs = await store.logWriter(id);
  const logLocation = store.location.startsWith("s3://") ? `${store.location.replace(/\/+$/, "")}/builds/${id}.log` : join(store.location, "builds", `${id}.log`);
  const workDir = mkdtempSync(join(tmpdir(), "togo-build-"));
  log.info(`building ${describeCoordinates(c)} (${commit.slice(0, 12)}) here into ${store.location}; log: ${logLocation}`);
  try {
    const built = await buildArtifact({
      coordinates: c,
      commit,
      cloneUrl: spec.dir,
      recipe,
      workDir,
      log: (chunk) => {
        logs.write(chunk);
        onLog(chunk);
      },
    });
    const meta = { coordinates: c, key, commit, sha256: built.sha256, size: built.size, built_at: now(), recipe: key.recipe, file_name: built.fileName, build_id: id };
    const put = await store.put(key, built.file, meta);
    await logs.flush();
    const kept = put === "exists" ? await store.stat(key) : meta;
    await store.writeBuild({ ...record, state: "succeeded", finished_at: now(), sha256: kept?.sha256 ?? built.sha256, size: kept?.size ?? built.size });
    const data: BuildOutput = { coordinates: c, commit, sha256: kept?.sha256 ?? built.sha256, size: kept?.size ?? built.size, file_name: kept?.file_name ?? built.fileName, store: store.location, build_id: id, built: true };
    return { data, message: `built ${describeCoordinates(c)} (${commit.slice(0, 12)}) into ${store.location}: ${data.file_name}, ${data.size} bytes, sha256 ${data.sha256}` };
  } catch (e) {
    const error = (e as Error).message;
    logs.write(`togo: the build failed: ${error}\n`);
    await logs.flush().catch(() => undefined);
    await store.writeBuild({ ...record, state: "failed", finished_at: now(), error }).catch(() => undefined);
    throw new OperationError(`the build of ${describeCoordinates(c)} (${commit.slice(0, 12)}) failed: ${error}; its log: ${logLocation}`);
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}
