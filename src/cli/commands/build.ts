// `togo build`: the project's artifact for an os/arch, built into the artifact store
// (artifacts.store, by the same builder the proxy runs: a clean checkout of the commit, the
// repository's togo.yaml build_cmd/binary else make) or asked of the build proxy (artifacts.server).
import type { CommandModule } from "yargs";
import { print, reporter, run, table, type GlobalArgs } from "../common.js";
import { loadProjectPlugins } from "../service.js";
import { once } from "../usage.js";

interface Args extends GlobalArgs {
  os?: string;
  arch?: string;
  version?: string;
}

export const build: CommandModule<GlobalArgs, Args> = {
  command: "build",
  describe: "build the project's artifact for an os/arch into artifacts.store, or ask artifacts.server (the build proxy) to",
  builder: (y) =>
    y
      .option("os", { type: "string", requiresArg: true, coerce: once("--os"), describe: "the target os, as GOOS names it (default: linux)" })
      .option("arch", { type: "string", requiresArg: true, coerce: once("--arch"), describe: "the target architecture, as GOARCH names it (default: this machine's, e.g. amd64)" })
      .option("version", { type: "string", requiresArg: true, coerce: once("--version"), describe: "the tag, branch or commit to build (default: the current commit)" })
      .option("json", { type: "boolean", describe: "print one JSON object: coordinates, commit, sha256, size, file_name, store or server, build_id" })
      .example("$0 build --os linux --arch arm64", "build the current commit for arm64 servers")
      .example("$0 build --version v1.4.0 --json", "build tag v1.4.0; print where it is"),
  handler: run(async (args: Args) => {
    const log = reporter(args);
    const { loadConfig } = await import("../../config/load.js");
    const { buildProject, defaultPlatform } = await import("../build-project.js");
    defaultPlatform(args); // a bad --os/--arch is a usage error before the config is read
    const spec = loadConfig(args.config, { env: process.env, stage: args.stage });
    await loadProjectPlugins(spec); // the store may be a plugin's
    const out = await buildProject(spec, { os: args.os, arch: args.arch, version: args.version }, log, (chunk) => process.stderr.write(chunk));
    log.info(out.message);
    print(args, out.data, () =>
      table([
        ["artifact", `${out.data.coordinates.remote}/${out.data.coordinates.owner}/${out.data.coordinates.repo} ${out.data.coordinates.os}/${out.data.coordinates.arch}`],
        ["version", out.data.coordinates.version],
        ["commit", out.data.commit ?? "-"],
        ["file", out.data.file_name ?? "-"],
        ["size", String(out.data.size)],
        ["sha256", out.data.sha256],
        [out.data.server ? "server" : "store", out.data.server ?? out.data.store ?? "-"],
      ]),
    );
  }),
};
