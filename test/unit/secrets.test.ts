// Secrets adapters. env: and file: run for real. The 1Password (`op`), Bitwarden (`bw`) and Doppler
// CLIs cannot run here (no accounts, no network), so each is exercised with a tiny stand-in
// executable on PATH that checks the exact arguments togo passes and prints what the real CLI
// prints; cmd: runs a real shell command. Errors name the secret and adapter, never the value.
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { resolveSecrets, secretCommand } from "../../src/config/secrets.js";
import { cleanupTempDirs, tempDir } from "../helpers/index.js";

afterAll(cleanupTempDirs);

const VALUE = `p4ss 'with' "quotes" $dollar \`tick\`\nline2 ✓`;

let dir: string;
let bin: string;
const env = (extra: Record<string, string> = {}) => ({ PATH: `${bin}:/usr/bin:/bin`, ...extra });

function fake(name: string, body: string): void {
  const file = join(bin, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
}

beforeAll(() => {
  dir = tempDir();
  bin = join(dir, "bin");
  mkdirSync(bin);
  writeFileSync(join(dir, "value.txt"), VALUE);
  // Each stand-in answers only to the exact command line togo must use.
  fake("op", `[ "$*" = "read --no-newline op://vault/db/password" ] || { echo "unexpected: $*" >&2; exit 9; }\ncat "${join(dir, "value.txt")}"`);
  fake(
    "bw",
    [
      `if [ "$*" = "get password db" ]; then cat "${join(dir, "value.txt")}"; echo; exit 0; fi`,
      `if [ "$*" = "get item db" ]; then printf '%s\\n' '{"name":"db","fields":[{"name":"api_key","value":"k-123 $x"}]}'; exit 0; fi`,
      `echo "Not found." >&2; exit 1`,
    ].join("\n"),
  );
  fake("doppler", `[ "$*" = "secrets get DATABASE_URL --plain --project web --config prd" ] || { echo "unexpected: $*" >&2; exit 9; }\nprintf 'postgres://u:p@db/x'`);
});

test("the command each CLI adapter runs", () => {
  expect(secretCommand("op://vault/db/password")).toEqual(["op", "read", "--no-newline", "op://vault/db/password"]);
  expect(secretCommand("bw://db/password")).toEqual(["bw", "get", "password", "db"]);
  expect(secretCommand("bw://db/api_key")).toEqual(["bw", "get", "item", "db"]);
  expect(secretCommand("doppler://web/prd/DATABASE_URL")).toEqual(["doppler", "secrets", "get", "DATABASE_URL", "--plain", "--project", "web", "--config", "prd"]);
  expect(secretCommand("cmd:vault kv get -field=x secret/y")).toEqual(["sh", "-c", "vault kv get -field=x secret/y"]);
  expect(secretCommand("env:X")).toBeUndefined();
});

test("env: and file: resolve exact bytes", async () => {
  writeFileSync(join(dir, ".env.secrets"), `# comment\nexport API_TOKEN="tok\\"en \\$x"\nPLAIN=abc # trailing comment\nSINGLE='a "b" $c'\n`);
  const r = await resolveSecrets(
    { A: "env:SRC", B: "file:.env.secrets#API_TOKEN", C: "file:.env.secrets#PLAIN", D: `file:${join(dir, ".env.secrets")}#SINGLE` },
    dir,
    env({ SRC: VALUE }),
  );
  expect(r).toEqual({ A: VALUE, B: 'tok"en $x', C: "abc", D: 'a "b" $c' });
});

test("op, bw (field and item field), doppler and cmd: through their CLIs", async () => {
  const r = await resolveSecrets(
    {
      OP: "op://vault/db/password",
      BW: "bw://db/password",
      BW_FIELD: "bw://db/api_key",
      DOPPLER: "doppler://web/prd/DATABASE_URL",
      CMD: `cmd:cat value.txt`,
    },
    dir,
    env(),
  );
  expect(r).toEqual({ OP: VALUE, BW: VALUE, BW_FIELD: "k-123 $x", DOPPLER: "postgres://u:p@db/x", CMD: VALUE });
});

test("failures name the secret and the adapter, never a value", async () => {
  await expect(resolveSecrets({ DB: "env:MISSING" }, dir, env())).rejects.toThrow("secret DB (env): environment variable MISSING is not set; export it before deploying");
  await expect(resolveSecrets({ DB: "file:nope.env#X" }, dir, env())).rejects.toThrow(/secret DB \(file\): cannot read .*nope\.env/);
  await expect(resolveSecrets({ DB: "file:.env.secrets#NOPE" }, dir, env())).rejects.toThrow(/has no NOPE=/);
  await expect(resolveSecrets({ DB: "bw://other/password" }, dir, env())).rejects.toThrow("secret DB (bw): bw exited 1: Not found.");
  await expect(resolveSecrets({ DB: "bw://db/missing_field" }, dir, env())).rejects.toThrow('secret DB (bw): item has no field "missing_field"');
  await expect(resolveSecrets({ DB: "op://vault/x/y" }, dir, { PATH: "/usr/bin:/bin" })).rejects.toThrow("secret DB (op): op is not installed or not on PATH");
  // A CLI that prints the value and then fails: the value stays out of the error.
  const leak = resolveSecrets({ DB: `cmd:cat value.txt; echo oops >&2; exit 3` }, dir, env());
  await expect(leak).rejects.toThrow("secret DB (cmd): sh exited 3: oops");
  await leak.catch((e: Error) => expect(e.message).not.toContain("p4ss"));
});
