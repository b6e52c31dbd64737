// `togo artifacts serve`: the build proxy's own entry point (bundled apart from the CLI, so no other
// command loads fastify). Runs until SIGINT/SIGTERM; running builds are left as `running` in the
// store and re-run by the next server that starts on it.
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { TogoError } from "../../core/errors.js";
import { DEFAULT_MAKEFILE } from "../builder.js";
import { isLoopback } from "../listen.js";
import { openStore, type ArtifactStore } from "../store.js";
import { buildProxyApp } from "./http.js";
import { BuildProxy } from "./proxy.js";

export interface ServeOptions {
  host: string;
  port: number;
  /** The store, or where it is (a directory, s3://bucket/prefix). */
  store: string | ArtifactStore;
  /** S3-compatible endpoint for an s3:// store. */
  endpoint?: string;
  jobs: number;
  /** Seconds a build may run. */
  buildTimeout?: number;
  gitUrl: string;
  token?: string;
  isolation: "none" | "docker";
  image?: string;
  workDir?: string;
  publicUrl?: string;
  /** Where the listening line and build events go. */
  out?: (line: string) => void;
  /** Resolves when the server should stop (default: SIGINT/SIGTERM). */
  until?: Promise<void>;
}


export async function serve(opts: ServeOptions): Promise<void> {
  if (!opts.token && !isLoopback(opts.host)) {
    throw new TogoError(`--listen ${opts.host}:${opts.port} reaches beyond this machine, and no token is configured: pass --token-file FILE (or artifacts.token_file), or listen on 127.0.0.1`, 2);
  }
  const out = opts.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  const store = typeof opts.store === "string" ? await openStore(opts.store, { endpoint: opts.endpoint }) : opts.store;
  // One work root per store, so a restarted server finds (and removes) what its predecessor left.
  const workRoot = opts.workDir ?? join(tmpdir(), `togo-builds-${createHash("sha256").update(store.location).digest("hex").slice(0, 12)}`);
  const proxy = new BuildProxy({
    store,
    gitUrl: opts.gitUrl,
    recipe: { isolation: opts.isolation, image: opts.image, defaultMakefile: DEFAULT_MAKEFILE },
    jobs: opts.jobs,
    buildTimeout: opts.buildTimeout,
    workRoot,
    note: (l) => out(`${new Date().toISOString()} ${l}`),
  });
  await proxy.start();
  const app = buildProxyApp({ proxy, token: opts.token, publicUrl: opts.publicUrl });
  await app.listen({ host: opts.host, port: opts.port });
  const addr = app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : opts.port;
  const shown = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
  out(`togo build proxy listening on http://${shown}:${port} (store ${store.location}, ${opts.jobs} job${opts.jobs === 1 ? "" : "s"}, isolation ${opts.isolation}${opts.token ? ", token required" : ""})`);
  await (opts.until ??
    new Promise<void>((resolve) => {
      process.once("SIGINT", () => resolve());
      process.once("SIGTERM", () => resolve());
    }));
  out("togo build proxy stopping");
  // Requests in flight (a download, a log being followed) may finish; a keep-alive connection that
  // goes idle meanwhile is closed at once rather than held for its keep-alive time (72 s), and
  // after 10 s whatever is left is cut.
  const idle = setInterval(() => app.server.closeIdleConnections(), 100);
  const cut = setTimeout(() => app.server.closeAllConnections(), 10_000);
  try {
    await app.close();
  } finally {
    clearInterval(idle);
    clearTimeout(cut);
  }
  await proxy.close();
}
