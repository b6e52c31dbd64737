// The contract: Spec, Result, Status, Deployer, and the Driver/Shipping/Target pieces a driver is
// composed of. Everything else hangs on these.
import type { ConfigProblem } from "./errors.js";

export type Engine = "cdktf" | "terraform";

export interface HealthCheck {
  /** HTTP path probed on the app port; must answer 2xx (redirects are reported, not followed). */
  path: string;
  /** Seconds to wait for the first healthy answer. */
  timeout: number;
  /** Seconds between probes. */
  interval: number;
  /** Seconds a release must stay up, healthy and on its port before it counts (0: the first 2xx counts). */
  settle: number;
}

export interface TerraformSettings {
  engine: Engine;
  /** `terraform` or `tofu` (a name on PATH or a path). */
  binary: string;
  /** Provider filesystem mirror for offline installs. */
  pluginMirror?: string;
}

export interface S3State {
  backend: "s3";
  bucket: string;
  key: string;
  region: string;
  useLockfile: boolean;
  /** S3-compatible store (path-style addressing is used with it). */
  endpoint?: string;
  /** Extra backend attributes passed as they are (e.g. skip_* flags for S3-compatible stores). */
  options: Record<string, unknown>;
}

/** User hooks (togo.yaml `hooks:`): local shell commands run around a deploy or rollback. */
export const HOOK_NAMES = ["pre_build", "pre_deploy", "post_deploy", "on_failure", "post_rollback"] as const;
export type HookName = (typeof HOOK_NAMES)[number];
export type Hooks = Partial<Record<HookName, string>>;

export type Strategy = "auto" | "blue-green" | "restart";

/** `togo dev` (togo.yaml `dev:`). */
export interface DevSettings {
  /** The reloader type: process, sync, docker, or a plugin's. */
  type: string;
  /** Paths/globs relative to `dir` that trigger a reload; empty: the whole project minus `ignore`. */
  watch: string[];
  ignore: string[];
  /** Over deploy.env (and the secrets) in development. */
  env: Record<string, string>;
  /** Where the app answers in development. */
  port: number;
  /** docker: copy changed files into the dev container instead of rebuilding the image. */
  sync: boolean;
}

/** How a deploy gets its artifact: built here (build_cmd + binary) or taken from the artifact store. */
export type ArtifactSource = "build" | "store";

/** togo.yaml `artifacts:`: the artifact store and the build proxy. */
export interface ArtifactSettings {
  /** An absolute directory, s3://bucket/prefix, or a plugin's scheme://…. */
  store: string;
  /** A build proxy (`togo artifacts serve`); deploy and build ask it instead of building here. */
  server?: string;
  /** Absolute path of the file holding the proxy's bearer token. */
  tokenFile?: string;
  /** How `{remote}/{owner}/{repo}` becomes a clone URL. */
  gitUrl: string;
  /** An S3-compatible endpoint for an s3:// store (a plugin's store gets it too). */
  endpoint?: string;
}

/** The URL scheme of an artifact store location (`s3` of s3://…), or undefined for a directory. */
export function storeScheme(location: string): string | undefined {
  return /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(location)?.[1].toLowerCase();
}

export interface Spec {
  // The contract's fields.
  app: string;
  /** Project directory: where togo.yaml and cdktf.json live; cdktf.out/ and state are under it. */
  dir: string;
  buildCmd?: string;
  /** Artifact (file or directory) to ship, relative to `dir`. */
  binary?: string;
  image?: string;
  env: Record<string, string>;
  host?: string;
  user?: string;
  domain?: string;
  region?: string;
  options: Record<string, unknown>;

  // What a user needs beside them.
  provider: string;
  /** A fleet (`deploy.hosts`); `host` is the one-host form, never both. */
  hosts?: string[];
  /** Hosts worked on at once (default: all). */
  parallel?: number;
  /** 0: all hosts in one two-phase batch; N: batches of N hosts. */
  rolling: number;
  /** How a release goes live: blue-green behind Caddy, or a restart in place; auto picks. */
  strategy: Strategy;
  /** Seconds the old release keeps its in-flight requests after a blue-green switch. */
  drain: number;
  /** How the release starts; it must listen on $PORT. */
  run?: string;
  appPort: number;
  releaseCmd?: string;
  healthcheck: HealthCheck;
  versionsToKeep: number;
  /** Absolute for `local`; may start with `~/` on remote hosts (resolved there). */
  appDir: string;
  /** Secret references (`env:NAME`, `op://…`, …), resolved at deploy time, never logged. */
  secrets: Record<string, string>;
  sshPort: number;
  identityFile?: string;
  knownHosts?: string;
  sshConfig?: string;
  terraform: TerraformSettings;
  state?: S3State;
  plugins: string[];
  hooks: Hooks;
  dev: DevSettings;
  /** `deploy.artifact`: build here (default) or ship the store's build of the current commit. */
  artifact: ArtifactSource;
  artifacts: ArtifactSettings;
  /** The stage (`--stage`), when one is chosen; part of every stack name and `.togo` record. */
  stage?: string;
  /** The config file this spec came from (absolute). */
  configFile: string;
}

export interface Result {
  url?: string;
  message: string;
  raw: unknown;
}

export type State = "ready" | "not-ready" | "not-deployed" | "failed";

export interface Status {
  state: State;
  url?: string;
  version?: string;
  healthy: boolean;
  outputs: Record<string, unknown>;
  message: string;
  /** Per host, when there is a fleet. */
  hosts?: HostStatus[];
}

export interface Deployer {
  provision(spec: Spec): Promise<Result>;
  deploy(spec: Spec): Promise<Result>;
  destroy(spec: Spec): Promise<void>;
  status(spec: Spec): Promise<Status>;
}

export interface Release {
  version: string;
  current: boolean;
  /** ISO time the release folder was made, when known. */
  createdAt?: string;
  /** The host it is on, when there is a fleet. */
  host?: string;
}

export interface LogOptions {
  follow: boolean;
  lines: number;
}

/**
 * A stack a driver provisions. `props` is the stack's whole input (plain JSON): the stack is a pure
 * function of it, which is what lets an unchanged provision skip synth and apply.
 */
export interface StackSource {
  /** Stack name; also its folder under cdktf.out/stacks/. */
  name: string;
  props: Record<string, unknown>;
  /** Adds the stack to a cdktf App (loaded lazily: provider classes are heavy). */
  define(app: object): Promise<void>;
  /**
   * What terraform needs in its environment for this stack and nowhere else: TF_VAR_* of its
   * sensitive variables, kept out of the JSON. Asked for only when terraform runs (plan, apply,
   * destroy), so a plan gets the same values an apply does; never written or printed.
   */
  env?: () => Promise<Record<string, string>>;
}

/** What the CLI passes to a driver besides the Spec: flags of this run and where to report. */
export interface RunOptions {
  version?: string;
  /** `--host H`: work on one host of a fleet. */
  host?: string;
  force: boolean;
  yes: boolean;
  lockWait: number;
  json: boolean;
}

/**
 * Where a release goes: this machine (no `host`) or a host over SSH. Drivers make targets from the
 * Spec or from their stack's outputs; the shipping strategy turns them into connections.
 */
export interface Target {
  host?: string;
  user?: string;
  port?: number;
  identityFile?: string;
  knownHosts?: string;
  sshConfig?: string;
  /** As on the target: absolute, or `~/…` on a remote host. */
  appDir: string;
  /** Where users reach the app. */
  url: string;
}

/** One host's line in the status of a fleet. */
export interface HostStatus {
  host: string;
  state: State;
  version: string | null;
  healthy: boolean;
  message: string;
}

/** What serves on a target right now (the live half of `status`). */
export interface LiveStatus {
  state: State;
  version?: string;
  healthy: boolean;
  message: string;
  /** Per host, when there is a fleet. */
  hosts?: HostStatus[];
}

/** One env key whose value a deploy would change: names and kinds only, never a value. */
export interface EnvKeyChange {
  key: string;
  change: "added" | "removed" | "changed" | "unknown";
  /** From deploy.secrets (else deploy.env). */
  secret?: boolean;
  /** Why `unknown`: the secret could not be resolved here. */
  note?: string;
}

/** A generated file on the host (systemd unit, Caddy site) against what a deploy would write. */
export interface FilePlan {
  /** Where it lives on the host. */
  path: string;
  /** Unified diff of the live file against the new text; "" when they are the same. */
  diff: string;
  /** Said beside the diff (a blue-green port picked at deploy time, …). */
  note?: string;
}

/** What a deploy would do on one target, read from it (reads only). */
export interface TargetPlan {
  host: string;
  reachable: boolean;
  /** Why it could not be read (`host unreachable: …`), when not reachable. */
  problem?: string;
  liveVersion?: string;
  liveSha256?: string;
  /** The artifact differs from the live release's (undefined: unknown, e.g. not built here). */
  ships?: boolean;
  strategy?: "blue-green" | "restart";
  env?: { changes: EnvKeyChange[]; unchanged: number };
  unit?: FilePlan;
  site?: FilePlan;
  notes: string[];
}

/** The deploy plan of one stage: what `togo deploy` would ship now, without shipping anything. */
export interface DeployPlan {
  driver: string;
  stage?: string;
  /** The artifact as it is in the project now (diff never runs build_cmd). */
  artifact: { path?: string; sha256?: string; note?: string };
  /** The version a deploy would get, or how it would be chosen. */
  version: { value?: string; source: string };
  targets: TargetPlan[];
  notes: string[];
}

/** How a driver gets a release onto its targets and back (the versioned-release strategy, …). */
export interface Shipping {
  deploy(spec: Spec, targets: Target[]): Promise<Result>;
  rollback(spec: Spec, targets: Target[], version?: string): Promise<Result>;
  releases(spec: Spec, targets: Target[]): Promise<Release[]>;
  live(spec: Spec, targets: Target[]): Promise<LiveStatus>;
  logs(spec: Spec, targets: Target[], opts: LogOptions): Promise<void>;
  exec(spec: Spec, targets: Target[], command: string[]): Promise<number>;
  releaseLock(spec: Spec, targets: Target[]): Promise<Result>;
  /** Stops the app and removes what shipping put on the target (service, site, app dir). */
  remove(spec: Spec, targets: Target[]): Promise<void>;
  /** What a deploy would do on each target, from reads only (an unreachable host is said, not thrown). */
  plan?(spec: Spec, targets: Target[]): Promise<DeployPlan>;
}

/** A Deployer plus the optional operations the CLI offers. Missing ones are "unsupported". */
export interface Driver extends Deployer {
  readonly name: string;
  /** Driver-specific checks of the Spec, run with the config validation, before anything is touched. */
  validate?(spec: Spec): ConfigProblem[];
  stacks(spec: Spec): StackSource[];
  rollback?(spec: Spec, version?: string): Promise<Result>;
  releases?(spec: Spec): Promise<Release[]>;
  logs?(spec: Spec, opts: LogOptions): Promise<void>;
  exec?(spec: Spec, command: string[]): Promise<number>;
  releaseLock?(spec: Spec): Promise<Result>;
  /** `togo diff`'s deploy plan; a driver without it gets "not available" in the plan. */
  deployPlan?(spec: Spec): Promise<DeployPlan>;
}
