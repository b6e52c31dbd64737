// HTTP health checks: a 2xx on the health path, polled until a deadline. Redirects are reported
// as such (a common, hard-to-diagnose failure elsewhere), never followed.
import { request } from "node:http";

export interface Probe {
  ok: boolean;
  status?: number;
  /** What happened, for messages: "200", "301 → /login", "connection refused", "timed out after 5s". */
  detail: string;
}

export function probe(url: string, timeoutMs = 5000): Promise<Probe> {
  return new Promise((resolve) => {
    const req = request(url, { method: "GET", timeout: timeoutMs, headers: { "user-agent": "togo-healthcheck" } }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      const ok = status >= 200 && status < 300;
      const loc = res.headers.location;
      const detail = status >= 300 && status < 400 ? `${status} redirect to ${loc ?? "?"} (the health path must answer 2xx itself)` : String(status);
      res.on("end", () => resolve({ ok, status, detail }));
      res.on("error", () => resolve({ ok, status, detail }));
    });
    req.on("timeout", () => {
      req.destroy();
      resolve({ ok: false, detail: `timed out after ${timeoutMs / 1000}s` });
    });
    req.on("error", (err: NodeJS.ErrnoException) => {
      resolve({ ok: false, detail: err.code === "ECONNREFUSED" ? "connection refused" : err.code ?? err.message });
    });
    req.end();
  });
}

export interface WaitOptions {
  timeoutSeconds: number;
  intervalSeconds: number;
  /** Checked between probes: stop early when the process is already gone. */
  stillRunning?: () => Promise<boolean>;
  /** Stops waiting (an interrupted deploy). */
  signal?: AbortSignal;
}

export interface WaitResult extends Probe {
  attempts: number;
  ms: number;
}

export async function waitHealthy(url: string, opts: WaitOptions): Promise<WaitResult> {
  const start = performance.now();
  const deadline = start + opts.timeoutSeconds * 1000;
  let attempts = 0;
  let last: Probe = { ok: false, detail: "not probed" };
  for (;;) {
    attempts++;
    const left = deadline - performance.now();
    last = await probe(url, Math.max(100, Math.min(5000, left)));
    if (last.ok) return { ...last, attempts, ms: performance.now() - start };
    if (performance.now() + opts.intervalSeconds * 1000 >= deadline) break;
    if (opts.signal?.aborted) {
      last = { ...last, detail: `${last.detail}; interrupted` };
      break;
    }
    if (opts.stillRunning && !(await opts.stillRunning())) {
      last = { ...last, detail: `${last.detail}; the process exited` };
      break;
    }
    await sleep(opts.intervalSeconds * 1000, opts.signal);
  }
  return { ...last, attempts, ms: performance.now() - start };
}

/** Resolves after `ms`, or at once when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
