import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline/promises";
import { basename, dirname, join, resolve } from "node:path";
import type { CommandModule } from "yargs";
import { execa } from "execa";
import { parseConfig } from "../../config/load.js";
import { detect, INIT_DRIVERS, missingDevDependencies, missingGitignoreLines, readPackageJson, renderTogoYaml, renderWorkflow, type InitAnswers, type InitDriver } from "../../config/scaffold.js";
import { APP_NAME } from "../../config/schema.js";
import { ConfigError, OperationError, UsageError } from "../../core/errors.js";
import { createDriver } from "../../core/registry.js";
import { TOGO_VERSION } from "../../core/version.js";
import { CDKTF_JSON } from "../../infra/runner.js";
import { defaultRunOptions } from "../service.js";
import { reporter, run, type GlobalArgs } from "../common.js";
import { once } from "../usage.js";

interface Args extends GlobalArgs {
  driver?: string;
  app?: string;
  host?: string;
  user?: string;
  domain?: string;
  port?: string;
  yes: boolean;
  force: boolean;
  install: boolean;
}

export const init: CommandModule<GlobalArgs, Args> = {
  command: "init",
  describe: "start togo in this project: togo.yaml, cdktf.json, .gitignore lines, a CI workflow, devDependencies",
  builder: (y) =>
    y
      .option("driver", { type: "string", requiresArg: true, coerce: once("--driver"), describe: `one of ${INIT_DRIVERS.join(", ")} (default: docker with a Dockerfile, else local)` })
      .option("app", { type: "string", requiresArg: true, coerce: once("--app"), describe: "the app's name (default: package.json's name or the directory's)" })
      .option("host", { type: "string", requiresArg: true, coerce: once("--host"), describe: "the server (vps)" })
      .option("user", { type: "string", requiresArg: true, coerce: once("--user"), describe: "the SSH user (vps; default deploy)" })
      .option("domain", { type: "string", requiresArg: true, coerce: once("--domain"), describe: "a domain Caddy serves the app on" })
      .option("port", { type: "string", requiresArg: true, coerce: once("--port"), describe: "the port the app listens on (default 3000)" })
      .option("yes", { alias: "y", type: "boolean", default: false, describe: "take the defaults without asking (required off a terminal)" })
      .option("force", { type: "boolean", default: false, describe: "replace files that exist (togo.yaml, cdktf.json, the workflow)" })
      .option("install", { type: "boolean", default: true, describe: "run npm install when devDependencies were added (--no-install to skip)" })
      .example("$0 init", "asks, with defaults from package.json / go.mod / Dockerfile")
      .example("$0 init --yes --driver vps --host 203.0.113.10", "in a script"),
  handler: run(async (args: Args) => {
    const log = reporter(args);
    const configFile = resolve(args.config);
    const dir = dirname(configFile);
    const found = detect(dir);
    const tty = Boolean(process.stdin.isTTY && process.stderr.isTTY);
    if (!args.yes && !tty) throw new UsageError("togo init asks on a terminal; here pass --yes (with --driver, --app, --host, --domain, --port to change the defaults)");
    const answers = await answer(found, args, tty && !args.yes);

    const wrote: string[] = [];
    const kept: string[] = [];
    const put = (file: string, text: string) => {
      if (existsSync(file) && !args.force) return void kept.push(file);
      mkdirSync(dirname(file), { recursive: true });
      const tmp = `${file}.togo-init-${process.pid}`;
      writeFileSync(tmp, text);
      renameSync(tmp, file);
      wrote.push(file);
    };

    // The file togo writes is one togo accepts: checked as a deploy would, before anything is written.
    if (!existsSync(configFile) || args.force) await validate(renderTogoYaml(answers), configFile, answers.driver);
    put(configFile, renderTogoYaml(answers));
    put(join(dir, "cdktf.json"), `${JSON.stringify(CDKTF_JSON, null, 2)}\n`);
    put(join(dir, ".github", "workflows", "togo.yml"), renderWorkflow(answers.app));

    const ignore = join(dir, ".gitignore");
    const ignoreText = existsSync(ignore) ? readFileSync(ignore, "utf8") : "";
    const lines = missingGitignoreLines(ignoreText);
    if (lines.length > 0) {
      writeFileSync(ignore, `${ignoreText}${ignoreText && !ignoreText.endsWith("\n") ? "\n" : ""}# togo: records, synthesized stacks, local state\n${lines.join("\n")}\n`);
      wrote.push(`${ignore} (+${lines.join(" ")})`);
    }

    const pkgFile = join(dir, "package.json");
    const pkg = readPackageJson(dir);
    if (existsSync(pkgFile) && !pkg) throw new OperationError(`${pkgFile} is not valid JSON; fix it and run togo init again (nothing else was changed after the files listed above)`);
    const add = missingDevDependencies(pkg, TOGO_VERSION);
    if (Object.keys(add).length > 0) {
      const next = pkg ? { ...pkg } : { name: answers.app, private: true };
      (next as { devDependencies?: Record<string, string> }).devDependencies = { ...pkg?.devDependencies, ...add };
      writeFileSync(pkgFile, `${JSON.stringify(next, null, 2)}\n`);
      wrote.push(`${pkgFile} (devDependencies: ${Object.entries(add).map(([n, v]) => `${n}@${v}`).join(", ")})`);
      if (args.install) {
        log.info("npm install (for the devDependencies just added)");
        const r = await execa("npm", ["install", "--no-audit", "--no-fund"], { cwd: dir, reject: false, all: true });
        if (r.exitCode !== 0) throw new OperationError(`npm install failed in ${dir} (the files above are written; run npm install again):\n${String(r.all).trim().split("\n").slice(-15).join("\n")}`);
      }
    }

    for (const f of wrote) log.info(`wrote ${f}`);
    for (const f of kept) log.info(`kept ${f} (it exists; --force replaces it)`);
    for (const n of found.notes) log.warn(n);
    process.stdout.write(
      `togo is set up for ${answers.app} (${answers.driver}). Next:\n  npx togo provision\n  npx togo deploy\n  npx togo status\nCommit togo.yaml, cdktf.json, .gitignore and .github/workflows/togo.yml.\n`,
    );
  }),
};

async function answer(found: ReturnType<typeof detect>, args: Args, ask: boolean): Promise<InitAnswers> {
  // Lines are read through one iterator: answers typed (or pasted) ahead of their question are kept.
  const rl = ask ? createInterface({ input: process.stdin, terminal: false }) : undefined;
  const lines = rl?.[Symbol.asyncIterator]();
  const q = async (question: string, def: string | undefined, flag: string | undefined): Promise<string | undefined> => {
    if (flag !== undefined || !lines) return flag ?? def;
    process.stderr.write(`${question}${def ? ` [${def}]` : ""}: `);
    const next = await lines.next();
    const a = next.done ? "" : String(next.value).trim();
    return a || def;
  };
  try {
    const app = (await q("app name", found.app, args.app))!;
    if (!APP_NAME.test(app)) throw new UsageError(`--app ${JSON.stringify(app)}: expected lowercase letters, digits and -, starting with a letter, at most 41 characters`);
    const driver = (await q(`driver (${INIT_DRIVERS.join(", ")})`, found.driver, args.driver)) as InitDriver;
    if (!INIT_DRIVERS.includes(driver)) throw new UsageError(`--driver ${JSON.stringify(driver)}: expected one of ${INIT_DRIVERS.join(", ")}`);
    const host = driver === "vps" ? await q("server (host name or IP)", undefined, args.host) : args.host;
    if (driver === "vps" && !host) throw new UsageError("--driver vps needs --host (the server's name or IP address)");
    const user = driver === "vps" ? await q("SSH user", "deploy", args.user) : undefined;
    const domain = await q("domain (empty: none)", undefined, args.domain);
    const portText = (await q("app port", "3000", args.port))!;
    const appPort = Number(portText);
    if (!/^\d+$/.test(portText) || appPort < 1 || appPort > 65535) throw new UsageError(`--port ${JSON.stringify(portText)}: expected a TCP port, 1 to 65535`);
    return { ...found, app, driver, host, user, domain: domain || undefined, appPort };
  } finally {
    rl?.close();
  }
}

/** The togo.yaml text as `togo deploy` would take it: the schema, then the driver's own checks. */
async function validate(text: string, file: string, driver: string): Promise<void> {
  try {
    const spec = parseConfig(text, file, process.env, "");
    const d = await createDriver(driver, { log: reporter({ quiet: true }), opts: defaultRunOptions });
    const problems = d.validate?.(spec) ?? [];
    if (problems.length > 0) throw new ConfigError(`${basename(file)} (as togo init would write it)`, problems);
  } catch (e) {
    if (e instanceof ConfigError || e instanceof UsageError) throw new UsageError(`${e.message}\nnothing was written; change the answers (flags) and run togo init again`);
    throw e;
  }
}
