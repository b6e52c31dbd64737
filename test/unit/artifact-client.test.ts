// The build proxy's client against a recording fake fetch: the branches that protect the user —
// a refused token (401), nothing known (404), a failed build (424, where its logs are), a download
// whose bytes do not match the sha256 the proxy vouched for, a proxy that is not there — and the
// happy path's requests (the bearer token, the path, following logs, waiting out a 202).
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ArtifactClient, coordinatesPath, fileName, readToken, type BuildCoordinates, type FetchLike } from "../../src/artifacts/client.js";
import { OperationError, UsageError } from "../../src/core/errors.js";
import { cleanupTempDirs, tempDir } from "../helpers/index.js";

afterAll(cleanupTempDirs);

const C: BuildCoordinates = { remote: "git.example.com", owner: "acme", repo: "hello", os: "linux", arch: "amd64", version: "v1.2.0" };
const PATH = "/git.example.com/acme/hello/linux/amd64/v1.2.0";
const BYTES = Buffer.from("#!/bin/sh\necho built\n");
const SHA = createHash("sha256").update(BYTES).digest("hex");

interface Seen {
  method: string;
  url: string;
  auth?: string;
}

type Route = (seen: Seen, nth: number) => Response | Promise<Response>;

/** A fake fetch answering `METHOD /path` from routes (the nth call of each), recording every request. */
function fakeProxy(routes: Record<string, Route>): { fetch: FetchLike; seen: Seen[] } {
  const seen: Seen[] = [];
  const counts = new Map<string, number>();
  return {
    seen,
    fetch: async (url, init) => {
      const u = new URL(url);
      const method = init?.method ?? "GET";
      const headers = (init?.headers ?? {}) as Record<string, string>;
      const s = { method, url: u.pathname, auth: headers.authorization };
      seen.push(s);
      const key = `${method} ${u.pathname}`;
      const n = counts.get(key) ?? 0;
      counts.set(key, n + 1);
      const route = routes[key];
      if (!route) return new Response(JSON.stringify({ error: "not found" }), { status: 404 });
      return route(s, n);
    },
  };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
const artifact = (bytes: Buffer, sha = SHA) => new Response(new Uint8Array(bytes), { status: 200, headers: { "x-togo-sha256": sha, etag: `"${sha}"`, "content-disposition": 'attachment; filename="hello"' } });

const client = (fetch: FetchLike, tokenFile?: string) => new ArtifactClient({ server: "http://proxy.test:7070/", fetch, tokenFile, pollMs: 0 });

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a rejection");
}

test("the API path keeps the coordinates in order; a version with / stays one version", () => {
  expect(coordinatesPath(C)).toBe(PATH.slice(1));
  expect(coordinatesPath({ ...C, version: "release/1.2" })).toBe("git.example.com/acme/hello/linux/amd64/release/1.2");
});

test("ensure: a 202 is followed through its logs (shown as they come) to the artifact; the token is sent on every request", async () => {
  const dir = tempDir();
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, "s3cret-token\n");
  const p = fakeProxy({
    [`POST ${PATH}`]: (_, n) => (n === 0 ? json(202, { build_id: "b1", status_url: "/builds/b1", logs_url: "/builds/b1/logs" }) : json(200, { sha256: SHA, size: BYTES.length, url: PATH })),
    "GET /builds/b1/logs": () => new Response("cloning\nmake\n", { status: 200 }),
    "GET /builds/b1": () => json(200, { id: "b1", state: "succeeded", coordinates: C, commit: "a".repeat(40), sha256: SHA }),
  });
  const logs: string[] = [];
  const built = await client(p.fetch, tokenFile).ensure(C, (t) => logs.push(t));
  expect(built).toEqual({ sha256: SHA, size: BYTES.length, url: PATH, build_id: "b1" });
  expect(logs.join("")).toBe("cloning\nmake\n");
  expect(p.seen.map((s) => `${s.method} ${s.url}`)).toEqual([`POST ${PATH}`, "GET /builds/b1/logs", "GET /builds/b1", `POST ${PATH}`]);
  expect(p.seen.every((s) => s.auth === "Bearer s3cret-token")).toBe(true);
});

test("a cut log stream falls back to the build's state, and a reconnect does not show a line twice", async () => {
  const p = fakeProxy({
    [`POST ${PATH}`]: (_, n) => (n === 0 ? json(202, { build_id: "b2" }) : json(200, { sha256: SHA, size: 1, url: PATH })),
    "GET /builds/b2/logs": (_, n) => (n === 0 ? new Response("one\n", { status: 200 }) : new Response("one\ntwo\n", { status: 200 })),
    "GET /builds/b2": (_, n) => json(200, { id: "b2", state: n === 0 ? "running" : "succeeded", coordinates: C }),
  });
  const logs: string[] = [];
  await client(p.fetch).ensure(C, (t) => logs.push(t));
  expect(logs.join("")).toBe("one\ntwo\n");
});

test("already built: one POST, no logs", async () => {
  const p = fakeProxy({ [`POST ${PATH}`]: () => json(200, { sha256: SHA, size: 3, url: PATH }) });
  expect(await client(p.fetch).ensure(C, () => undefined)).toEqual({ sha256: SHA, size: 3, url: PATH });
  expect(p.seen).toHaveLength(1);
});

test("a failed build says so with its error and where its logs are (exit 1)", async () => {
  const p = fakeProxy({
    [`POST ${PATH}`]: () => json(202, { build_id: "b3" }),
    "GET /builds/b3/logs": () => new Response("make: *** [build] Error 2\n"),
    "GET /builds/b3": () => json(200, { id: "b3", state: "failed", coordinates: C, error: "make exited 2" }),
  });
  const e = await rejection(client(p.fetch).ensure(C, () => undefined));
  expect(e).toBeInstanceOf(OperationError);
  expect(e.message).toBe("the build of git.example.com/acme/hello v1.2.0 for linux/amd64 failed on http://proxy.test:7070: make exited 2; its logs: http://proxy.test:7070/builds/b3/logs");
});

test("424 on a download names the failed build and its logs", async () => {
  const p = fakeProxy({ [`GET ${PATH}`]: () => json(424, { error: "build failed", logs_url: "/builds/b4/logs" }) });
  const e = await rejection(client(p.fetch).download(C, join(tempDir(), "a")));
  expect(e).toBeInstanceOf(OperationError);
  expect(e.message).toContain("the build of git.example.com/acme/hello v1.2.0 for linux/amd64 failed on http://proxy.test:7070: build failed; logs: /builds/b4/logs");
});

test("401 without a token asks for artifacts.token_file; with a wrong one names the file (exit 2)", async () => {
  const p = fakeProxy({ [`POST ${PATH}`]: () => json(401, { error: "unauthorized" }) });
  const none = await rejection(client(p.fetch).request(C));
  expect(none).toBeInstanceOf(UsageError);
  expect(none.message).toBe("the build proxy at http://proxy.test:7070 wants a token (401); set artifacts.token_file to a file holding the token it was started with");
  const tokenFile = join(tempDir(), "token");
  writeFileSync(tokenFile, "wrong\n");
  const wrong = await rejection(client(p.fetch, tokenFile).request(C));
  expect(wrong.message).toContain(`refused the token in ${tokenFile} (401)`);
  expect(wrong.message).not.toContain("wrong"); // the token itself is never shown
});

test("404 says what is unknown and how to get it built", async () => {
  const p = fakeProxy({});
  const e = await rejection(client(p.fetch).download(C, join(tempDir(), "a")));
  expect(e).toBeInstanceOf(OperationError);
  expect(e.message).toContain("knows no git.example.com/acme/hello v1.2.0 for linux/amd64 (not found); ask for a build first (togo build --os linux --arch amd64 --version v1.2.0)");
});

test("a download whose bytes do not hash to X-Togo-Sha256 is refused and nothing is kept", async () => {
  const dir = tempDir();
  const tampered = Buffer.from(BYTES);
  tampered[0] ^= 1;
  const p = fakeProxy({ [`GET ${PATH}`]: () => artifact(tampered) });
  const e = await rejection(client(p.fetch).download(C, join(dir, "hello")));
  expect(e).toBeInstanceOf(OperationError);
  expect(e.message).toContain(`does not match its sha256 (the proxy says ${SHA}, the ${BYTES.length} bytes received hash to`);
  expect(readdirSync(dir)).toEqual([]);
});

test("a download the proxy vouches for with another sha256 than the build recorded is refused before a byte is written", async () => {
  const dir = tempDir();
  const p = fakeProxy({ [`GET ${PATH}`]: () => artifact(BYTES) });
  const e = await rejection(client(p.fetch).download(C, join(dir, "hello"), "b".repeat(64)));
  expect(e.message).toContain(`with sha256 ${SHA}, not the ${"b".repeat(64)} its build recorded`);
  expect(readdirSync(dir)).toEqual([]);
});

test("a 202 on download waits and asks again; the file lands whole with its name", async () => {
  const dir = tempDir();
  const p = fakeProxy({ [`GET ${PATH}`]: (_, n) => (n === 0 ? new Response("", { status: 202, headers: { "retry-after": "0" } }) : artifact(BYTES)) });
  const got = await client(p.fetch).download(C, join(dir, "out", "hello"), SHA);
  expect(got).toEqual({ path: join(dir, "out", "hello"), sha256: SHA, size: BYTES.length, name: "hello" });
  expect(readFileSync(got.path)).toEqual(BYTES);
  expect(readdirSync(join(dir, "out"))).toEqual(["hello"]);
  expect(p.seen).toHaveLength(2);
});

test("an artifact without X-Togo-Sha256 is not taken", async () => {
  const p = fakeProxy({ [`GET ${PATH}`]: () => new Response(new Uint8Array(BYTES), { status: 200 }) });
  const e = await rejection(client(p.fetch).download(C, join(tempDir(), "a")));
  expect(e.message).toContain("an artifact without an X-Togo-Sha256 header; is artifacts.server a togo build proxy?");
});

test("a proxy that is not there: unreachable, with what to do", async () => {
  const refused: FetchLike = async () => {
    throw Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } });
  };
  const e = await rejection(client(refused).request(C));
  expect(e).toBeInstanceOf(OperationError);
  expect(e.message).toBe(
    "the build proxy at http://proxy.test:7070 is unreachable (ECONNREFUSED) asking for git.example.com/acme/hello v1.2.0 for linux/amd64; start it (togo artifacts serve) or fix artifacts.server",
  );
});

test("token files: missing, empty and a directory are the user's to fix (exit 2)", () => {
  const dir = tempDir();
  expect(() => readToken(join(dir, "nope"))).toThrow(UsageError);
  expect(() => readToken(join(dir, "nope"))).toThrow(/no such file/);
  writeFileSync(join(dir, "empty"), "\n");
  expect(() => readToken(join(dir, "empty"))).toThrow(/is empty/);
  expect(() => readToken(dir)).toThrow(/is a directory/);
  writeFileSync(join(dir, "t"), "  tok  \nsecond line\n");
  expect(readToken(join(dir, "t"))).toBe("tok");
  expect(existsSync(join(dir, "t"))).toBe(true);
});

test("Content-Disposition names only a plain file name", () => {
  expect(fileName('attachment; filename="hello"')).toBe("hello");
  expect(fileName("attachment; filename*=UTF-8''hello-linux-amd64.tar.gz")).toBe("hello-linux-amd64.tar.gz");
  expect(fileName('attachment; filename="../../etc/passwd"')).toBeUndefined();
  expect(fileName('attachment; filename=".."')).toBeUndefined();
  expect(fileName(null)).toBeUndefined();
});
