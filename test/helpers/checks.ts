// Checks for integration tests on real hosts. jest 30 does not print expect() messages, so a failed
// check throws with what went wrong, the command's output and the hosts' state (`diagnostics`).
import { request } from "node:http";
import type { CliResult } from "./index.js";
import type { ExecResult } from "./systemd-hosts.js";

type Ran = CliResult | ExecResult;

export function hostChecks(diagnostics: () => Promise<string>, opts: { label?: string; timeoutMs?: number; intervalMs?: number } = {}) {
  const label = opts.label ?? "host";
  async function fail(what: string, r?: Ran): Promise<never> {
    const out = r ? `\n--- exit ${"exitCode" in r ? r.exitCode : r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}` : "";
    throw new Error(`${what}${out}\n--- ${label}\n${await diagnostics()}`);
  }
  async function ok<T extends Ran>(r: T, what: string): Promise<T> {
    if (("exitCode" in r ? r.exitCode : r.code) !== 0) await fail(`${what} failed`, r);
    return r;
  }
  /** A check that fails with context: `cond` false → the message, the command's output, the hosts. */
  async function check(cond: boolean, what: string, r?: Ran): Promise<void> {
    if (!cond) await fail(what, r);
  }
  /** Polls until `test` passes, with a deadline; never a fixed sleep. */
  async function eventually<T>(what: string, get: () => Promise<T>, test: (v: T) => boolean, timeoutMs = opts.timeoutMs ?? 20_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await get();
      if (test(v)) return v;
      if (Date.now() > deadline) return fail(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`);
      await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
    }
  }
  return { fail, ok, check, eventually };
}

/** GET `path` on host:port with a Host header, as a visitor through Caddy (or a load balancer) asks. */
export function getWithHost(host: string, port: number, path: string, hostHeader: string, timeoutMs = 3000): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = request({ host, port, path, headers: { host: hostHeader }, timeout: timeoutMs }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (e) => resolve({ status: 0, body: e.message }));
    req.end();
  });
}
