// The build proxy's HTTP client (the API of `togo artifacts serve`): ask for a build, follow its
// logs while it runs, download the artifact with its sha256 checked. Every answer the proxy can give
// becomes an error that says what to do: no token or a wrong one (401), nothing known (404), a
// failed build (424, with where its logs are), a download whose bytes are not what the proxy vouched for.
import { createHash } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { OperationError, UsageError } from "../core/errors.js";
import type { Coordinates } from "./key.js";

/** What a user asks the proxy for: the coordinates of the build proxy's paths. */
export type BuildCoordinates = Coordinates;

/** POST → 202: a build was queued (or joined). */
export interface BuildAccepted {
  build_id: string;
  status_url: string;
  logs_url: string;
}

/** POST → 200, or a finished build: the artifact is there. */
export interface BuiltArtifact {
  sha256: string;
  size: number;
  url: string;
}

export type BuildState = "queued" | "running" | "succeeded" | "failed";

/** GET /builds/{id}. */
export interface BuildRecord {
  id: string;
  state: BuildState;
  coordinates: unknown;
  commit?: string;
  sha256?: string;
  error?: string;
}

export interface DownloadedArtifact {
  path: string;
  sha256: string;
  size: number;
  /** The file name the proxy gave it (Content-Disposition). */
  name?: string;
}

export type FetchLike = (url: string, init?: RequestInit) => Promise<Response>;

export interface ClientOptions {
  /** The proxy's base URL (artifacts.server). */
  server: string;
  /** artifacts.token_file: its first line is the bearer token. */
  tokenFile?: string;
  /** For tests: a recording fake instead of the global fetch. */
  fetch?: FetchLike;
  /** Waits between status polls (ms); tests pass 0. */
  pollMs?: number;
  /** The longest a build may take before the client gives up on it (s). */
  timeoutSeconds?: number;
}

/** The coordinates as the API's path (each segment already checked; a version may hold `/`). */
export function coordinatesPath(c: BuildCoordinates): string {
  return [c.remote, c.owner, c.repo, c.os, c.arch, ...c.version.split("/")].map(encodeURIComponent).join("/");
}

export function describeCoordinates(c: BuildCoordinates): string {
  return `${c.remote}/${c.owner}/${c.repo} ${c.version} for ${c.os}/${c.arch}`;
}

/** The token in a token file: its first line, trimmed; a missing or empty file is the user's to fix. */
export function readToken(file: string): string {
  if (!existsSync(file)) throw new UsageError(`artifacts.token_file ${file}: no such file; write the proxy's token into it (one line) or remove the key`);
  if (statSync(file).isDirectory()) throw new UsageError(`artifacts.token_file ${file} is a directory; point it at the file holding the proxy's token`);
  const token = readFileSync(file, "utf8").split("\n")[0].trim();
  if (!token) throw new UsageError(`artifacts.token_file ${file} is empty; write the proxy's token into it (one line)`);
  return token;
}

const SHA256 = /^[0-9a-f]{64}$/;

export class ArtifactClient {
  readonly server: string;
  private readonly fetchFn: FetchLike;
  private readonly token?: string;
  private readonly tokenFile?: string;
  private readonly pollMs: number;
  private readonly timeoutMs: number;

  constructor(o: ClientOptions) {
    this.server = o.server.replace(/\/+$/, "");
    this.fetchFn = o.fetch ?? ((url, init) => fetch(url, init));
    this.tokenFile = o.tokenFile;
    this.token = o.tokenFile ? readToken(o.tokenFile) : undefined;
    this.pollMs = o.pollMs ?? 500;
    this.timeoutMs = (o.timeoutSeconds ?? 3600) * 1000;
  }

  /** POST: 200 when it is built already, else 202 with the build to follow. */
  async request(c: BuildCoordinates, signal?: AbortSignal): Promise<{ built: BuiltArtifact } | { accepted: BuildAccepted }> {
    const res = await this.call("POST", `/${coordinatesPath(c)}`, signal, c);
    if (res.status === 200) return { built: checkBuilt(await this.json(res, "POST"), this.server) };
    if (res.status === 202) {
      const body = (await this.json(res, "POST")) as Partial<BuildAccepted>;
      if (typeof body.build_id !== "string" || !body.build_id) throw this.odd(`POST /${coordinatesPath(c)}`, "a 202 without a build_id");
      return {
        accepted: {
          build_id: body.build_id,
          status_url: body.status_url ?? `/builds/${encodeURIComponent(body.build_id)}`,
          logs_url: body.logs_url ?? `/builds/${encodeURIComponent(body.build_id)}/logs`,
        },
      };
    }
    throw await this.failure(res, "POST", c);
  }

  /** GET /builds/{id}. */
  async status(id: string, signal?: AbortSignal): Promise<BuildRecord> {
    const res = await this.call("GET", `/builds/${encodeURIComponent(id)}`, signal);
    if (res.status !== 200) throw await this.failure(res, `GET /builds/${id}`);
    const r = (await this.json(res, `GET /builds/${id}`)) as BuildRecord;
    if (!["queued", "running", "succeeded", "failed"].includes(r.state)) throw this.odd(`GET /builds/${id}`, `state ${JSON.stringify(r.state)}`);
    return r;
  }

  /**
   * Follows a build's logs while it runs (each chunk to `onLog` as it comes), then returns its
   * record once it is over. A cut log stream (a restarted proxy) falls back to polling its state.
   */
  async follow(id: string, onLog: (text: string) => void, signal?: AbortSignal): Promise<BuildRecord> {
    const deadline = Date.now() + this.timeoutMs;
    let shown = 0;
    for (;;) {
      try {
        const res = await this.call("GET", `/builds/${encodeURIComponent(id)}/logs`, signal);
        if (res.status === 200 && res.body) {
          // The stream starts from the beginning each time: skip what was shown already.
          let seen = 0;
          const decoder = new TextDecoder();
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            const text = decoder.decode(chunk, { stream: true });
            const fresh = text.slice(Math.max(0, shown - seen));
            seen += text.length;
            if (fresh) {
              onLog(fresh);
              shown += fresh.length;
            }
          }
        } else await res.body?.cancel();
      } catch (e) {
        if (signal?.aborted || e instanceof UsageError) throw e;
        // The stream broke: the state says whether the build is over.
      }
      const record = await this.status(id, signal);
      if (record.state === "succeeded" || record.state === "failed") return record;
      if (Date.now() > deadline) throw new OperationError(`build ${id} on ${this.server} is still ${record.state} after ${Math.round(this.timeoutMs / 1000)}s; see ${this.server}/builds/${id}/logs`);
      await pause(this.pollMs, signal);
    }
  }

  /** The artifact for `c`, building it first when the proxy has none; logs go to `onLog` meanwhile. */
  async ensure(c: BuildCoordinates, onLog: (text: string) => void, signal?: AbortSignal): Promise<BuiltArtifact & { build_id?: string }> {
    const asked = await this.request(c, signal);
    if ("built" in asked) return asked.built;
    const id = asked.accepted.build_id;
    const record = await this.follow(id, onLog, signal);
    if (record.state === "failed") {
      throw new OperationError(
        `the build of ${describeCoordinates(c)} failed on ${this.server}${record.error ? `: ${record.error}` : ""}; its logs: ${this.server}/builds/${id}/logs`,
      );
    }
    // Built: the artifact's answer is the GET's (sha256, size).
    const again = await this.request(c, signal);
    if ("built" in again) return { ...again.built, build_id: id };
    if (record.sha256 && SHA256.test(record.sha256)) return { sha256: record.sha256, size: -1, url: `/${coordinatesPath(c)}`, build_id: id };
    throw this.odd(`POST /${coordinatesPath(c)}`, `build ${id} succeeded but the artifact is not there`);
  }

  /**
   * Downloads the artifact to `dest` (written beside it and renamed: a cut-off download is never
   * taken for the artifact). Its sha256 must match the proxy's X-Togo-Sha256 and, when given,
   * `expected` (what the build said); otherwise nothing is kept. 202 (still building) waits for
   * Retry-After and asks again.
   */
  async download(c: BuildCoordinates, dest: string, expected?: string, signal?: AbortSignal): Promise<DownloadedArtifact> {
    const path = `/${coordinatesPath(c)}`;
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const res = await this.call("GET", path, signal, c);
      if (res.status === 202) {
        await res.body?.cancel();
        if (Date.now() > deadline) throw new OperationError(`${describeCoordinates(c)} is still building on ${this.server} after ${Math.round(this.timeoutMs / 1000)}s`);
        const after = Number(res.headers.get("retry-after"));
        await pause(Number.isFinite(after) && after > 0 ? Math.min(after * 1000, 10_000) : this.pollMs, signal);
        continue;
      }
      if (res.status !== 200) throw await this.failure(res, "GET", c);
      const vouched = (res.headers.get("x-togo-sha256") ?? "").toLowerCase();
      if (!SHA256.test(vouched)) {
        await res.body?.cancel();
        throw this.odd(`GET ${path}`, "an artifact without an X-Togo-Sha256 header");
      }
      if (expected && expected !== vouched) {
        await res.body?.cancel();
        throw new OperationError(`the proxy at ${this.server} serves ${describeCoordinates(c)} with sha256 ${vouched}, not the ${expected} its build recorded; nothing was downloaded`);
      }
      const name = fileName(res.headers.get("content-disposition"));
      mkdirSync(dirname(dest), { recursive: true });
      const partial = `${dest}.${process.pid}.partial`;
      const hash = createHash("sha256");
      let size = 0;
      try {
        const out = createWriteStream(partial, { mode: 0o644 });
        const done = new Promise<void>((resolve, reject) => {
          out.on("finish", resolve);
          out.on("error", reject);
        });
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          hash.update(chunk);
          size += chunk.length;
          if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", () => r()));
        }
        out.end();
        await done;
      } catch (e) {
        rmSync(partial, { force: true });
        if (signal?.aborted) throw e;
        throw new OperationError(`the download of ${describeCoordinates(c)} from ${this.server} broke off after ${size} bytes (${(e as Error).message}); nothing was kept`);
      }
      const got = hash.digest("hex");
      if (got !== vouched) {
        rmSync(partial, { force: true });
        throw new OperationError(
          `the download of ${describeCoordinates(c)} from ${this.server} does not match its sha256 (the proxy says ${vouched}, the ${size} bytes received hash to ${got}); it was refused and nothing was kept`,
        );
      }
      renameSync(partial, dest);
      return { path: dest, sha256: got, size, name };
    }
  }

  private async call(method: string, path: string, signal?: AbortSignal, c?: BuildCoordinates): Promise<Response> {
    const headers: Record<string, string> = { accept: "application/json, text/plain, */*" };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    try {
      return await this.fetchFn(`${this.server}${path}`, { method, headers, ...(signal ? { signal } : {}) });
    } catch (e) {
      if (signal?.aborted) throw e;
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (e as Error).message;
      throw new OperationError(
        `the build proxy at ${this.server} is unreachable (${why})${c ? ` asking for ${describeCoordinates(c)}` : ""}; start it (togo artifacts serve) or fix artifacts.server`,
      );
    }
  }

  private async json(res: Response, what: string): Promise<unknown> {
    const text = await res.text();
    try {
      return JSON.parse(text);
    } catch {
      throw this.odd(what, `a body that is not JSON: ${text.slice(0, 200)}`);
    }
  }

  private odd(what: string, detail: string): OperationError {
    return new OperationError(`the build proxy at ${this.server} answered ${what} with ${detail}; is artifacts.server a togo build proxy?`);
  }

  /** The error a non-success answer means, in the user's terms. */
  private async failure(res: Response, what: string, c?: BuildCoordinates): Promise<OperationError | UsageError> {
    const body = (await res.text().catch(() => "")).trim();
    const detail = messageOf(body);
    const subject = c ? describeCoordinates(c) : what;
    switch (res.status) {
      case 401:
      case 403:
        return new UsageError(
          this.token
            ? `the build proxy at ${this.server} refused the token in ${this.tokenFile} (${res.status}); put the token the proxy was started with (its --token-file) in that file`
            : `the build proxy at ${this.server} wants a token (${res.status}); set artifacts.token_file to a file holding the token it was started with`,
        );
      case 404:
        return new OperationError(
          `the build proxy at ${this.server} knows no ${subject}${detail ? ` (${detail})` : ""}; ask for a build first (togo build${c ? ` --os ${c.os} --arch ${c.arch} --version ${c.version}` : ""}), and check that the commit is pushed where artifacts.git_url points`,
        );
      case 424:
        return new OperationError(`the build of ${subject} failed on ${this.server}${detail ? `: ${detail}` : ""}${/logs/.test(detail) ? "" : "; see its logs under /builds/<id>/logs (togo build prints the id)"}`);
      case 400:
      case 422:
        return new UsageError(`the build proxy at ${this.server} refused ${subject}: ${detail || res.statusText}`);
      default:
        return new OperationError(`the build proxy at ${this.server} answered ${what} ${subject === what ? "" : `for ${subject} `}with ${res.status} ${res.statusText}${detail ? `: ${detail}` : ""}`);
    }
  }
}

function checkBuilt(body: unknown, server: string): BuiltArtifact {
  const b = body as Partial<BuiltArtifact>;
  if (typeof b.sha256 !== "string" || !SHA256.test(b.sha256)) throw new OperationError(`the build proxy at ${server} answered a built artifact without a valid sha256; is artifacts.server a togo build proxy?`);
  return { sha256: b.sha256, size: typeof b.size === "number" ? b.size : -1, url: typeof b.url === "string" ? b.url : "" };
}

/** An error body's message: JSON {error|message} or the text itself, one line. */
function messageOf(body: string): string {
  if (!body) return "";
  try {
    const j = JSON.parse(body) as Record<string, unknown>;
    const said = [j.error, j.message].filter((x): x is string => typeof x === "string" && x !== "");
    const logs = [j.logs_url, j.logs].find((x): x is string => typeof x === "string" && x !== "");
    const parts = logs && !said.some((t) => t.includes(logs)) ? [...said, `logs: ${logs}`] : said;
    if (parts.length > 0) return parts.join("; ");
  } catch {
    // text
  }
  return body.split("\n")[0].slice(0, 300);
}

/** The name in `Content-Disposition: attachment; filename="server"`, if it is a plain file name. */
export function fileName(header: string | null): string | undefined {
  if (!header) return undefined;
  const m = /filename\*=UTF-8''([^;]+)/i.exec(header) ?? /filename="([^"]+)"/i.exec(header) ?? /filename=([^;\s]+)/i.exec(header);
  if (!m) return undefined;
  let name: string;
  try {
    name = decodeURIComponent(m[1]);
  } catch {
    return undefined;
  }
  return /^[A-Za-z0-9._+-]{1,200}$/.test(name) && name !== "." && name !== ".." ? name : undefined;
}

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}
