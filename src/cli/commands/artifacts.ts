import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { CommandModule } from "yargs";
import { TogoError, UsageError } from "../../core/errors.js";
import type { ArtifactSettings } from "../../core/spec.js";
import { isLoopback } from "../../artifacts/listen.js";
import { print, run, type GlobalArgs } from "../common.js";
import { loadProjectPlugins } from "../service.js";
import { once, wholeNumber } from "../usage.js";

interface ServeArgs extends GlobalArgs {
  listen: string;
  store?: string;
  jobs: number;
  "build-timeout": number;
  "token-file"?: string;
  "git-url"?: string;
  isolation: string;
  image?: string;
  "work-dir"?: string;
  "public-url"?: string;
  endpoint?: string;
}

interface LsArgs extends GlobalArgs {
  store?: string;
  endpoint?: string;
  builds?: boolean;
}

/**
 * artifacts: from togo.yaml when there is one (-c names it, or ./togo.yaml exists), its plugins
 * loaded (a store may be a plugin's); the defaults else.
 */
async function settings(args: GlobalArgs): Promise<Partial<ArtifactSettings>> {
  if (args.config === "togo.yaml" && !existsSync(resolve(args.config))) return {};
  const { loadConfig } = await import("../../config/load.js");
  const spec = loadConfig(args.config, { env: process.env, stage: args.stage });
  await loadProjectPlugins(spec);
  return spec.artifacts;
}

/** The store --store names (checked as typed), else artifacts.store, else .togo/artifacts. */
async function storeOf(args: { store?: string; endpoint?: string }, conf: Partial<ArtifactSettings>) {
  const { openStore } = await import("../../artifacts/store.js");
  return openStore(args.store ?? conf.store ?? ".togo/artifacts", { endpoint: args.endpoint ?? conf.endpoint }, args.store ? "--store" : "artifacts.store");
}

/** host:port, [v6]:port, or a bare port (127.0.0.1 then). */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:[\]]+))?:?(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--listen: got ${JSON.stringify(text)}; expected HOST:PORT, e.g. 127.0.0.1:7070 (port 0 picks a free one)`);
  return { host: m[1] ?? m[2] ?? "127.0.0.1", port };
}

function readToken(file: string): string {
  let token: string;
  try {
    token = readFileSync(file, "utf8").trim();
  } catch (e) {
    throw new TogoError(`--token-file ${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); write the token into it (one line)`, 2);
  }
  if (token.length < 16 || /\s/.test(token)) throw new TogoError(`--token-file ${file}: expected one token of at least 16 characters without spaces (e.g. openssl rand -hex 32 > ${file})`, 2);
  return token;
}

const serveCommand: CommandModule<GlobalArgs, ServeArgs> = {
  command: "serve",
  describe: "run the build proxy: POST/GET /{remote}/{owner}/{repo}/{os}/{arch}/{version} builds and serves artifacts",
  builder: (y) =>
    y
      .option("listen", { type: "string", default: "127.0.0.1:7070", requiresArg: true, coerce: once("--listen"), describe: "HOST:PORT to listen on (beyond loopback a token is required)" })
      .option("store", { type: "string", requiresArg: true, coerce: once("--store"), describe: "a directory, s3://bucket/prefix or a plugin's scheme:// (default: artifacts.store, else .togo/artifacts)" })
      .option("endpoint", { type: "string", requiresArg: true, coerce: once("--endpoint"), describe: "an S3-compatible endpoint for an s3:// store (default: artifacts.endpoint)" })
      .option("jobs", { default: 2, requiresArg: true, coerce: wholeNumber("--jobs", "builds at once"), describe: "builds run at once" })
      .option("build-timeout", { default: 3600, requiresArg: true, coerce: wholeNumber("--build-timeout", "seconds a build may run"), describe: "seconds a build may run before it is stopped and failed" })
      .option("token-file", { type: "string", requiresArg: true, coerce: once("--token-file"), describe: "file holding the bearer token clients must send (default: artifacts.token_file)" })
      .option("git-url", { type: "string", requiresArg: true, coerce: once("--git-url"), describe: "clone URL template (default: artifacts.git_url, else https://{remote}/{owner}/{repo}.git)" })
      .option("isolation", { type: "string", default: "none", requiresArg: true, coerce: once("--isolation"), describe: "none (build on this machine) or docker (in --image on the DOCKER_HOST daemon)" })
      .option("image", { type: "string", requiresArg: true, coerce: once("--image"), describe: "the build container image (isolation docker)" })
      .option("work-dir", { type: "string", requiresArg: true, coerce: once("--work-dir"), describe: "where checkouts are made (default: a folder under the temp dir)" })
      .option("public-url", { type: "string", requiresArg: true, coerce: once("--public-url"), describe: "the URL clients reach this server at (for the URLs in answers)" })
      .example("$0 artifacts serve --listen 127.0.0.1:7070 --store s3://my-bucket/artifacts", "serve builds, artifacts stored in S3") as never,
  handler: run(async (args: ServeArgs) => {
    const { host, port } = parseListen(args.listen);
    if (args.jobs < 1) throw new UsageError("--jobs: expected 1 or more builds at once");
    if (args["build-timeout"] < 1) throw new UsageError("--build-timeout: expected 1 or more seconds");
    if (args.isolation !== "none" && args.isolation !== "docker") throw new UsageError(`--isolation: got ${JSON.stringify(args.isolation)}; expected none or docker`);
    if (args.isolation === "docker" && !args.image) throw new UsageError("--isolation docker needs --image IMAGE (an image with sh, make and your compiler)");
    const conf = await settings(args);
    const tokenFile = args["token-file"] ?? conf.tokenFile;
    const token = tokenFile ? readToken(tokenFile) : undefined;
    if (!token && !isLoopback(host)) {
      throw new UsageError(`--listen ${args.listen} reaches beyond this machine and no token is configured: pass --token-file FILE (or set artifacts.token_file), or listen on 127.0.0.1`);
    }
    const { serve } = await import("../../artifacts/server/index.js");
    await serve({
      host,
      port,
      // Opened here, where the plugins are loaded: the server is a bundle of its own.
      store: await storeOf(args, conf),
      jobs: args.jobs,
      buildTimeout: args["build-timeout"],
      gitUrl: args["git-url"] ?? conf.gitUrl ?? "https://{remote}/{owner}/{repo}.git",
      token,
      isolation: args.isolation,
      image: args.image,
      workDir: args["work-dir"],
      publicUrl: args["public-url"],
    }).catch((e: unknown) => {
      // The server is its own bundle, with its own copy of the error classes: keep their exit codes.
      const code = (e as { exitCode?: unknown }).exitCode;
      if (typeof code === "number" && !(e instanceof TogoError)) throw new TogoError((e as Error).message, code);
      throw e;
    });
  }),
};

const lsCommand: CommandModule<GlobalArgs, LsArgs> = {
  command: "ls",
  describe: "list the artifacts in the store (--builds: the build records, failures included)",
  builder: (y) =>
    y
      .option("store", { type: "string", requiresArg: true, coerce: once("--store"), describe: "a directory, s3://bucket/prefix or a plugin's scheme:// (default: artifacts.store, else .togo/artifacts)" })
      .option("endpoint", { type: "string", requiresArg: true, coerce: once("--endpoint"), describe: "an S3-compatible endpoint for an s3:// store (default: artifacts.endpoint)" })
      .option("builds", { type: "boolean", describe: "list build records (state, coordinates, commit, error) instead of artifacts" })
      .option("json", { type: "boolean", describe: "print a JSON array" })
      .example("$0 artifacts ls --builds", "every build the store has a record of, failed ones with their error") as never,
  handler: run(async (args: LsArgs) => {
    const conf = await settings(args);
    const store = await storeOf(args, conf);
    if (args.builds) {
      const builds = (await store.listBuilds()).sort((a, b) => a.created_at.localeCompare(b.created_at));
      print(args, builds, () =>
        builds.length === 0
          ? `no builds in ${store.location}`
          : builds
              .map((b) => {
                const c = b.coordinates;
                return `${b.id}  ${b.state.padEnd(9)}  ${c.remote}/${c.owner}/${c.repo} ${c.version} ${c.os}/${c.arch}  ${b.commit.slice(0, 12)}  ${b.created_at}${b.error ? `  ${b.error}` : ""}`;
              })
              .join("\n"),
      );
      return;
    }
    const metas = (await store.list()).sort((a, b) => a.built_at.localeCompare(b.built_at));
    print(args, metas, () =>
      metas.length === 0
        ? `no artifacts in ${store.location}`
        : metas
            .map((m) => {
              const c = m.coordinates;
              return `${c.remote}/${c.owner}/${c.repo}  ${c.version}  ${c.os}/${c.arch}  ${m.commit.slice(0, 12)}  ${m.file_name}  ${m.size}  ${m.sha256.slice(0, 16)}  ${m.built_at}`;
            })
            .join("\n"),
    );
  }),
};

export const artifacts: CommandModule<GlobalArgs, GlobalArgs> = {
  command: "artifacts",
  describe: "the build proxy (artifacts serve) and the artifact store (artifacts ls)",
  builder: (y) => y.command(serveCommand).command(lsCommand).demandCommand(1, "name a subcommand: serve or ls") as never,
  handler: () => undefined,
};
