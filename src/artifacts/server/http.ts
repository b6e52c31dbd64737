// The build proxy's HTTP API (fastify), exactly the contract:
//   POST /{remote}/{owner}/{repo}/{os}/{arch}/{version}  202 {build_id, status_url, logs_url} | 200 {sha256, size, url}
//   GET  same path   200 the bytes (Content-Disposition, ETag, X-Togo-Sha256) | 202 + Retry-After | 404 | 424
//   GET  /builds/{id}        {id, state, coordinates, commit, sha256?, error?}
//   GET  /builds/{id}/logs   text, streamed while the build runs
// With a token, every request needs `Authorization: Bearer <token>` (401 otherwise).
import { timingSafeEqual, createHash } from "node:crypto";
import { Readable } from "node:stream";
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import { BadCoordinatesError, coordinatesPath, parseCoordinates, type Coordinates } from "../key.js";
import { isBuildId, type BuildRecord, type ByteRange } from "../store.js";
import type { BuildProxy } from "./proxy.js";

export interface HttpOptions {
  proxy: BuildProxy;
  /** Required in Authorization: Bearer when set. */
  token?: string;
  /** The URL clients reach this server at (for status_url, logs_url, url); default: from the request's Host. */
  publicUrl?: string;
  /** Seconds a client is told to wait before asking again while a build runs. */
  retryAfter?: number;
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Constant-time comparison of the presented token with the configured one. */
function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return m !== null && timingSafeEqual(digest(m[1]), digest(token));
}

/** A file name safe in a quoted Content-Disposition. */
function dispositionName(name: string): string {
  return name.replace(/[^A-Za-z0-9._+-]/g, "_");
}

/** `bytes=a-b`, `bytes=a-`, `bytes=-n` (one range) → inclusive bounds; several ranges or another unit: the whole body. */
export function parseRange(header: string, size: number): ByteRange | "unsatisfiable" | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  let start: number;
  let end: number;
  if (m[1] === "") {
    const n = Number(m[2]);
    if (n === 0) return "unsatisfiable";
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return "unsatisfiable";
  return { start, end };
}

/**
 * The log's bytes; a store read that fails while it streams ends it with a line saying so, where
 * an error answer would meet the text/plain reply already begun (and say only that).
 */
async function* endingWithError(log: AsyncGenerator<Buffer>): AsyncGenerator<Buffer> {
  try {
    yield* log;
  } catch (e) {
    yield Buffer.from(`\ntogo: the build log could not be read from the store: ${(e as Error).message}\n`);
  }
}

export function buildProxyApp(opts: HttpOptions): FastifyInstance {
  const app = Fastify({ logger: false, exposeHeadRoutes: true, routerOptions: { maxParamLength: 500 }, return503OnClosing: true });
  const { proxy } = opts;
  const retryAfter = String(opts.retryAfter ?? 2);

  const base = (req: FastifyRequest) => (opts.publicUrl ?? `${req.protocol}://${req.headers.host ?? "127.0.0.1"}`).replace(/\/+$/, "");
  const urls = (req: FastifyRequest, r: BuildRecord) => ({ status_url: `${base(req)}/builds/${r.id}`, logs_url: `${base(req)}/builds/${r.id}/logs` });
  const artifactUrl = (req: FastifyRequest, c: Coordinates) => `${base(req)}/${coordinatesPath(c)}`;

  if (opts.token) {
    const token = opts.token;
    app.addHook("onRequest", async (req, reply) => {
      if (!tokenMatches(req.headers.authorization, token)) {
        // Returning the reply ends the request here: no handler runs without the token.
        return reply.code(401).header("WWW-Authenticate", 'Bearer realm="togo build proxy"').send({ error: "a token is required: send Authorization: Bearer <token> (artifacts.token_file)" });
      }
    });
  }

  app.setErrorHandler(async (err: Error & { statusCode?: number }, _req, reply) => {
    if (err instanceof BadCoordinatesError) return reply.code(400).send({ error: err.message });
    const code = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    return reply.code(code).send({ error: code === 500 ? `internal error: ${err.message}` : err.message });
  });
  app.setNotFoundHandler(async (req, reply) => reply.code(404).send({ error: `no such path: ${req.method} ${req.url.split("?")[0]}; see GET/POST /{remote}/{owner}/{repo}/{os}/{arch}/{version}, GET /builds/{id}[/logs]` }));

  const coordinatesOf = (req: FastifyRequest) => {
    const p = req.params as Record<string, string>;
    return parseCoordinates([p.remote, p.owner, p.repo, p.os, p.arch, p["*"]].join("/"));
  };
  const PATH = "/:remote/:owner/:repo/:os/:arch/*";

  app.post(PATH, async (req, reply) => {
    const c = coordinatesOf(req);
    const r = await proxy.request(c);
    if (r.kind === "unknown") return reply.code(404).send({ error: r.reason });
    if (r.kind === "built") return reply.code(200).send({ sha256: r.meta.sha256, size: r.meta.size, url: artifactUrl(req, c) });
    return reply.code(202).send({ build_id: r.record.id, ...urls(req, r.record) });
  });

  app.get(PATH, async (req, reply) => {
    const c = coordinatesOf(req);
    const r = await proxy.lookup(c);
    if (r.kind === "unknown") return reply.code(404).send({ error: r.reason });
    if (r.kind === "failed") {
      const u = urls(req, r.record);
      return reply.code(424).send({ error: `build ${r.record.id} failed: ${r.record.error ?? "unknown error"}; its logs: ${u.logs_url}`, build_id: r.record.id, ...u });
    }
    if (r.kind === "building") {
      return reply
        .code(202)
        .header("Retry-After", retryAfter)
        .send({ build_id: r.record.id, state: r.record.state, ...urls(req, r.record) });
    }
    const { meta, key } = r;
    const etag = `"${meta.sha256}"`;
    reply
      .header("ETag", etag)
      .header("X-Togo-Sha256", meta.sha256)
      .header("X-Togo-Commit", meta.commit)
      .header("Content-Disposition", `attachment; filename="${dispositionName(meta.file_name)}"`)
      .header("Cache-Control", "public, max-age=31536000, immutable");
    const inm = req.headers["if-none-match"];
    if (inm && inm.split(",").some((t) => t.trim().replace(/^W\//, "") === etag)) return reply.code(304).send();
    reply.header("Accept-Ranges", "bytes").header("Content-Type", "application/octet-stream");
    // One byte range (a resumed download); an If-Range naming other bytes gets them all.
    const ifRange = req.headers["if-range"];
    const range = req.headers.range !== undefined && (ifRange === undefined || ifRange === etag) ? parseRange(req.headers.range, meta.size) : undefined;
    if (range === "unsatisfiable") return reply.code(416).header("Content-Range", `bytes */${meta.size}`).send();
    if (range) reply.code(206).header("Content-Range", `bytes ${range.start}-${range.end}/${meta.size}`).header("Content-Length", String(range.end - range.start + 1));
    else reply.code(200).header("Content-Length", String(meta.size));
    if (req.method === "HEAD") return reply.send();
    const body = await proxy.store.open(key, meta, range);
    if (!body) return reply.code(404).send({ error: `the artifact's bytes are missing from the store (${proxy.store.location})` });
    return reply.send(body);
  });

  app.get("/builds/:id", async (req, reply) => {
    const { id } = req.params as { id: string };
    const r = isBuildId(id) ? await proxy.store.readBuild(id) : undefined;
    if (!r) return reply.code(404).send({ error: `no build ${id}` });
    return reply.send({
      id: r.id,
      state: r.state,
      coordinates: r.coordinates,
      commit: r.commit,
      ...(r.sha256 ? { sha256: r.sha256, size: r.size } : {}),
      ...(r.error ? { error: r.error } : {}),
      attempt: r.attempt,
      created_at: r.created_at,
      ...(r.started_at ? { started_at: r.started_at } : {}),
      ...(r.finished_at ? { finished_at: r.finished_at } : {}),
      ...urls(req, r),
      ...(r.state === "succeeded" ? { url: artifactUrl(req, r.coordinates) } : {}),
    });
  });

  app.get("/builds/:id/logs", async (req, reply) => {
    const { id } = req.params as { id: string };
    const r = isBuildId(id) ? await proxy.store.readBuild(id) : undefined;
    if (!r) return reply.code(404).send({ error: `no build ${id}` });
    const stop = new AbortController();
    req.raw.on("close", () => stop.abort());
    reply.header("Content-Type", "text/plain; charset=utf-8").header("Cache-Control", "no-store").header("X-Content-Type-Options", "nosniff");
    return reply.send(Readable.from(endingWithError(proxy.followLog(id, stop.signal))));
  });

  return app;
}
