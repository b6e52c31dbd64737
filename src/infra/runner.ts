// The Terraform runner: synth (in-process, through the cdktf app entry), apply/destroy/plan with
// the `cdktf` engine (the card's `cdktf deploy`) or the `terraform` engine (the same stack folder
// and state, run directly), and outputs read with `terraform output -json` (never by re-synth).
// This and stacks/ are the only places that know cdktf, so a move to its fork is a rename.
import { createHash } from "node:crypto";
import { accessSync, constants, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { delimiter, dirname, isAbsolute, join, resolve } from "node:path";
import { execa } from "execa";
import { LockHeldError, OperationError } from "../core/errors.js";
import type { Reporter } from "../core/log.js";
import type { Spec, StackSource } from "../core/spec.js";
import { OUT_DIR, workspaceOf } from "../core/workspace.js";
import { withStackLocks } from "./lock.js";
import { maskSensitive } from "./sensitive.js";
import { TOGO_VERSION } from "../core/version.js";

export { OUT_DIR };

export function outDir(spec: Spec): string {
  return workspaceOf(spec).outDir();
}

export function stackDir(spec: Spec, name: string): string {
  return workspaceOf(spec).stackDir(name);
}

/** Where cdktf's local backend keeps a stack's state (project root). */
export function localStatePath(spec: Spec, name: string): string {
  return workspaceOf(spec).localStatePath(name);
}

/** The provider-installation CLI config for a filesystem mirror (offline installs). */
export function cliConfigText(mirror: string): string {
  return [
    "provider_installation {",
    `  filesystem_mirror {`,
    `    path = ${JSON.stringify(mirror)}`,
    `  }`,
    `  direct {`,
    `    exclude = ["registry.terraform.io/*/*", "registry.opentofu.org/*/*"]`,
    `  }`,
    "}",
    "",
  ].join("\n");
}

/** The environment terraform and cdktf run with. */
export function terraformEnv(spec: Spec, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...base,
    CHECKPOINT_DISABLE: "1",
    TF_IN_AUTOMATION: "1",
    TF_INPUT: "0",
    CDKTF_DISABLE_PLUGIN_CACHE_ENV: "1",
    TERRAFORM_BINARY_NAME: spec.terraform.binary,
    CI: base.CI ?? "1",
  };
  if (spec.terraform.pluginMirror) {
    const rc = workspaceOf(spec).terraformRc;
    const text = cliConfigText(spec.terraform.pluginMirror);
    if (!existsSync(rc) || readFileSync(rc, "utf8") !== text) {
      mkdirSync(dirname(rc), { recursive: true });
      writeFileSync(rc, text);
    }
    env.TF_CLI_CONFIG_FILE = rc;
  } else if (env.TF_CLI_CONFIG_FILE && !existsSync(env.TF_CLI_CONFIG_FILE)) {
    delete env.TF_CLI_CONFIG_FILE; // a missing file only makes terraform warn on every run
  }
  return env;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Where terraform.binary resolves (a name on PATH, or a path relative to togo.yaml), if anywhere. */
export function findTerraform(spec: Spec, path = process.env.PATH ?? ""): string | undefined {
  const bin = spec.terraform.binary;
  if (bin.includes("/")) {
    const file = isAbsolute(bin) ? bin : resolve(spec.dir, bin);
    return isExecutable(file) ? file : undefined;
  }
  return path
    .split(delimiter)
    .filter(Boolean)
    .map((dir) => join(dir, bin))
    .find(isExecutable);
}

/** togo's own error for a terraform.binary that is not there, instead of cdktf's or the shell's. */
export function terraformMissing(spec: Spec, path = process.env.PATH ?? ""): OperationError {
  const bin = spec.terraform.binary;
  const where = bin.includes("/") ? `there is no executable file ${isAbsolute(bin) ? bin : resolve(spec.dir, bin)}` : `no ${bin} was found on PATH (${path || "empty"})`;
  const install = /(^|\/)tofu$/.test(bin)
    ? "install OpenTofu (https://opentofu.org/docs/intro/install/)"
    : "install Terraform ≥ 1.5 (https://developer.hashicorp.com/terraform/install), or OpenTofu and set terraform.binary: tofu";
  return new OperationError(`terraform.binary is "${bin}" (${spec.configFile}), but ${where}: ${install}, or set terraform.binary to the full path of the one you have. Nothing was changed.`);
}

/**
 * Checked before any stack work: cdktf's synth runs `<binary> version` itself and cdktf-cli runs
 * the binary too, and both would fail with their own raw, coloured text.
 */
export function requireTerraform(spec: Spec): void {
  if (!findTerraform(spec)) throw terraformMissing(spec);
}

function cdktfCli(): string {
  const require = createRequire(import.meta.url);
  const pkg = require.resolve("cdktf-cli/package.json");
  return join(dirname(pkg), "bundle", "bin", "cdktf");
}

interface ToolRun {
  file: string;
  args: string[];
  cwd: string;
}

/** The command an operation runs under an engine. Pure, for tests. */
export function engineCommand(spec: Spec, op: "apply" | "destroy", stack: string): ToolRun[] {
  const dir = stackDir(spec, stack);
  if (spec.terraform.engine === "cdktf") {
    const cmd = op === "apply" ? "deploy" : "destroy";
    return [{ file: process.execPath, args: [cdktfCli(), cmd, stack, "--auto-approve", "--skip-synth", "--skip-provider-lock"], cwd: spec.dir }];
  }
  const tf = spec.terraform.binary;
  return [
    { file: tf, args: [`-chdir=${dir}`, "init", "-input=false", "-no-color"], cwd: spec.dir },
    { file: tf, args: [`-chdir=${dir}`, op, "-input=false", "-auto-approve", "-no-color"], cwd: spec.dir },
  ];
}

/**
 * Terraform's "Error acquiring the state lock" as one clear error naming the holder, or undefined.
 * Pure, for tests.
 */
export function stateLockError(output: string, what: string, chdir?: string): LockHeldError | undefined {
  if (!/Error acquiring the state lock/.test(output)) return undefined;
  // Lines may carry cdktf's stack prefix or terraform's box (│) when colour is on.
  const info = output.slice(output.indexOf("Lock Info:"));
  const field = (name: string) => new RegExp(`(?:^|[\\s│])${name}:[^\\S\\n]*(.*)$`, "m").exec(info)?.[1]?.trim() || undefined;
  const [id, who, operation, created, path] = ["ID", "Who", "Operation", "Created", "Path"].map(field);
  const unlock = id ? ` If no run is active, release it with: terraform${chdir ? ` ${chdir}` : ""} force-unlock ${id}` : "";
  return new LockHeldError(
    `${what} failed: the state is locked by ${who ?? "another run"}` +
      `${operation ? ` (${operation.replace(/^OperationType/, "").toLowerCase()}` : " ("}${created ? ` since ${created}` : ""}${path ? `, lock ${path}` : ""}${id ? `, ID ${id}` : ""}).` +
      ` Wait for that run to finish and try again.${unlock}`,
  );
}

/** A stack's own environment (its sensitive variables) under what the caller passes. */
async function stackEnv(s: StackSource, env: Record<string, string>): Promise<Record<string, string>> {
  return { ...(s.env ? await s.env() : {}), ...env };
}

async function runTool(spec: Spec, run: ToolRun, what: string, output: "all" | "stdout" = "all", env: Record<string, string> = {}): Promise<string> {
  const r = await execa(run.file, run.args, { cwd: run.cwd, env: { ...terraformEnv(spec), ...env }, extendEnv: false, reject: false, all: true });
  const all = String(r.all ?? "");
  if ((r as { code?: string }).code === "ENOENT") throw terraformMissing(spec);
  if (r.exitCode !== 0) {
    const locked = stateLockError(all, what, run.args.find((a) => a.startsWith("-chdir=")));
    if (locked) throw locked;
    // cdktf colours its output whatever NO_COLOR says; an error message is plain text.
    const tail = all.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").trim().split("\n").slice(-25).join("\n");
    throw new OperationError(`${what} failed (exit ${r.exitCode}): ${[run.file === process.execPath ? "cdktf" : run.file, ...run.args.slice(run.file === process.execPath ? 1 : 0)].join(" ")}\n${tail}`);
  }
  return output === "stdout" ? String(r.stdout ?? "") : all;
}

/** What cdktf.json must say for `cdktf diff`/`deploy` to see togo's stacks. */
export const CDKTF_JSON = { language: "typescript", app: "npx togo synth", output: OUT_DIR, terraformProviders: [], terraformModules: [], context: {} };

/**
 * The cdktf engine runs cdktf-cli in the project, which needs a cdktf.json there: one is written
 * when missing (the same file a user commits so `npx cdktf diff` works in pull requests).
 */
export function ensureCdktfJson(spec: Spec, log: Reporter): void {
  const file = join(spec.dir, "cdktf.json");
  if (!existsSync(file)) {
    writeFileSync(file, `${JSON.stringify(CDKTF_JSON, null, 2)}\n`);
    log.info(`wrote ${file} (its app runs togo synth; commit it so cdktf diff works in pull requests)`);
    return;
  }
  let output: unknown;
  try {
    output = (JSON.parse(readFileSync(file, "utf8")) as { output?: unknown }).output ?? OUT_DIR;
  } catch (e) {
    throw new OperationError(`${file} is not valid JSON (${(e as Error).message}); fix it or delete it and togo writes a fresh one`);
  }
  if (output !== OUT_DIR) {
    throw new OperationError(`${file} has "output": ${JSON.stringify(output)}; togo keeps stacks in "${OUT_DIR}" so cdktf and togo share them: set "output": "${OUT_DIR}"`);
  }
}

// --- synth ---

export async function synth(spec: Spec, stacks: StackSource[], outdir = outDir(spec)): Promise<string[]> {
  // cdktf's synth runs `<binary> version` for terraform_data (once, reading the name when it loads).
  process.env.TERRAFORM_BINARY_NAME ??= spec.terraform.binary;
  // The cdktf app entry is the one way into stacks/ (it loads cdktf and the providers lazily).
  const { synthStacks } = await import("../../stacks/app.js");
  const fresh = !existsSync(outdir);
  try {
    return (await synthStacks(stacks, outdir)).stacks;
  } catch (e) {
    if (/Could not determine version of/.test(String((e as Error).message)) && !findTerraform(spec)) {
      if (fresh) rmSync(outdir, { recursive: true, force: true });
      throw terraformMissing(spec);
    }
    throw e;
  }
}

// --- skip-if-unchanged record ---

interface ProvisionRecord {
  /** Hash of the stack's props and togo's version: unchanged means synth would write the same JSON. */
  propsHash: string;
  /** Hash of cdk.tf.json as applied. */
  stackHash: string;
  engine: string;
  /** Local state identity when applied (a changed or missing state means re-apply). */
  lineage?: string;
  serial?: number;
}

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

function recordPath(spec: Spec, name: string): string {
  return workspaceOf(spec).provisionRecord(name);
}

export function propsHash(stack: StackSource): string {
  return sha(JSON.stringify({ togo: TOGO_VERSION, name: stack.name, props: stack.props }));
}

function stackJsonHash(spec: Spec, name: string): string | undefined {
  const file = join(stackDir(spec, name), "cdk.tf.json");
  return existsSync(file) ? sha(readFileSync(file, "utf8")) : undefined;
}

function localStateIdentity(spec: Spec, name: string): { lineage?: string; serial?: number } | undefined {
  if (spec.state) return {}; // remote state: the record alone decides (use --force after hand edits)
  const file = localStatePath(spec, name);
  if (!existsSync(file)) return undefined;
  try {
    const text = readFileSync(file, "utf8");
    // Terraform writes serial and lineage at the top of the file: no need to parse a large state.
    const serial = /"serial":\s*(\d+)/.exec(text.slice(0, 400));
    const lineage = /"lineage":\s*"([^"]+)"/.exec(text.slice(0, 400));
    if (serial && lineage) return { lineage: lineage[1], serial: Number(serial[1]) };
    const s = JSON.parse(text) as { lineage?: string; serial?: number };
    return { lineage: s.lineage, serial: s.serial };
  } catch {
    return undefined;
  }
}

function readRecord(spec: Spec, name: string): ProvisionRecord | undefined {
  try {
    return JSON.parse(readFileSync(recordPath(spec, name), "utf8")) as ProvisionRecord;
  } catch {
    return undefined;
  }
}

function isRecordCurrent(spec: Spec, name: string, rec: ProvisionRecord | undefined, stackHash: string | undefined): boolean {
  if (!rec || !stackHash || rec.stackHash !== stackHash || rec.engine !== spec.terraform.engine) return false;
  const state = localStateIdentity(spec, name);
  return state !== undefined && state.lineage === rec.lineage && state.serial === rec.serial;
}

function writeRecord(spec: Spec, stack: StackSource, stackHash: string): void {
  const file = recordPath(spec, stack.name);
  mkdirSync(dirname(file), { recursive: true });
  const rec: ProvisionRecord = { propsHash: propsHash(stack), stackHash, engine: spec.terraform.engine, ...localStateIdentity(spec, stack.name) };
  writeFileSync(file, `${JSON.stringify(rec, null, 2)}\n`);
}

export interface ApplyOutcome {
  stack: string;
  applied: boolean;
  outputs: Record<string, unknown>;
}

/**
 * Applies the stacks. Work that cannot change anything is skipped: when a stack's props are what
 * was last applied and its JSON and state are untouched, neither synth nor apply runs.
 * `env` reaches terraform only (e.g. TF_VAR_* for sensitive variables kept out of the stack JSON),
 * over each stack's own `env`.
 */
export async function apply(spec: Spec, stacks: StackSource[], log: Reporter, force = false, env: Record<string, string> = {}): Promise<ApplyOutcome[]> {
  if (stacks.length > 0) requireTerraform(spec);
  return withStackLocks(spec, stacks.map((s) => s.name), "provision", () => applyLocked(spec, stacks, log, force, env));
}

async function applyLocked(spec: Spec, stacks: StackSource[], log: Reporter, force: boolean, env: Record<string, string>): Promise<ApplyOutcome[]> {
  const unchanged = (s: StackSource) => {
    const rec = readRecord(spec, s.name);
    return !force && rec?.propsHash === propsHash(s) && isRecordCurrent(spec, s.name, rec, stackJsonHash(spec, s.name));
  };
  if (stacks.every(unchanged)) {
    log.info(`infrastructure unchanged (${stacks.map((s) => s.name).join(", ")}); nothing to apply (--force to apply anyway)`);
    return Promise.all(stacks.map(async (s) => ({ stack: s.name, applied: false, outputs: await outputs(spec, s.name) })));
  }
  await log.stage("synth", () => synth(spec, stacks, join(spec.dir, OUT_DIR)));
  const results: ApplyOutcome[] = [];
  for (const s of stacks) {
    const stackHash = stackJsonHash(spec, s.name)!;
    if (!force && isRecordCurrent(spec, s.name, readRecord(spec, s.name), stackHash)) {
      writeRecord(spec, s, stackHash);
      results.push({ stack: s.name, applied: false, outputs: await outputs(spec, s.name) });
      continue;
    }
    if (spec.terraform.engine === "cdktf") ensureCdktfJson(spec, log);
    await log.stage(`apply ${s.name}`, async () => {
      const vars = await stackEnv(s, env);
      for (const run of engineCommand(spec, "apply", s.name)) await runTool(spec, run, `applying stack ${s.name}`, "all", vars);
    });
    writeRecord(spec, s, stackHash);
    results.push({ stack: s.name, applied: true, outputs: await outputs(spec, s.name) });
  }
  return results;
}

export async function destroy(spec: Spec, stacks: StackSource[], log: Reporter, env: Record<string, string> = {}): Promise<void> {
  if (stacks.length > 0) requireTerraform(spec);
  return withStackLocks(spec, stacks.map((s) => s.name), "destroy", () => destroyLocked(spec, stacks, log, env));
}

async function destroyLocked(spec: Spec, stacks: StackSource[], log: Reporter, env: Record<string, string>): Promise<void> {
  await log.stage("synth", () => synth(spec, stacks, join(spec.dir, OUT_DIR)));
  if (spec.terraform.engine === "cdktf") ensureCdktfJson(spec, log);
  for (const s of [...stacks].reverse()) {
    await log.stage(`destroy ${s.name}`, async () => {
      const vars = await stackEnv(s, env);
      for (const run of engineCommand(spec, "destroy", s.name)) await runTool(spec, run, `destroying stack ${s.name}`, "all", vars);
    });
    rmSync(recordPath(spec, s.name), { force: true });
  }
}

/** True when the stack folder exists and has been initialised (outputs can be read without synth). */
function initialised(spec: Spec, name: string): boolean {
  return existsSync(join(stackDir(spec, name), ".terraform"));
}

/**
 * A stack's outputs as `{name: value}` (sensitive ones masked), read by `terraform output -json`;
 * empty when the stack was never applied. With the local backend the answer is kept beside the
 * project, keyed on the state's lineage and serial (which every state write changes), so `togo
 * status` spawns terraform only after the state changed.
 */
export async function outputs(spec: Spec, name: string): Promise<Record<string, unknown>> {
  if (spec.state) return terraformOutputs(spec, name, [`-chdir=${stackDir(spec, name)}`]);
  const identity = localStateIdentity(spec, name);
  if (!identity) return {};
  const cacheFile = workspaceOf(spec).outputsCache(name);
  try {
    const cached = JSON.parse(readFileSync(cacheFile, "utf8")) as { lineage: string; serial: number; outputs: Record<string, unknown> };
    if (cached.lineage === identity.lineage && cached.serial === identity.serial) return cached.outputs;
  } catch {
    // no answer kept yet
  }
  // Without an initialised stack folder (cdktf.out/ removed), terraform reads the state file itself.
  const where = initialised(spec, name) ? [`-chdir=${stackDir(spec, name)}`] : [`-state=${localStatePath(spec, name)}`];
  const result = await terraformOutputs(spec, name, where);
  mkdirSync(dirname(cacheFile), { recursive: true });
  writeFileSync(`${cacheFile}.${process.pid}`, JSON.stringify({ ...identity, outputs: result }));
  renameSync(`${cacheFile}.${process.pid}`, cacheFile);
  return result;
}

async function terraformOutputs(spec: Spec, name: string, where: string[]): Promise<Record<string, unknown>> {
  const dir = stackDir(spec, name);
  if (where[0].startsWith("-chdir") && !initialised(spec, name)) {
    if (!existsSync(join(dir, "cdk.tf.json"))) return {};
    await runTool(spec, { file: spec.terraform.binary, args: [`-chdir=${dir}`, "init", "-input=false", "-no-color"], cwd: spec.dir }, `initialising stack ${name}`);
  }
  const args = where[0].startsWith("-chdir") ? [where[0], "output", "-json"] : ["output", where[0], "-json"];
  const out = await runTool(spec, { file: spec.terraform.binary, args, cwd: spec.dir }, `reading outputs of ${name}`);
  const parsed = JSON.parse(out.slice(out.indexOf("{"))) as Record<string, { value: unknown; sensitive?: boolean }>;
  return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, v.sensitive ? "(sensitive)" : v.value]));
}

export interface PlanResult {
  stack: string;
  /** `terraform show -json` of the saved plan. */
  json: PlanJson;
  /** The plan as terraform prints it (no colour, without the "saved the plan" trailer). */
  text: string;
}

export interface PlanJson {
  resource_changes?: { address: string; type: string; name: string; mode?: string; change: { actions: string[] } }[];
  output_changes?: Record<string, { actions: string[] }>;
}

/** Where a stack's saved plan and its `terraform show -json` are kept (for CI artifacts, tools). */
export const PLAN_FILE = "togo.tfplan";
export const PLAN_JSON_FILE = "togo.tfplan.json";

/** Terraform's plan output without the lines about the saved file, which mean nothing in a PR. */
export function planText(stdout: string): string {
  const lines = stdout.replace(/\r/g, "").split("\n");
  const saved = lines.findIndex((l) => l.startsWith("Saved the plan to:"));
  let end = saved === -1 ? lines.length : saved;
  while (end > 0 && (lines[end - 1].trim() === "" || /^─+$/.test(lines[end - 1].trim()))) end--;
  return lines.slice(0, end).join("\n").trim();
}

/**
 * A saved plan of each stack (what `cdktf diff` shows): terraform's own text and `terraform show
 * -json`, which is also written beside the plan as togo.tfplan.json. Plan's output is the text, so
 * the provider starts twice per stack (plan, show -json), not three times. Terraform gets the
 * stack's sensitive variables as an apply does (`env`, then the stack's own), and every value it
 * marks sensitive is masked in the JSON: show -json prints them in clear.
 */
export async function plan(spec: Spec, stacks: StackSource[], log: Reporter, synthFirst = true, env: Record<string, string> = {}): Promise<PlanResult[]> {
  if (stacks.length > 0) requireTerraform(spec);
  return withStackLocks(spec, stacks.map((s) => s.name), "diff", () => planLocked(spec, stacks, log, synthFirst, env));
}

async function planLocked(spec: Spec, stacks: StackSource[], log: Reporter, synthFirst: boolean, env: Record<string, string>): Promise<PlanResult[]> {
  if (synthFirst) await log.stage("synth", () => synth(spec, stacks, join(spec.dir, OUT_DIR)));
  const tf = spec.terraform.binary;
  const results: PlanResult[] = [];
  for (const s of stacks) {
    const dir = stackDir(spec, s.name);
    const result = await log.stage(`plan ${s.name}`, async () => {
      rmSync(join(dir, PLAN_FILE), { force: true });
      rmSync(join(dir, PLAN_JSON_FILE), { force: true });
      const vars = await stackEnv(s, env);
      await runTool(spec, { file: tf, args: [`-chdir=${dir}`, "init", "-input=false", "-no-color"], cwd: spec.dir }, `initialising stack ${s.name}`);
      const out = await runTool(spec, { file: tf, args: [`-chdir=${dir}`, "plan", "-input=false", "-no-color", `-out=${PLAN_FILE}`], cwd: spec.dir }, `planning stack ${s.name}`, "stdout", vars);
      const shown = await runTool(spec, { file: tf, args: [`-chdir=${dir}`, "show", "-json", PLAN_FILE], cwd: spec.dir }, `showing the plan of ${s.name}`, "stdout");
      const json = maskSensitive(JSON.parse(shown) as PlanJson);
      writeFileSync(join(dir, PLAN_JSON_FILE), JSON.stringify(json));
      return { stack: s.name, text: planText(out), json };
    });
    results.push(result);
  }
  return results;
}
