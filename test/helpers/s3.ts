// An S3 server on loopback for remote-state tests: s3rver (npm) behind a small front that adds what
// s3rver lacks and Terraform's S3-native locking (`use_lockfile`) relies on: a `PUT` with
// `If-None-Match: *` on a key that exists answers 412 Precondition Failed. Conditional PUTs are
// serialised in the front, so two racing lock writes cannot both win. The front can also hold a
// chosen request until the test lets it go, which is how a test keeps a lock held without sleeping,
// and answer chosen reads with half the object (a read caught mid-write, which s3rver gives).
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import S3rver from "s3rver";

export interface HeldRequest {
  method: string;
  path: string;
  /** Lets the held request through. */
  release(): void;
}

export interface S3Front {
  /** http://127.0.0.1:PORT of the front (what Terraform is pointed at). */
  endpoint: string;
  bucket: string;
  /** Every request the front saw, as "METHOD /path", and each refused conditional write as "412 PUT /path". */
  log: string[];
  /** Holds the next request matching `match` and resolves once it has arrived. */
  hold(match: (method: string, path: string) => boolean): Promise<HeldRequest>;
  /**
   * Answers the next `times` GETs of paths matching `match` with the first half of the object:
   * as a whole answer (`torn`: an object caught mid-write) or cut off after its headers promised all
   * of it (`cut`: a connection lost mid-body).
   */
  tear(match: (path: string) => boolean, times: number, how?: "torn" | "cut"): void;
  /** The object's body, or undefined when there is none. */
  get(key: string): Promise<string | undefined>;
  close(): Promise<void>;
}

const listen = (server: Server) =>
  new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });

function forward(port: number, req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const up = request({ host: "127.0.0.1", port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
      r.on("end", resolve);
      r.on("error", reject);
    });
    up.on("error", reject);
    up.end(body);
  });
}

/** Forwards a GET and sends the first half of what came back (see S3Front.tear). */
function forwardTorn(port: number, req: IncomingMessage, res: ServerResponse, how: "torn" | "cut"): Promise<void> {
  return new Promise((resolve, reject) => {
    const up = request({ host: "127.0.0.1", port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      const chunks: Buffer[] = [];
      r.on("data", (c: Buffer) => chunks.push(c));
      r.on("end", () => {
        const whole = Buffer.concat(chunks);
        const half = whole.subarray(0, Math.floor(whole.length / 2));
        res.writeHead(r.statusCode ?? 502, { "content-type": r.headers["content-type"] ?? "application/octet-stream", "content-length": String(how === "torn" ? half.length : whole.length) });
        if (how === "torn") res.end(half);
        else res.write(half, () => res.destroy());
        resolve();
      });
      r.on("error", reject);
    });
    up.on("error", reject);
    up.end();
  });
}

function exists(port: number, path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const r = request({ host: "127.0.0.1", port, method: "HEAD", path }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    r.on("error", reject);
    r.end();
  });
}

const readBody = (req: IncomingMessage) =>
  new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });

export async function startS3(directory: string, bucket = "togo-state"): Promise<S3Front> {
  const s3 = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory, configureBuckets: [{ name: bucket }], allowMismatchedSignatures: true });
  const { port: s3Port } = (await s3.run()) as AddressInfo;

  const log: string[] = [];
  const holds: { match: (m: string, p: string) => boolean; arrived: (h: HeldRequest) => void }[] = [];
  let conditional = Promise.resolve();
  const tears: { match: (p: string) => boolean; left: number; how: "torn" | "cut" }[] = [];

  const front = createServer((req, res) => {
    const method = req.method ?? "GET";
    const path = (req.url ?? "/").split("?")[0];
    log.push(`${method} ${path}`);
    void (async () => {
      const body = await readBody(req);
      const i = holds.findIndex((h) => h.match(method, path));
      if (i !== -1) {
        const [h] = holds.splice(i, 1);
        await new Promise<void>((release) => h.arrived({ method, path, release }));
      }
      const tear = method === "GET" ? tears.find((t) => t.left > 0 && t.match(path)) : undefined;
      if (tear) {
        tear.left--;
        log.push(`${tear.how} ${method} ${path}`);
        await forwardTorn(s3Port, req, res, tear.how);
        return;
      }
      if (method === "PUT" && req.headers["if-none-match"] === "*") {
        // Check-then-write as one step: the next conditional PUT waits for this one.
        const turn = conditional.then(async () => {
          if (await exists(s3Port, path)) {
            log.push(`412 ${method} ${path}`);
            res.writeHead(412, { "content-type": "application/xml" });
            res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-None-Match</Condition></Error>`);
            return;
          }
          await forward(s3Port, req, body, res);
        });
        conditional = turn.catch(() => undefined);
        await turn;
        return;
      }
      await forward(s3Port, req, body, res);
    })().catch((err: Error) => {
      if (!res.headersSent) res.writeHead(502);
      res.end(String(err));
    });
  });
  const port = await listen(front);
  const endpoint = `http://127.0.0.1:${port}`;

  return {
    endpoint,
    bucket,
    log,
    hold: (match) => new Promise((arrived) => holds.push({ match, arrived })),
    tear: (match, times, how = "torn") => void tears.push({ match, left: times, how }),
    get: async (key) => {
      const r = await fetch(`http://127.0.0.1:${s3Port}/${bucket}/${key}`);
      return r.status === 200 ? r.text() : undefined;
    },
    close: async () => {
      front.closeAllConnections();
      await new Promise<void>((r) => front.close(() => r()));
      await s3.close();
    },
  };
}
