// The deploy plan of the versioned-release strategy (`togo diff`): what `togo deploy` would do on
// each target, from reads only. The artifact's sha256 against the live release's, the version a
// deploy would get, the env keys it would add, remove or change (keyed fingerprints: no value leaves
// the host or this process), and the systemd unit / Caddy site it would write against the ones on
// the host. Nothing is built (build_cmd does not run), locked, uploaded or written; a host that
// cannot be reached is said in the plan, not thrown.
import { existsSync } from "node:fs";
import { resolveSecrets } from "../config/secrets.js";
import { OperationError } from "../core/errors.js";
import type { DeployPlan, FilePlan, Spec, TargetPlan } from "../core/spec.js";
import { unifiedDiff } from "../core/text-diff.js";
import { workspaceOf } from "../core/workspace.js";
import type { Command } from "../exec/transport.js";
import { gitVersion, hashArtifact } from "./artifact.js";
import { artifactPath, chooseStrategy } from "./deploy.js";
import { envChanges, fingerprintKey, parseFingerprints, type NextValue } from "./env-plan.js";
import { parseReadFile } from "./scripts.js";
import type { Front } from "./switch.js";
import type { OpenTarget } from "./target.js";

export interface PlanInput {
  driver: string;
  /** What fronts the app (decides blue-green or restart, as a deploy would). */
  front?: Front;
  /** The Caddy site a deploy writes on the host (domain set, Caddy fronting): its path, text for a port, and how to read it. */
  site?: { path: string; text: (port: number) => string; read: Command };
  /** Where `env:` secrets are read from. */
  env?: Record<string, string | undefined>;
  /** `--version`, when given. */
  version?: string;
}

/** The first line of an error, for a table cell. */
const firstLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).trim().split("\n")[0];
/** An error's first two lines on one (what failed, then its first line of output), for a note. */
const brief = (err: unknown) =>
  (err instanceof Error ? err.message : String(err))
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(0, 2)
    .join(" ")
    .slice(0, 300);

/** The env a deploy would write (deploy.env, then the secrets over it), each secret resolved on its own. */
async function nextEnv(spec: Spec, env: Record<string, string | undefined> | undefined): Promise<Record<string, NextValue>> {
  const out: Record<string, NextValue> = {};
  for (const [k, v] of Object.entries(spec.env)) out[k] = { value: v, secret: false };
  for (const [k, ref] of Object.entries(spec.secrets)) {
    try {
      out[k] = { value: (await resolveSecrets({ [k]: ref }, spec.dir, env))[k], secret: true };
    } catch (err) {
      // Its message names the secret and the adapter, never a value.
      if (!(err instanceof OperationError)) throw err;
      out[k] = { secret: true, note: `not resolvable here: ${firstLine(err)}` };
    }
  }
  return out;
}

function filePlan(path: string, live: string | undefined, next: string, note?: string): FilePlan {
  const diff = unifiedDiff(live ?? "", next, live === undefined ? "/dev/null" : `${path} (on the host)`, `${path} (a deploy would write)`);
  return { path, diff, ...(note ? { note } : {}) };
}

export async function planDeploy(spec: Spec, ts: OpenTarget[], input: PlanInput): Promise<DeployPlan> {
  const notes: string[] = [];
  // The artifact as it is in the project: diff builds nothing.
  const artifact: DeployPlan["artifact"] = { path: spec.binary };
  let sha256: string | undefined;
  if (spec.artifact === "store") {
    artifact.note = "from the artifact store (deploy.artifact: store): the current commit's build, not fetched by togo diff";
  } else if (spec.binary && existsSync(artifactPath(spec))) {
    sha256 = (await hashArtifact(artifactPath(spec), { cache: workspaceOf(spec).digestCache(spec.binary) })).sha256;
    artifact.sha256 = sha256;
    if (spec.buildCmd) artifact.note = "as it is in the project now; build_cmd was not run";
  } else if (spec.binary) {
    artifact.note = spec.buildCmd ? "not built here (togo diff does not run build_cmd)" : "missing";
  }
  const version = input.version ? { value: input.version, source: "--version" } : await describedVersion(spec.dir, sha256);

  const next = await nextEnv(spec, input.env);
  const key = fingerprintKey();

  const targets = await Promise.all(
    ts.map(async (t): Promise<TargetPlan> => {
      const host = t.target.host ?? "local";
      const plan: TargetPlan = { host, reachable: true, notes: [] };
      const run = (c: Command) => t.transport.run(c);
      let service;
      try {
        service = await t.service();
        plan.liveVersion = (await run(t.dir.current())).stdout.trim() || undefined;
      } catch (err) {
        if (!(err instanceof OperationError)) throw err;
        return { host, reachable: false, problem: `host unreachable: ${firstLine(err)}`, notes: [] };
      }
      // Each read on its own: one that fails is said, the others still count.
      const read = async <T>(what: string, fn: () => Promise<T>): Promise<T | undefined> => {
        try {
          return await fn();
        } catch (err) {
          if (!(err instanceof OperationError)) throw err;
          plan.notes.push(`could not read ${what}: ${brief(err)}`);
          return undefined;
        }
      };
      if (plan.liveVersion) plan.liveSha256 = (await read("the live release's sha256", async () => (await run(t.dir.releaseSha(plan.liveVersion!))).stdout.trim())) || undefined;
      if (sha256) plan.ships = sha256 !== plan.liveSha256;
      plan.strategy = await chooseStrategy(spec, input.front, t).catch((err: unknown) => {
        if (!(err instanceof OperationError)) throw err;
        plan.notes.push(`a deploy would fail here: ${firstLine(err)}`);
        return undefined;
      });
      const livePort = Number((await read("the live port", async () => (await run(t.dir.livePort())).stdout.trim())) ?? "") || undefined;
      // (Wrapped: no live .env is an answer, a failed read is not.)
      const env = await read("the live .env", async () => ({ live: parseFingerprints((await run(t.dir.envFingerprints(key.pads))).stdout) }));
      if (env) plan.env = envChanges(env.live, next, key);

      // A blue-green deploy picks its port when it runs; the files are shown with the live one's.
      const blueGreen = plan.strategy === "blue-green";
      const port = blueGreen ? (livePort ?? spec.appPort) : spec.appPort;
      const portNote = blueGreen ? `blue-green: the port is picked at deploy time; shown as ${port}` : undefined;
      const shownVersion = version.value ?? "NEW";
      if (service.unitFile) {
        const live = service.unitFile(shownVersion, livePort ?? spec.appPort, livePort !== undefined);
        const onHost = await read("the unit file", async () => ({ text: parseReadFile((await run(live.read)).stdout) }));
        const unitNote = [portNote, version.value ? undefined : "the version is shown as NEW"].filter(Boolean).join("; ");
        if (onHost) plan.unit = filePlan(live.path, onHost.text, service.unitFile(shownVersion, port, blueGreen).text, unitNote || undefined);
      }
      if (input.site) {
        const site = input.site;
        const onHost = await read("the Caddy site", async () => ({ text: parseReadFile((await run(site.read)).stdout) }));
        if (onHost) plan.site = filePlan(site.path, onHost.text, site.text(port), portNote);
      }
      return plan;
    }),
  );
  if (targets.some((t) => !t.reachable)) notes.push("unreachable hosts are not compared; the rest of the plan stands");
  return { driver: input.driver, ...(spec.stage !== undefined ? { stage: spec.stage } : {}), artifact, version, targets, notes };
}

/** The version deploy would take from git describe (as deploy.ts does), or how it would be chosen. */
async function describedVersion(dir: string, sha256: string | undefined): Promise<DeployPlan["version"]> {
  const v = await gitVersion(dir, sha256 ?? "");
  if (!v) return { source: "not a git checkout: a UTC timestamp at deploy time" };
  // A dirty tree's version carries the artifact's hash, known only once it is built.
  if (!sha256 && v.endsWith("-dirty.")) return { source: `git describe: ${v.slice(0, -1)} plus the built artifact's short hash` };
  return { value: v, source: "git describe" };
}

/** The plan of a strategy that has none to give (docker keeps its own history). */
export function noDeployPlan(spec: Spec, driver: string, why: string): DeployPlan {
  return { driver, ...(spec.stage !== undefined ? { stage: spec.stage } : {}), artifact: {}, version: { source: "" }, targets: [], notes: [why] };
}
