// Secrets adapters. A reference in togo.yaml (`deploy.secrets`) is resolved at deploy time; values
// are never printed: errors name the secret and the adapter, never what it returned.
import { readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { execa } from "execa";
import { OperationError } from "../core/errors.js";
import { parseDotenv } from "../ship/dotenv.js";

type Env = Record<string, string | undefined>;

/** The command an external-CLI reference runs, as [file, ...args]. Pure, for tests. */
export function secretCommand(ref: string): string[] | undefined {
  if (ref.startsWith("op://")) return ["op", "read", "--no-newline", ref];
  if (ref.startsWith("bw://")) {
    const [item, field] = splitOnce(ref.slice(5), "/");
    return ["bw", "get", ["password", "username", "notes", "totp", "uri"].includes(field) ? field : "item", item];
  }
  if (ref.startsWith("doppler://")) {
    const [project, config, name] = ref.slice(10).split("/");
    return ["doppler", "secrets", "get", name, "--plain", "--project", project, "--config", config];
  }
  if (ref.startsWith("cmd:")) return ["sh", "-c", ref.slice(4)];
  return undefined;
}

function splitOnce(s: string, sep: string): [string, string] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, ""] : [s.slice(0, i), s.slice(i + 1)];
}

async function resolveOne(name: string, ref: string, dir: string, env: Env): Promise<string> {
  const fail = (why: string) => new OperationError(`secret ${name} (${ref.split(":")[0]}): ${why}`);
  if (ref.startsWith("env:")) {
    const v = env[ref.slice(4)];
    if (v === undefined) throw fail(`environment variable ${ref.slice(4)} is not set; export it before deploying`);
    return v;
  }
  if (ref.startsWith("file:")) {
    const [file, key] = splitOnce(ref.slice(5), "#");
    const path = isAbsolute(file) ? file : join(dir, file);
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch {
      throw fail(`cannot read ${path}`);
    }
    const vars = parseDotenv(text);
    if (!(key in vars)) throw fail(`${path} has no ${key}=`);
    return vars[key];
  }
  const cmd = secretCommand(ref);
  if (!cmd) throw fail("unknown reference kind");
  const r = await execa(cmd[0], cmd.slice(1), { reject: false, cwd: dir, env: env as NodeJS.ProcessEnv, extendEnv: false, stripFinalNewline: false });
  if ((r as { code?: string }).code === "ENOENT") throw fail(`${cmd[0]} is not installed or not on PATH`);
  if (r.exitCode !== 0) {
    // The CLI's stderr may echo what it was asked; keep only its first line and no stdout.
    throw fail(`${cmd[0]} exited ${r.exitCode}: ${String(r.stderr).split("\n")[0].slice(0, 200)}`);
  }
  let value = String(r.stdout).replace(/\r?\n$/, "");
  if (ref.startsWith("bw://") && cmd[2] === "item") {
    const field = splitOnce(ref.slice(5), "/")[1];
    const item = JSON.parse(value) as { fields?: { name: string; value: string }[] };
    const found = item.fields?.find((f) => f.name === field);
    if (!found) throw fail(`item has no field "${field}"`);
    value = found.value;
  }
  return value;
}

export async function resolveSecrets(refs: Record<string, string>, dir: string, env: Env = process.env): Promise<Record<string, string>> {
  const entries = await Promise.all(Object.entries(refs).map(async ([name, ref]) => [name, await resolveOne(name, ref, dir, env)] as const));
  return Object.fromEntries(entries);
}
