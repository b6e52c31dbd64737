// The build proxy on the S3 store: two `togo artifacts serve` processes share one bucket (s3rver on
// loopback, behind the harness front that answers 412 to `If-None-Match: *` on an existing key, as
// S3 does). Identical requests to both build once; either serves the artifact; the other server
// follows the log through the store while the build runs.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupTempDirs, tempDir, togo } from "../helpers/index.js";
import { GitFixture, startProxy, waitBuild, type Proxy } from "../helpers/artifacts.js";
import { startS3, type S3Front } from "../helpers/s3.js";

const ENV = { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER", AWS_REGION: "eu-west-1", AWS_EC2_METADATA_DISABLED: "true" };
const BUCKET = "togo-artifacts";

let root: string;
let s3: S3Front;
let one: Proxy | undefined;
let two: Proxy | undefined;

beforeAll(async () => {
  root = tempDir("togo-proxy-s3-");
  s3 = await startS3(join(root, "s3"), BUCKET);
});

afterAll(async () => {
  await one?.stop();
  await two?.stop();
  await s3?.close();
  cleanupTempDirs();
});

test("two servers sharing a bucket: 20 identical POSTs split between them build the commit once; both serve it; the artifact is never overwritten", async () => {
  const repos = new GitFixture(root);
  const count = join(root, "s3.count");
  const gate = join(root, "s3.gate");
  await repos.create("shared", {
    "togo.yaml": `app: demo\ndeploy:\n  build_cmd: "echo run >> ${count}; echo building on a shared bucket; while [ ! -e ${gate} ]; do sleep 0.05; done; mkdir -p out; head -c 300000 /dev/zero | tr '\\\\0' x > out/app"\n  binary: out/app\n`,
  });
  const args = (w: string) => ["--store", `s3://${BUCKET}/proxy`, "--endpoint", s3.endpoint, "--git-url", repos.gitUrl, "--work-dir", join(root, w)];
  one = await startProxy(args("w1"), { cwd: root, env: ENV });
  two = await startProxy(args("w2"), { cwd: root, env: ENV });
  const path = (p: Proxy) => `${p.url}/example.test/acme/shared/linux/amd64/main`;

  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => fetch(path(i % 2 === 0 ? one! : two!), { method: "POST" }).then(async (r) => ({ status: r.status, body: (await r.json()) as { build_id: string } }))));
  expect(answers.map((a) => a.status)).toEqual(Array(20).fill(202));
  const ids = new Set(answers.map((a) => a.body.build_id));
  expect(ids.size).toBe(1);
  const id = [...ids][0];

  // Whichever server builds, the other follows the log through the bucket while the build waits.
  const running = new RegExp(`build ${id} running`);
  // Only one of them ever prints it: the other wait is let go (its rejection at stop is expected).
  const waits = [one.waitFor(running), two.waitFor(running)];
  for (const w of waits) w.catch(() => undefined);
  await Promise.race(waits);
  const builder = running.test(one.output()) ? one : two;
  const follower = builder === one ? two : one;
  expect(follower.output()).not.toMatch(new RegExp(`build ${id} running`));
  const logs = await fetch(`${follower.url}/builds/${id}/logs`);
  const reader = (logs.body as ReadableStream<Uint8Array>).getReader();
  let seen = "";
  while (!seen.includes("building on a shared bucket")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the log ended early:\n${seen}`);
    seen += Buffer.from(value).toString();
  }
  expect((await fetch(path(follower))).status).toBe(202);

  writeFileSync(gate, "");
  expect(await waitBuild(follower.url, id)).toMatchObject({ state: "succeeded" });
  expect(readFileSync(count, "utf8").trim().split("\n")).toHaveLength(1);

  for (const p of [one, two]) {
    const got = await fetch(path(p));
    expect(got.status).toBe(200);
    const bytes = Buffer.from(await got.arrayBuffer());
    expect(bytes.length).toBe(300000);
    expect(got.headers.get("x-togo-sha256")).toBe(createHash("sha256").update(bytes).digest("hex"));
  }
  // Every artifact write was conditional: the metadata and the blob were each created once.
  const writes = s3.log.filter((l) => /^PUT \/togo-artifacts\/proxy\/artifacts\//.test(l));
  expect(writes).toHaveLength(2);
  expect(s3.log.filter((l) => l.startsWith("412 PUT /togo-artifacts/proxy/artifacts/"))).toEqual([]);
  // After the build, POSTs to both answer 200 and nothing runs again.
  expect((await fetch(path(one), { method: "POST" })).status).toBe(200);
  expect((await fetch(path(two), { method: "POST" })).status).toBe(200);
  expect(readFileSync(count, "utf8").trim().split("\n")).toHaveLength(1);

  const ls = await togo(["artifacts", "ls", "--json", "--store", `s3://${BUCKET}/proxy`, "--endpoint", s3.endpoint], { cwd: root, env: ENV });
  expect(ls.stderr).toBe("");
  const metas = JSON.parse(ls.stdout) as { commit: string; size: number; build_id: string }[];
  expect(metas).toHaveLength(1);
  expect(metas[0]).toMatchObject({ size: 300000, build_id: id });
  expect(existsSync(join(root, "w1")) || existsSync(join(root, "w2"))).toBe(true);
});

test("a second server storing the same artifact finds it stored and keeps it (a conditional PUT refused, the bytes unchanged)", async () => {
  const { S3Store } = await import("../../src/artifacts/s3-store.js");
  for (const [k, v] of Object.entries(ENV)) process.env[k] = v;
  const store = await S3Store.open(`s3://${BUCKET}/direct`, { endpoint: s3.endpoint });
  const key = { remote: "r", owner: "o", repo: "p", commit: "b".repeat(40), os: "linux", arch: "amd64", recipe: "x" };
  const file = join(root, "a.bin");
  writeFileSync(file, "first");
  const meta = (sha256: string, size: number) => ({ coordinates: { remote: "r", owner: "o", repo: "p", os: "linux", arch: "amd64", version: "v1" }, key, commit: key.commit, sha256, size, built_at: new Date().toISOString(), recipe: "x", file_name: "a.bin" });
  const sha = (s: string) => createHash("sha256").update(s).digest("hex");
  expect(await store.put(key, file, meta(sha("first"), 5))).toBe("written");
  // Another writer that got past the metadata check at the same time: its metadata PUT is refused.
  writeFileSync(file, "second!");
  const racing = Object.create(store) as typeof store;
  racing.stat = async () => undefined;
  expect(await racing.put(key, file, meta(sha("second!"), 7))).toBe("exists");
  expect(s3.log.some((l) => l.startsWith("412 PUT /togo-artifacts/direct/artifacts/") && l.endsWith("/meta.json"))).toBe(true);
  expect((await store.stat(key))?.sha256).toBe(sha("first"));
  const body = await store.open(key, (await store.stat(key))!);
  let text = "";
  for await (const c of body!) text += String(c);
  expect(text).toBe("first");
  let part = "";
  for await (const c of (await store.open(key, (await store.stat(key))!, { start: 1, end: 3 }))!) part += String(c);
  expect(part).toBe("irs");
  // Claims: the first writer of (key, attempt) wins.
  expect(await store.claim(key, { attempt: 1, build_id: "0000000000000001" })).toBe(true);
  expect(await store.claim(key, { attempt: 1, build_id: "0000000000000002" })).toBe(false);
  expect(await store.latestClaim(key)).toEqual({ attempt: 1, build_id: "0000000000000001" });
});

test("a record read caught mid-write (JSON cut short) or cut off mid-body is read again; one that stays so is an error naming it", async () => {
  const { S3Store } = await import("../../src/artifacts/s3-store.js");
  for (const [k, v] of Object.entries(ENV)) process.env[k] = v;
  const store = await S3Store.open(`s3://${BUCKET}/torn`, { endpoint: s3.endpoint });
  const commit = "c".repeat(40);
  const record = {
    id: "00000000000000aa",
    state: "running" as const,
    coordinates: { remote: "r", owner: "o", repo: "p", os: "linux", arch: "amd64", version: "v1" },
    commit,
    key: { remote: "r", owner: "o", repo: "p", commit, os: "linux", arch: "amd64", recipe: "x" },
    attempt: 1,
    created_at: new Date().toISOString(),
  };
  await store.writeBuild(record);
  const isRecord = (p: string) => p === `/${BUCKET}/torn/builds/00000000000000aa.json`;
  s3.tear(isRecord, 2);
  expect(await store.readBuild(record.id)).toEqual(record);
  expect(s3.log.filter((l) => l === `torn GET /${BUCKET}/torn/builds/00000000000000aa.json`)).toHaveLength(2);
  s3.tear(isRecord, 5);
  await expect(store.readBuild(record.id)).rejects.toThrow(/torn\/builds\/00000000000000aa\.json is not whole JSON after 5 reads/);
  // A body cut off after the answer began (the connection lost mid-body) is read again too.
  s3.tear(isRecord, 2, "cut");
  expect(await store.readBuild(record.id)).toEqual(record);
  expect(s3.log.filter((l) => l === `cut GET /${BUCKET}/torn/builds/00000000000000aa.json`)).toHaveLength(2);
  s3.tear(isRecord, 5, "cut");
  await expect(store.readBuild(record.id)).rejects.toThrow(/reading torn\/builds\/00000000000000aa\.json was cut off 5 times/);
});
