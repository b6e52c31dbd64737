// The Terraform runner: synth (in-process, through the cdktf app entry), apply/destroy/plan with
// the `cdktf` engine (the card's `cdktf deploy`) or the `terraform` engine (the same stack folder
// and state, run directly), and outputs read with `terraform output -json` (never by re-synth).
// This and stacks/ are the only places that know cdktf, so a move to its fork is a rename.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { execa } from "execa";
import { OperationError } from "../errors.js";
import type { Reporter } from "../log.js";
import type { Spec, StackSource } from "../spec.js";
import { TOGO_VERSION } from "../version.js";

export const OUT_DIR = "cdktf.out";

export function outDir(spec: Spec): string {
  return process.env.CDKTF_OUTDIR ? resolve(process.env.CDKTF_OUTDIR) : join(spec.dir, OUT_DIR);
}

export function stackDir(spec: Spec, name: string): string {
  return join(spec.dir, OUT_DIR, "stacks", name);
}

/** Where cdktf's local backend keeps a stack's state (project root). */
export function localStatePath(spec: Spec, name: string): string {
  return join(spec.dir, `terraform.${name}.tfstate`);
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
    const rc = join(spec.dir, ".togo", "terraform.rc");
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

async function runTool(spec: Spec, run: ToolRun, what: string): Promise<string> {
  const r = await execa(run.file, run.args, { cwd: run.cwd, env: terraformEnv(spec), extendEnv: false, reject: false, all: true });
  const all = String(r.all ?? "");
  if ((r as { code?: string }).code === "ENOENT") {
    throw new OperationError(`${run.file} is not installed or not on PATH (terraform.binary in togo.yaml); install Terraform ≥ 1.5 or OpenTofu`);
  }
  if (r.exitCode !== 0) {
    const tail = all.trim().split("\n").slice(-25).join("\n");
    throw new OperationError(`${what} failed (exit ${r.exitCode}): ${[run.file === process.execPath ? "cdktf" : run.file, ...run.args.slice(run.file === process.execPath ? 1 : 0)].join(" ")}\n${tail}`);
  }
  return all;
}

// --- synth ---

export async function synth(spec: Spec, stacks: StackSource[], outdir = outDir(spec)): Promise<string[]> {
  // The cdktf app entry is the one way into stacks/ (it loads cdktf and the providers lazily).
  const { synthStacks } = await import("../../stacks/app.js");
  const r = await synthStacks(stacks, outdir);
  return r.stacks;
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
  return join(spec.dir, ".togo", "provision", `${name}.json`);
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
    const s = JSON.parse(readFileSync(file, "utf8")) as { lineage?: string; serial?: number; resources?: unknown[] };
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
 */
export async function apply(spec: Spec, stacks: StackSource[], log: Reporter, force = false): Promise<ApplyOutcome[]> {
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
    await log.stage(`apply ${s.name}`, async () => {
      for (const run of engineCommand(spec, "apply", s.name)) await runTool(spec, run, `applying stack ${s.name}`);
    });
    writeRecord(spec, s, stackHash);
    results.push({ stack: s.name, applied: true, outputs: await outputs(spec, s.name) });
  }
  return results;
}

export async function destroy(spec: Spec, stacks: StackSource[], log: Reporter): Promise<void> {
  await log.stage("synth", () => synth(spec, stacks, join(spec.dir, OUT_DIR)));
  for (const s of [...stacks].reverse()) {
    await log.stage(`destroy ${s.name}`, async () => {
      for (const run of engineCommand(spec, "destroy", s.name)) await runTool(spec, run, `destroying stack ${s.name}`);
    });
    rmSync(recordPath(spec, s.name), { force: true });
  }
}

/** True when the stack folder exists and has been initialised (outputs can be read without synth). */
function initialised(spec: Spec, name: string): boolean {
  return existsSync(join(stackDir(spec, name), ".terraform"));
}

/**
 * A stack's outputs as `{name: value}`, read by `terraform output -json` in the stack folder.
 * Returns undefined when the stack was never applied (no state).
 */
export async function outputs(spec: Spec, name: string): Promise<Record<string, unknown>> {
  if (!spec.state && !existsSync(localStatePath(spec, name))) return {};
  const dir = stackDir(spec, name);
  if (!initialised(spec, name)) {
    if (!existsSync(join(dir, "cdk.tf.json"))) return {};
    await runTool(spec, { file: spec.terraform.binary, args: [`-chdir=${dir}`, "init", "-input=false", "-no-color"], cwd: spec.dir }, `initialising stack ${name}`);
  }
  const out = await runTool(spec, { file: spec.terraform.binary, args: [`-chdir=${dir}`, "output", "-json"], cwd: spec.dir }, `reading outputs of ${name}`);
  const parsed = JSON.parse(out.slice(out.indexOf("{"))) as Record<string, { value: unknown; sensitive?: boolean }>;
  return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, v.sensitive ? "(sensitive)" : v.value]));
}

export interface PlanResult {
  stack: string;
  /** `terraform show -json` of the saved plan. */
  json: PlanJson;
  text: string;
}

export interface PlanJson {
  resource_changes?: { address: string; type: string; name: string; change: { actions: string[] } }[];
  output_changes?: Record<string, { actions: string[] }>;
}

/** A saved plan of each stack (what `cdktf diff` shows), as text and as `terraform show -json`. */
export async function plan(spec: Spec, stacks: StackSource[], log: Reporter, synthFirst = true): Promise<PlanResult[]> {
  if (synthFirst) await log.stage("synth", () => synth(spec, stacks, join(spec.dir, OUT_DIR)));
  const tf = spec.terraform.binary;
  const results: PlanResult[] = [];
  for (const s of stacks) {
    const dir = stackDir(spec, s.name);
    const result = await log.stage(`plan ${s.name}`, async () => {
      await runTool(spec, { file: tf, args: [`-chdir=${dir}`, "init", "-input=false", "-no-color"], cwd: spec.dir }, `initialising stack ${s.name}`);
      await runTool(spec, { file: tf, args: [`-chdir=${dir}`, "plan", "-input=false", "-no-color", "-out=togo.tfplan"], cwd: spec.dir }, `planning stack ${s.name}`);
      const text = await runTool(spec, { file: tf, args: [`-chdir=${dir}`, "show", "-no-color", "togo.tfplan"], cwd: spec.dir }, `showing the plan of ${s.name}`);
      const json = await runTool(spec, { file: tf, args: [`-chdir=${dir}`, "show", "-json", "togo.tfplan"], cwd: spec.dir }, `showing the plan of ${s.name}`);
      return { stack: s.name, text, json: JSON.parse(json.slice(json.indexOf("{"))) as PlanJson };
    });
    results.push(result);
  }
  return results;
}
