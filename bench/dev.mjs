// togo dev (process) against `node --watch` and nodemon on the same app, in the same run: the
// change-to-served latency (a source file written → the new body over HTTP), edits interleaved
// tool by tool so a busy moment hits all three alike. togo dev health-gates every reload (a new
// process on a private port must answer /up before it takes over); the other two just restart.
// Target: togo dev's median within 1.2× of node --watch's.
import { spawn } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { BIN, ROOT, benchEnv, freePort, machine, median, tempDir } from "./lib.mjs";

const EDITS = Number(process.env.BENCH_DEV_EDITS ?? 15);
const app = (body) => `const { createServer } = require("node:http");
createServer((req, res) => res.end(req.url === "/up" ? "ok" : ${JSON.stringify(body)})).listen(Number(process.env.PORT), "127.0.0.1");
`;

/** One GET on a fresh connection (no keep-alive: each tool gets the same kind of request). */
function get(port, path = "/") {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path, agent: false, timeout: 2000 }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve(body));
    });
    req.on("error", () => resolve(null));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

const pause = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(port, body, timeoutMs = 30_000) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if ((await get(port)) === body) return;
    await pause(2);
  }
  throw new Error(`port ${port} did not serve ${JSON.stringify(body)} within ${timeoutMs / 1000}s`);
}

async function tool(name, command, args, extraFiles = {}) {
  const dir = tempDir(`togo-bench-dev-${name.replace(/\W+/g, "")}-`);
  const port = await freePort();
  writeFileSync(join(dir, "server.js"), app(`${name} 0`));
  for (const [f, text] of Object.entries(extraFiles)) writeFileSync(join(dir, f), text(port));
  const child = spawn(command, args, { cwd: dir, env: benchEnv({ PORT: String(port) }), stdio: ["ignore", "ignore", "pipe"], detached: true });
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  await until(port, `${name} 0`).catch((e) => {
    throw new Error(`${e.message}\n${err}`);
  });
  return { name, dir, port, child, times: [], err: () => err };
}

const tools = [
  await tool("node --watch", process.execPath, ["--watch", "server.js"]),
  await tool("nodemon", join(ROOT, "node_modules", ".bin", "nodemon"), ["server.js"]),
  await tool("togo dev", process.execPath, [BIN, "dev"], {
    "togo.yaml": (port) => `app: benchdev\ndeploy:\n  provider: local\n  binary: server.js\n  run: node server.js\n  app_port: ${port}\n  healthcheck: { path: /up, timeout: 20 }\n`,
  }),
];

try {
  // Let each watcher settle after its first start.
  await pause(500);
  for (let i = 1; i <= EDITS; i++) {
    for (const t of tools) {
      const body = `${t.name} ${i}`;
      const start = performance.now();
      writeFileSync(join(t.dir, "server.js"), app(body));
      await until(t.port, body).catch((e) => {
        throw new Error(`${t.name}: ${e.message}\n${t.err()}`);
      });
      t.times.push((performance.now() - start) / 1000);
      // Quiet between edits, so one edit's restart never overlaps the next.
      await pause(300);
    }
  }
  // What the forwarder costs a request: sequential GETs, each on a fresh connection.
  const roundTrips = {};
  for (const t of [tools[0], tools[2]]) {
    const ms = [];
    for (let i = 0; i < 300; i++) {
      const s = performance.now();
      await get(t.port);
      ms.push(performance.now() - s);
    }
    roundTrips[t.name] = median(ms);
  }

  const base = median(tools[0].times);
  console.log(`\nmachine: ${machine()}`);
  console.log(`\n## change-to-served latency (${EDITS} edits each, interleaved)`);
  console.log("| tool | median | p90 | min | max | ratio to node --watch | target |");
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
  for (const t of tools) {
    const s = [...t.times].sort((a, b) => a - b);
    const m = median(s);
    const ratio = m / base;
    const target = t.name === "togo dev" ? `≤ 1.2× — ${ratio <= 1.2 ? "met" : "NOT met"}` : "";
    console.log(`| ${t.name} | ${(m * 1000).toFixed(0)} ms | ${(s[Math.floor(s.length * 0.9)] * 1000).toFixed(0)} ms | ${(s[0] * 1000).toFixed(0)} ms | ${(s.at(-1) * 1000).toFixed(0)} ms | ${ratio.toFixed(2)}× | ${target} |`);
  }
  console.log(`\nrequest round trip, fresh connection each (median of 300): node --watch ${roundTrips["node --watch"].toFixed(2)} ms, through togo dev's forwarder ${roundTrips["togo dev"].toFixed(2)} ms`);
} finally {
  for (const t of tools) {
    try {
      // togo dev stops its own app processes on SIGTERM; the others' groups are ended whole.
      process.kill(t.name === "togo dev" ? t.child.pid : -t.child.pid, "SIGTERM");
    } catch {
      // already gone
    }
  }
  await Promise.all(tools.map((t) => (t.child.exitCode === null ? new Promise((r) => t.child.on("exit", r)) : undefined)));
  for (const t of tools) {
    try {
      process.kill(-t.child.pid, "SIGKILL");
    } catch {
      // the group is gone
    }
    rmSync(t.dir, { recursive: true, force: true });
  }
}
