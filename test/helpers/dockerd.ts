// A private dockerd for tests: vfs storage, no iptables, its own socket, data and exec
// roots in a temp dir, run inside a network namespace the test creates (so the bridge networks and
// published ports it makes never touch this machine's network), stopped by PID.
//
// Also the provider stand-in: the kreuzwerker/docker provider is not in the local mirror, so the
// tests cannot `terraform apply` the docker stack. `runStackContainer` reads the stack togo
// synthesized (cdk.tf.json) and asks dockerd, over the Engine API the provider itself uses, for
// exactly the network, image (by digest) and container it describes.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { tempDir } from "./index.js";

// --- network namespace with a veth pair to this machine ---

export interface Netns {
  name: string;
  /** This machine's end of the pair. */
  hostIp: string;
  /** The namespace's end. */
  nsIp: string;
  remove(): void;
}

const ip = (...args: string[]) => execFileSync("ip", args, { encoding: "utf8" });

export function createNetns(): Netns {
  const tag = randomBytes(3).toString("hex");
  const name = `togo-dk-${tag}`;
  const used = ip("-4", "-o", "addr", "show");
  let third = 0;
  for (let tries = 0; tries < 200; tries++) {
    third = 1 + (randomBytes(1)[0] % 250);
    if (!used.includes(`10.201.${third}.`)) break;
  }
  const hostIp = `10.201.${third}.1`;
  const nsIp = `10.201.${third}.2`;
  const vh = `tdh${tag}`;
  const vn = `tdn${tag}`;
  ip("netns", "add", name);
  try {
    ip("link", "add", vh, "type", "veth", "peer", "name", vn);
    ip("link", "set", vn, "netns", name);
    ip("addr", "add", `${hostIp}/30`, "dev", vh);
    ip("link", "set", vh, "up");
    ip("-n", name, "addr", "add", `${nsIp}/30`, "dev", vn);
    ip("-n", name, "link", "set", vn, "up");
    ip("-n", name, "link", "set", "lo", "up");
  } catch (err) {
    ip("netns", "del", name);
    throw err;
  }
  return {
    name,
    hostIp,
    nsIp,
    remove() {
      try {
        ip("link", "del", vh); // removes both ends
      } catch {
        // already gone with the namespace
      }
      ip("netns", "del", name);
    },
  };
}

// --- dockerd ---

export interface Dockerd {
  /** unix:///…/docker.sock */
  host: string;
  socket: string;
  /** tcp://<namespace address>:2375 when started with `tcp` (plain TCP, no TLS: only the veth pair reaches it). */
  tcpHost?: string;
  pid: number;
  netns: Netns;
  log(): string;
  stop(): Promise<void>;
}

export async function startDockerd(netns: Netns, insecureRegistries: string[], opts: { tcp?: boolean } = {}): Promise<Dockerd> {
  const dir = tempDir("togo-dockerd-");
  const socket = join(dir, "docker.sock");
  const logFile = join(dir, "dockerd.log");
  const fd = openSync(logFile, "a");
  const args = [
    `--net=/run/netns/${netns.name}`,
    "dockerd",
    "--host",
    `unix://${socket}`,
    // --tls=false said out loud: without it dockerd stalls its start 15 s to warn about plain TCP.
    ...(opts.tcp ? ["--host", `tcp://${netns.nsIp}:2375`, "--tls=false"] : []),
    "--data-root",
    join(dir, "data"),
    "--exec-root",
    join(dir, "exec"),
    "--pidfile",
    join(dir, "docker.pid"),
    "--iptables=false",
    "--ip6tables=false",
    "--bridge=none",
    "--storage-driver=vfs",
    ...insecureRegistries.flatMap((r) => ["--insecure-registry", r]),
  ];
  // nsenter enters the namespace and execs dockerd: the child's pid is dockerd's.
  const child: ChildProcess = spawn("nsenter", args, { stdio: ["ignore", fd, fd] });
  closeSync(fd);
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const log = () => readFileSync(logFile, "utf8");
  const d: Dockerd = {
    host: `unix://${socket}`,
    socket,
    ...(opts.tcp ? { tcpHost: `tcp://${netns.nsIp}:2375` } : {}),
    pid: child.pid!,
    netns,
    log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(child.pid!, "SIGTERM");
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 20_000)))]);
        clearTimeout(timer);
        if (child.exitCode === null && child.signalCode === null) {
          process.kill(child.pid!, "SIGKILL");
          await exited;
        }
      }
      // dockerd leaves bind mounts (network namespaces of containers) under its exec root.
      const mounts = readFileSync("/proc/mounts", "utf8")
        .split("\n")
        .map((l) => l.split(" ")[1])
        .filter((m) => m && m.startsWith(dir))
        .sort((a, b) => b.length - a.length);
      for (const m of mounts) execFileSync("umount", ["-l", m]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`dockerd exited ${child.exitCode}:\n${log()}`);
    if (existsSync(socket)) {
      try {
        if ((await engine(socket, "GET", "/_ping")).status === 200) return d;
      } catch {
        // not serving yet
      }
    }
    if (Date.now() > deadline) {
      await d.stop();
      throw new Error(`dockerd did not start:\n${log()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

// --- the Docker Engine API over the unix socket ---

export function engine(socket: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(
      { socketPath: socket, method, path, headers: { host: "docker", ...(data ? { "content-type": "application/json", "content-length": String(data.length) } : {}) } },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("error", reject);
    req.end(data);
  });
}

export interface DockerEvent {
  Action: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

export interface EventWatch {
  /** Resolves once dockerd streams events to us: what happens after it is seen. */
  ready: Promise<void>;
  /** Resolves with the events once `count` of them arrived. */
  done: Promise<DockerEvent[]>;
  close(): void;
}

/** Watches dockerd's event stream (GET /events) for `count` events matching `filters`: no polling. */
export function watchEvents(socket: string, filters: Record<string, string[]>, count: number): EventWatch {
  let ready!: () => void;
  let fail!: (e: Error) => void;
  const readyP = new Promise<void>((r, j) => ((ready = r), (fail = j)));
  const seen: DockerEvent[] = [];
  let req: ReturnType<typeof request> | undefined;
  const done = new Promise<DockerEvent[]>((resolve, reject) => {
    req = request({ socketPath: socket, method: "GET", path: `/events?filters=${encodeURIComponent(JSON.stringify(filters))}`, headers: { host: "docker" } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`GET /events: ${res.statusCode}`));
      ready();
      let buf = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) seen.push(JSON.parse(line) as DockerEvent);
          if (seen.length >= count) {
            resolve(seen.slice());
            req?.destroy();
            return;
          }
        }
      });
    });
    req.on("error", (e) => {
      fail(e);
      if (seen.length < count) reject(e);
    });
    req.end();
  });
  done.catch(() => undefined); // a watch closed early is not an unhandled rejection
  return { ready: readyP, done, close: () => req?.destroy() };
}

async function ok(socket: string, method: string, path: string, body?: unknown): Promise<string> {
  const r = await engine(socket, method, path, body);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.body}`);
  // Streamed endpoints (pull) report errors inside a 200 body.
  const err = r.body.split("\n").find((l) => l.includes('"error"'));
  if (err) throw new Error(`${method} ${path}: ${err}`);
  return r.body;
}

// --- the provider stand-in ---

interface TfStack {
  resource: {
    docker_network: Record<string, { name: string; driver?: string; labels?: { label: string; value: string }[] }>;
    docker_image: Record<string, { name: string }>;
    docker_container: Record<
      string,
      {
        name: string;
        image: string;
        env?: string[];
        command?: string[];
        restart?: string;
        ports?: { internal: number; external?: number; ip?: string; protocol?: string }[];
        healthcheck?: { test: string[]; interval?: string; timeout?: string; start_period?: string; retries?: number };
        labels?: { label: string; value: string }[];
        networks_advanced?: { name: string }[];
      }
    >;
  };
}

/** "1500ms" / "2s" → nanoseconds, as the Engine API wants them. */
function nanos(d: string | undefined): number | undefined {
  if (d === undefined) return undefined;
  const m = /^(\d+)(ms|s)$/.exec(d);
  if (!m) throw new Error(`unsupported duration ${d}`);
  return Number(m[1]) * (m[2] === "ms" ? 1e6 : 1e9);
}

/**
 * Creates and starts what the synthesized docker stack describes: its network, its image (pulled
 * by the pinned digest) and its container. `vars` fills `${var.…}` (the secrets).
 * Returns the container id.
 */
export async function runStackContainer(socket: string, stackJsonFile: string, vars: Record<string, string>): Promise<string> {
  const stack = JSON.parse(readFileSync(stackJsonFile, "utf8")) as TfStack;
  const [netKey, net] = Object.entries(stack.resource.docker_network)[0];
  await ok(socket, "POST", "/networks/create", {
    Name: net.name,
    Driver: net.driver ?? "bridge",
    Labels: Object.fromEntries((net.labels ?? []).map((l) => [l.label, l.value])),
  });
  const [imgKey, img] = Object.entries(stack.resource.docker_image)[0];
  const [repo, digest] = img.name.split("@");
  await ok(socket, "POST", `/images/create?fromImage=${encodeURIComponent(repo)}&tag=${encodeURIComponent(digest)}`);
  const imageId = (JSON.parse(await ok(socket, "GET", `/images/${encodeURIComponent(img.name)}/json`)) as { Id: string }).Id;

  const resolve = (s: string) =>
    s.replace(/\$\{([^}]+)\}/g, (_w, expr: string) => {
      if (expr === `docker_image.${imgKey}.image_id`) return imageId;
      if (expr === `docker_network.${netKey}.name`) return net.name;
      const v = /^var\.(.+)$/.exec(expr);
      if (v && v[1] in vars) return vars[v[1]];
      throw new Error(`the stand-in cannot resolve \${${expr}}`);
    });

  const c = Object.values(stack.resource.docker_container)[0];
  const ports = c.ports ?? [];
  const hc = c.healthcheck;
  const created = JSON.parse(
    await ok(socket, "POST", `/containers/create?name=${encodeURIComponent(c.name)}`, {
      Image: resolve(c.image),
      Env: (c.env ?? []).map(resolve),
      ...(c.command ? { Cmd: c.command } : {}),
      Labels: Object.fromEntries((c.labels ?? []).map((l) => [l.label, l.value])),
      ExposedPorts: Object.fromEntries(ports.map((p) => [`${p.internal}/${p.protocol ?? "tcp"}`, {}])),
      ...(hc ? { Healthcheck: { Test: hc.test, Interval: nanos(hc.interval), Timeout: nanos(hc.timeout), StartPeriod: nanos(hc.start_period), Retries: hc.retries } } : {}),
      HostConfig: {
        RestartPolicy: { Name: c.restart ?? "no" },
        NetworkMode: resolve(c.networks_advanced?.[0]?.name ?? "default"),
        PortBindings: Object.fromEntries(
          ports.map((p) => [`${p.internal}/${p.protocol ?? "tcp"}`, [{ HostIp: p.ip ?? "0.0.0.0", HostPort: String(p.external ?? p.internal) }]]),
        ),
      },
    }),
  ) as { Id: string };
  await ok(socket, "POST", `/containers/${created.Id}/start`);
  return created.Id;
}
