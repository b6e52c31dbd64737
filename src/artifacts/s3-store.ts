// The artifact store in S3 (or an S3-compatible server): the fs store's layout under a key prefix.
// Blobs, metadata and claims are written with `If-None-Match: *`, so two servers sharing a bucket
// never overwrite an artifact and only one of them wins a claim (S3 answers 412 to the other).
// Objects appear whole or not at all; records are replaced whole. S3 has no append, so a build's
// log is written whole again each second while it grows, and at the end.
//
// The AWS SDK v3 client is loaded here only, when an s3:// store is opened; credentials and region
// come from the usual AWS environment (AWS_ACCESS_KEY_ID, AWS_PROFILE, AWS_REGION...).
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createRequire } from "node:module";
import type { Readable } from "node:stream";
import type * as S3 from "@aws-sdk/client-s3";
import { TogoError } from "../core/errors.js";
import { keyPath, type ArtifactKey } from "./key.js";
import { isBuildId, type ArtifactMeta, type ArtifactStore, type BuildRecord, type ByteRange, type Claim, type LogWriter } from "./store.js";

/** Reads of an object before a body cut off, or JSON cut short, counts as broken. */
const READ_ATTEMPTS = 5;

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

const S3_LOCATION = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/;

type Sdk = typeof S3;

function status(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

function buildId(id: string): string {
  if (!isBuildId(id)) throw new Error(`"${id}" is not a build id`);
  return id;
}

async function bodyBuffer(body: unknown): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body as AsyncIterable<Buffer>) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

export class S3Store implements ArtifactStore {
  private constructor(
    readonly location: string,
    private readonly sdk: Sdk,
    private readonly client: S3.S3Client,
    private readonly bucket: string,
    private readonly prefix: string,
  ) {}

  static async open(location: string, opts: { endpoint?: string; region?: string } = {}): Promise<S3Store> {
    const m = S3_LOCATION.exec(location);
    if (!m) throw new TogoError(`store "${location}": expected s3://bucket/prefix (a bucket name of 3-63 lowercase letters, digits, . and -)`, 2);
    const prefix = (m[2] ?? "").replace(/^\/+|\/+$/g, "");
    // The SDK warns on every Node 20 run about its own future releases; togo supports Node 20 and
    // pins the SDK, so the warning would only be noise on every `togo artifacts` command.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
    // A require, not import(): the CLI bundle runs code-cached, without a loader for import().
    const sdk = createRequire(import.meta.url)("@aws-sdk/client-s3") as Sdk;
    const client = new sdk.S3Client({
      region: opts.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1",
      ...(opts.endpoint ? { endpoint: opts.endpoint, forcePathStyle: true } : {}),
      // Plain PUT bodies: S3-compatible servers differ in support for the SDK's streamed checksums.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
    return new S3Store(location, sdk, client, m[1], prefix);
  }

  private k(rel: string): string {
    return this.prefix ? `${this.prefix}/${rel}` : rel;
  }

  private async getBuffer(key: string, range?: string): Promise<Buffer | undefined> {
    for (let attempt = 1; ; attempt++) {
      let r: S3.GetObjectCommandOutput;
      try {
        r = await this.client.send(new this.sdk.GetObjectCommand({ Bucket: this.bucket, Key: key, ...(range ? { Range: range } : {}) }));
      } catch (e) {
        if (status(e) === 404) return undefined;
        if (status(e) === 416) return Buffer.alloc(0);
        throw e;
      }
      // The SDK retries a request that failed, not a body cut off after the answer began.
      try {
        return await bodyBuffer(r.Body);
      } catch (e) {
        if (attempt >= READ_ATTEMPTS) throw new TogoError(`${this.location}: reading ${key} was cut off ${attempt} times (${(e as Error).message})`, 1);
        await pause(20 * attempt);
      }
    }
  }

  /**
   * A JSON object the store wrote whole. S3 never shows a PUT half-done, but some S3-compatible
   * servers do (s3rver writes the file in place): JSON cut short is read again, a few times.
   */
  private async getJson<T>(key: string): Promise<T | undefined> {
    for (let attempt = 1; ; attempt++) {
      const b = await this.getBuffer(key);
      if (!b) return undefined;
      try {
        return JSON.parse(b.toString("utf8")) as T;
      } catch (e) {
        if (!(e instanceof SyntaxError) || attempt >= READ_ATTEMPTS) throw new TogoError(`${this.location}: ${key} is not whole JSON after ${attempt} reads (${(e as Error).message})`, 1);
        await pause(20 * attempt);
      }
    }
  }

  /** PUT only if the key does not exist; false when it does (412). */
  private async putOnce(key: string, body: S3.PutObjectCommandInput["Body"], length?: number): Promise<boolean> {
    try {
      await this.client.send(new this.sdk.PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, IfNoneMatch: "*", ...(length !== undefined ? { ContentLength: length } : {}) }));
      return true;
    } catch (e) {
      // 409: a conditional write racing another on the same key (S3 says ConditionalRequestConflict).
      if (status(e) === 412 || status(e) === 409) return false;
      throw e;
    }
  }

  private async keys(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const r = await this.client.send(new this.sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of r.Contents ?? []) if (o.Key) keys.push(o.Key);
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return keys;
  }

  private artifactPrefix(key: ArtifactKey): string {
    return this.k(`artifacts/${keyPath(key)}`);
  }

  async stat(key: ArtifactKey): Promise<ArtifactMeta | undefined> {
    return this.getJson<ArtifactMeta>(`${this.artifactPrefix(key)}/meta.json`);
  }

  async put(key: ArtifactKey, file: string, meta: ArtifactMeta): Promise<"written" | "exists"> {
    if (await this.stat(key)) return "exists";
    const size = (await stat(file)).size;
    // Named by its sha256, so a blob left by a server that died before its metadata is harmless.
    await this.putOnce(`${this.artifactPrefix(key)}/${meta.sha256}`, createReadStream(file), size);
    return (await this.putOnce(`${this.artifactPrefix(key)}/meta.json`, `${JSON.stringify(meta, null, 2)}\n`)) ? "written" : "exists";
  }

  async open(key: ArtifactKey, meta: ArtifactMeta, range?: ByteRange): Promise<Readable | undefined> {
    try {
      const r = await this.client.send(
        new this.sdk.GetObjectCommand({ Bucket: this.bucket, Key: `${this.artifactPrefix(key)}/${meta.sha256}`, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }),
      );
      return r.Body as Readable;
    } catch (e) {
      if (status(e) === 404) return undefined;
      throw e;
    }
  }

  async list(): Promise<ArtifactMeta[]> {
    const out: ArtifactMeta[] = [];
    for (const k of (await this.keys(this.k("artifacts/"))).filter((x) => x.endsWith("/meta.json")).sort()) {
      const m = await this.getJson<ArtifactMeta>(k);
      if (m) out.push(m);
    }
    return out;
  }

  private claimPrefix(key: ArtifactKey): string {
    return this.k(`claims/${keyPath(key)}/`);
  }

  async claim(key: ArtifactKey, claim: Claim): Promise<boolean> {
    return this.putOnce(`${this.claimPrefix(key)}${claim.attempt}.json`, `${JSON.stringify(claim)}\n`);
  }

  async latestClaim(key: ArtifactKey): Promise<Claim | undefined> {
    const attempts = (await this.keys(this.claimPrefix(key)))
      .map((k) => /\/(\d+)\.json$/.exec(k))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]));
    if (attempts.length === 0) return undefined;
    return this.getJson<Claim>(`${this.claimPrefix(key)}${Math.max(...attempts)}.json`);
  }

  async readBuild(id: string): Promise<BuildRecord | undefined> {
    if (!isBuildId(id)) return undefined;
    return this.getJson<BuildRecord>(this.k(`builds/${id}.json`));
  }

  async writeBuild(record: BuildRecord): Promise<void> {
    await this.client.send(new this.sdk.PutObjectCommand({ Bucket: this.bucket, Key: this.k(`builds/${buildId(record.id)}.json`), Body: `${JSON.stringify(record, null, 2)}\n`, ContentType: "application/json" }));
  }

  async listBuilds(): Promise<BuildRecord[]> {
    const out: BuildRecord[] = [];
    for (const k of (await this.keys(this.k("builds/"))).sort()) {
      const m = /\/([0-9a-f]{16})\.json$/.exec(k);
      if (!m) continue;
      const r = await this.readBuild(m[1]);
      if (r) out.push(r);
    }
    return out;
  }

  async deleteBuild(id: string): Promise<void> {
    await this.client.send(new this.sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: this.k(`builds/${buildId(id)}.json`) }));
  }

  async setActive(id: string, active: boolean): Promise<void> {
    const Key = this.k(`queue/${buildId(id)}`);
    if (active) await this.client.send(new this.sdk.PutObjectCommand({ Bucket: this.bucket, Key, Body: "" }));
    else await this.client.send(new this.sdk.DeleteObjectCommand({ Bucket: this.bucket, Key }));
  }

  async activeBuilds(): Promise<string[]> {
    return (await this.keys(this.k("queue/")))
      .map((k) => k.slice(k.lastIndexOf("/") + 1))
      .filter(isBuildId)
      .sort();
  }

  async logWriter(id: string): Promise<LogWriter> {
    const key = this.k(`builds/${buildId(id)}.log`);
    // A re-run continues the log of the runs before it.
    const chunks: Buffer[] = [(await this.getBuffer(key)) ?? Buffer.alloc(0)];
    let dirty = true;
    let chain: Promise<void> = Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const upload = () => {
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (!dirty) return chain;
      dirty = false;
      const body = Buffer.concat(chunks);
      chain = chain.then(async () => {
        await this.client.send(new this.sdk.PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: "text/plain; charset=utf-8" }));
      });
      return chain;
    };
    await upload();
    return {
      write: (c) => {
        chunks.push(typeof c === "string" ? Buffer.from(c) : c);
        dirty = true;
        timer ??= setTimeout(() => void upload().catch(() => undefined), 1000);
      },
      flush: () => upload(),
    };
  }

  async readLog(id: string, from = 0): Promise<Buffer | undefined> {
    if (!isBuildId(id)) return undefined;
    return this.getBuffer(this.k(`builds/${id}.log`), from > 0 ? `bytes=${from}-` : undefined);
  }
}
