// The build proxy's core in-process, on a real fs store, with the builder and ls-remote replaced
// (the integration test runs the real ones): claims between two servers, the limit on re-runs, keys.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { FsStore } from "../../src/artifacts/fs-store.js";
import { artifactKey, cloneUrl, keyPath, parseCoordinates, recipeHash, type Coordinates } from "../../src/artifacts/key.js";
import { pickCommit, Resolver } from "../../src/artifacts/resolve.js";
import { BuildProxy } from "../../src/artifacts/server/proxy.js";
import type { BuildRequest, BuiltArtifact } from "../../src/artifacts/builder.js";
import type { BuildRecord } from "../../src/artifacts/store.js";
import { cleanupTempDirs, tempDir } from "../helpers/index.js";

const COMMIT = "a".repeat(40);
const RECIPE = { isolation: "none" as const, defaultMakefile: "" };
const coords: Coordinates = { remote: "example.test", owner: "acme", repo: "app", os: "linux", arch: "amd64", version: "v1" };

afterAll(cleanupTempDirs);

/** A builder that counts its runs and finishes when `release` is called. */
function gatedBuilder() {
  const runs: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const build = async (req: BuildRequest): Promise<BuiltArtifact> => {
    runs.push(req.commit);
    req.log("building\n");
    await gate;
    const file = join(req.workDir, "app");
    writeFileSync(file, "bytes");
    return { file, fileName: "app", sha256: "2cb4b1431b84ec15d35ed83bb927e27e8967d75f4bcd9cc4b25c8d879ae23e18", size: 5 };
  };
  return { runs, release: () => release(), build };
}

function proxyOn(store: FsStore, build: (r: BuildRequest) => Promise<BuiltArtifact>, work: string): BuildProxy {
  return new BuildProxy({ store, gitUrl: "file:///nowhere/{repo}", recipe: RECIPE, jobs: 2, workRoot: work, build, resolver: new Resolver(2000, async () => COMMIT), heartbeatMs: 3_600_000 });
}

const until = async (cond: () => Promise<boolean>) => {
  for (let i = 0; i < 2000 && !(await cond()); i++) await new Promise((r) => setTimeout(r, 10));
};

describe("two servers on one store", () => {
  test("identical requests to both: one claim wins, one build runs, both answer with its id", async () => {
    const root = tempDir("togo-art-unit-");
    const store = new FsStore(join(root, "store"));
    const a = gatedBuilder();
    const b = gatedBuilder();
    const one = proxyOn(store, a.build, join(root, "wa"));
    const two = proxyOn(store, b.build, join(root, "wb"));
    const answers = await Promise.all([...Array.from({ length: 10 }, () => one.request(coords)), ...Array.from({ length: 10 }, () => two.request(coords))]);
    const ids = new Set(answers.map((x) => (x.kind === "building" ? x.record.id : x.kind)));
    expect(ids.size).toBe(1);
    a.release();
    b.release();
    const key = artifactKey(coords, COMMIT, recipeHash(RECIPE));
    await until(async () => (await store.stat(key)) !== undefined);
    expect(a.runs.length + b.runs.length).toBe(1);
    // The losing server's record and queue mark are gone; the winner's mark goes when it finishes.
    expect((await store.listBuilds()).length).toBe(1);
    await until(async () => (await store.activeBuilds()).length === 0);
    expect(await one.request(coords)).toMatchObject({ kind: "built" });
    expect(await two.lookup(coords)).toMatchObject({ kind: "built" });
    await one.close();
    await two.close();
  });
});

describe("take-over", () => {
  function deadPid(): number {
    // A process that has exited: its pid is not alive (and not ours).
    return Number(spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]).stdout.toString());
  }

  async function abandoned(store: FsStore, attempt: number, runner?: BuildRecord["runner"]): Promise<BuildRecord> {
    const key = artifactKey(coords, COMMIT, recipeHash(RECIPE));
    const record: BuildRecord = {
      id: "0123456789abcdef",
      state: "running",
      coordinates: coords,
      commit: COMMIT,
      key,
      attempt,
      created_at: new Date().toISOString(),
      runner: runner ?? { host: (await import("node:os")).hostname(), pid: deadPid(), heartbeat_at: new Date().toISOString() },
    };
    await store.writeBuild(record);
    await store.setActive(record.id, true);
    expect(await store.claim(key, { attempt: 1, build_id: record.id })).toBe(true);
    return record;
  }

  test("a finished build left marked as queued (its server stopped before clearing it) is only unmarked", async () => {
    const root = tempDir("togo-art-unit-");
    const store = new FsStore(join(root, "store"));
    const r = await abandoned(store, 1);
    await store.writeBuild({ ...r, state: "succeeded", sha256: "0".repeat(64), size: 1 });
    const g = gatedBuilder();
    const proxy = proxyOn(store, g.build, join(root, "w"));
    await proxy.start();
    expect(await store.activeBuilds()).toEqual([]);
    expect(g.runs).toEqual([]);
    await proxy.close();
  });

  test("a build whose server died is run again, as its next run", async () => {
    const root = tempDir("togo-art-unit-");
    const store = new FsStore(join(root, "store"));
    const r = await abandoned(store, 1);
    const g = gatedBuilder();
    g.release();
    const proxy = proxyOn(store, g.build, join(root, "w"));
    await proxy.start();
    await until(async () => (await store.readBuild(r.id))?.state === "succeeded");
    expect(await store.readBuild(r.id)).toMatchObject({ state: "succeeded", attempt: 2 });
    expect(g.runs).toEqual([COMMIT]);
    expect((await store.latestClaim(r.key))?.attempt).toBe(2);
    // Out of the queue once finished.
    expect(await store.activeBuilds()).toEqual([]);
    await proxy.close();
  });

  test("another host's build is left alone while its heartbeat is fresh, and taken over once it is older than the lease", async () => {
    const root = tempDir("togo-art-unit-");
    const store = new FsStore(join(root, "store"));
    // pid 1 on another host: never looked up here, only the heartbeat counts.
    const r = await abandoned(store, 1, { host: "another-host.example", pid: 1, heartbeat_at: new Date().toISOString() });
    const g = gatedBuilder();
    g.release();
    const proxy = new BuildProxy({ store, gitUrl: "file:///nowhere/{repo}", recipe: RECIPE, jobs: 1, workRoot: join(root, "w"), build: g.build, resolver: new Resolver(2000, async () => COMMIT), heartbeatMs: 3_600_000, leaseMs: 60_000 });
    await proxy.start();
    expect(await store.readBuild(r.id)).toMatchObject({ state: "running", attempt: 1, runner: { host: "another-host.example" } });
    expect(await proxy.lookup(coords)).toMatchObject({ kind: "building" });
    // The same record, its heartbeat now 61 s old.
    await store.writeBuild({ ...r, runner: { host: "another-host.example", pid: 1, heartbeat_at: new Date(Date.now() - 61_000).toISOString() } });
    await proxy.recover();
    await until(async () => (await store.readBuild(r.id))?.state === "succeeded");
    expect(await store.readBuild(r.id)).toMatchObject({ state: "succeeded", attempt: 2 });
    expect(g.runs).toEqual([COMMIT]);
    await proxy.close();
  });

  test("a build interrupted 3 times is marked failed, with why, and not run again", async () => {
    const root = tempDir("togo-art-unit-");
    const store = new FsStore(join(root, "store"));
    const r = await abandoned(store, 3);
    const g = gatedBuilder();
    const proxy = proxyOn(store, g.build, join(root, "w"));
    await proxy.start();
    expect(await store.readBuild(r.id)).toMatchObject({ state: "failed", error: "interrupted 3 times (its server stopped mid-build each time); not run again" });
    expect(g.runs).toEqual([]);
    expect(await store.activeBuilds()).toEqual([]);
    expect(await proxy.lookup(coords)).toMatchObject({ kind: "failed" });
    // A new request after the failure is a new build (the next attempt's claim).
    const again = await proxy.request(coords);
    expect(again.kind).toBe("building");
    g.release();
    await proxy.close();
  });
});

describe("keys and coordinates", () => {
  test("the key is the commit, os, arch and recipe; the ref name is not in it", () => {
    const k1 = artifactKey(coords, COMMIT, "r");
    const k2 = artifactKey({ ...coords, version: "stable" }, COMMIT, "r");
    expect(keyPath(k1)).toBe(keyPath(k2));
    expect(keyPath(k1)).toBe(`example.test/acme/app/${COMMIT}/linux-amd64-r`);
    expect(recipeHash({ ...RECIPE, isolation: "docker", image: "golang:1.22" })).not.toBe(recipeHash(RECIPE));
  });

  test("path segments that could leave the store or the URL are refused", () => {
    for (const bad of ["example.test/acme/../linux/amd64/v1", "example.test/acme/app/linux/amd64/../../x", "example.test/acme/app/linux/amd64/a..b", ".git/acme/app/linux/amd64/v1", "example.test/acme/app/linux/amd64/-x", "example.test/acme/app/linux/amd64/v1.lock", "a/b/c"]) {
      expect(() => parseCoordinates(bad)).toThrow();
    }
    expect(parseCoordinates("example.test/acme/app/linux/amd64/release/1.2").version).toBe("release/1.2");
    expect(cloneUrl("https://{remote}/{owner}/{repo}.git", coords)).toBe("https://example.test/acme/app.git");
  });

  test("ls-remote output: an annotated tag's commit (peeled) wins over the tag object, a tag over a branch", () => {
    const out = ["1111111111111111111111111111111111111111\trefs/heads/v1", "2222222222222222222222222222222222222222\trefs/tags/v1", "3333333333333333333333333333333333333333\trefs/tags/v1^{}"].join("\n");
    expect(pickCommit(out, "v1")).toBe("3".repeat(40));
    expect(pickCommit(out.split("\n").slice(0, 2).join("\n"), "v1")).toBe("2".repeat(40));
    expect(pickCommit(out.split("\n")[0], "v1")).toBe("1".repeat(40));
    expect(pickCommit(out, "v2")).toBeUndefined();
  });
});

test("GET /builds/{id}/logs: a store read that fails mid-stream ends the log with a line naming the failure", async () => {
  const { buildProxyApp } = await import("../../src/artifacts/server/http.js");
  const id = "00000000000000aa";
  async function* failing(): AsyncGenerator<Buffer> {
    yield Buffer.from("step 1\n");
    throw new Error("s3://bucket/p: builds/00000000000000aa.json is not whole JSON after 5 reads");
  }
  const proxy = { store: { readBuild: async (b: string) => (b === id ? ({ id, state: "running" } as BuildRecord) : undefined) }, followLog: () => failing() };
  const app = buildProxyApp({ proxy: proxy as unknown as BuildProxy });
  try {
    const r = await app.inject({ method: "GET", url: `/builds/${id}/logs` });
    expect({ status: r.statusCode, type: r.headers["content-type"] }).toEqual({ status: 200, type: "text/plain; charset=utf-8" });
    expect(r.body).toBe("step 1\n\ntogo: the build log could not be read from the store: s3://bucket/p: builds/00000000000000aa.json is not whole JSON after 5 reads\n");
  } finally {
    await app.close();
  }
});
