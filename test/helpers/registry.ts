// A real container registry (Debian's docker-registry, distribution v2) for tests: filesystem
// storage in a temp dir, listening on an address the test picks, stopped by PID. Its access log is
// kept so a test can tell which requests togo made (e.g. that a second push wrote nothing).
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { freePort, tempDir } from "./index.js";

export interface Registry {
  /** host:port, as it goes into an image reference. */
  address: string;
  logFile: string;
  /** Request lines from the access log ("PUT /v2/…"), in order. */
  requests(): string[];
  /** The digest the registry serves for repo:ref (HEAD with the manifest Accept types). */
  manifestDigest(repo: string, ref: string): Promise<string | undefined>;
  stop(): Promise<void>;
}

const ACCEPT = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
].join(", ");

export function httpRequest(url: string, method = "GET", headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("timeout", () => req.destroy(new Error(`timeout: ${method} ${url}`)));
    req.on("error", reject);
    req.end();
  });
}

async function waitUp(url: string, child: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited ${child.exitCode}:\n${readFileSync(log, "utf8")}`);
    try {
      if ((await httpRequest(url)).status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`docker-registry did not answer ${url}:\n${readFileSync(log, "utf8")}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts a registry on `ip` (127.0.0.1 by default) and a free port. */
export async function startRegistry(ip = "127.0.0.1"): Promise<Registry> {
  const dir = tempDir("togo-registry-");
  const port = await freePort();
  const address = `${ip}:${port}`;
  const config = join(dir, "config.yml");
  writeFileSync(
    config,
    [
      "version: 0.1",
      "log: { level: info, formatter: text }",
      `storage: { filesystem: { rootdirectory: ${join(dir, "data")} }, delete: { enabled: true } }`,
      `http: { addr: "${address}" }`,
      "",
    ].join("\n"),
  );
  const logFile = join(dir, "registry.log");
  const fd = openSync(logFile, "a");
  const child = spawn("docker-registry", ["serve", config], { stdio: ["ignore", fd, fd] });
  closeSync(fd);
  await waitUp(`http://${address}/v2/`, child, logFile);
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return {
    address,
    logFile,
    requests: () =>
      readFileSync(logFile, "utf8")
        .split("\n")
        .map((l) => /"((?:GET|HEAD|PUT|POST|PATCH|DELETE) \/v2\/[^ "]*)/.exec(l)?.[1])
        .filter((x): x is string => x !== undefined),
    async manifestDigest(repo, ref) {
      const r = await httpRequest(`http://${address}/v2/${repo}/manifests/${ref}`, "HEAD", { Accept: ACCEPT });
      return r.status === 200 ? String(r.headers["docker-content-digest"]) : undefined;
    },
    async stop() {
      if (child.exitCode === null && child.pid) {
        process.kill(child.pid, "SIGTERM");
        await exited;
      }
    },
  };
}
