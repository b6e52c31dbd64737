// The workspace: every path togo keeps in a project (`.togo/`, `cdktf.out/`, state files) and every
// stack name, in one place. The stage (`--stage`) is part of all of them, so two stages of one app
// never share a record, a stack or a state.
import { createHash } from "node:crypto";
import { homedir } from "node:os";
import { isAbsolute, join, relative, resolve, sep } from "node:path";

/** Where cdktf keeps synthesized stacks, relative to the project (cdktf.json's `output`). */
export const OUT_DIR = "cdktf.out";

export interface WorkspaceInput {
  /** The project directory (where togo.yaml and cdktf.json live). */
  dir: string;
  app: string;
  stage?: string;
}

export class Workspace {
  readonly dir: string;
  readonly app: string;
  readonly stage?: string;

  constructor(w: WorkspaceInput) {
    this.dir = w.dir;
    this.app = w.app;
    this.stage = w.stage;
  }

  /** `<app>-<driver>`, or `<app>-<stage>-<driver>` with a stage: a stack's name and folder. */
  stackName(driver: string): string {
    return this.stage ? `${this.app}-${this.stage}-${driver}` : `${this.app}-${driver}`;
  }

  /** The app with its stage: names things on targets and registries (`hello`, `hello-staging`). */
  get qualifiedApp(): string {
    return this.stage ? `${this.app}-${this.stage}` : this.app;
  }

  get togoDir(): string {
    return join(this.dir, ".togo");
  }

  /** Where cdktf writes stacks; CDKTF_OUTDIR wins, as it does for cdktf itself. */
  outDir(env: NodeJS.ProcessEnv = process.env): string {
    return env.CDKTF_OUTDIR ? resolve(env.CDKTF_OUTDIR) : join(this.dir, OUT_DIR);
  }

  stackDir(stack: string): string {
    return join(this.dir, OUT_DIR, "stacks", stack);
  }

  /** cdktf's local backend keeps a stack's state in the project root. */
  localStatePath(stack: string): string {
    return join(this.dir, `terraform.${stack}.tfstate`);
  }

  /** What the last apply of a stack was (lets an unchanged provision skip synth and apply). */
  provisionRecord(stack: string): string {
    return join(this.togoDir, "provision", `${stack}.json`);
  }

  /** A stack's outputs, kept per state lineage+serial. */
  outputsCache(stack: string): string {
    return join(this.togoDir, "outputs", `${stack}.json`);
  }

  /** Held while a togo run works on a stack in this checkout (provision, destroy, diff). */
  stackLock(stack: string): string {
    return join(this.togoDir, "locks", stack);
  }

  /** Facts a provision learnt about a host (its key, systemd, Caddy). */
  hostRecord(stack: string): string {
    return join(this.togoDir, "hosts", `${stack}.json`);
  }

  /**
   * The digests of an artifact's files, so an unchanged file is not read again (one file per
   * artifact path). In the project's .togo/cache, unless the artifact holds .togo (`binary: .`):
   * then in the user's cache dir, so the cache never becomes part of what it describes.
   */
  digestCache(artifact: string, env: NodeJS.ProcessEnv = process.env): string {
    const path = resolve(this.dir, artifact);
    const name = `digests-${createHash("sha256").update(path).digest("hex").slice(0, 16)}.json`;
    const rel = relative(path, this.togoDir);
    if (rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return join(this.togoDir, "cache", name);
    const base = env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : join(homedir(), ".cache");
    return join(base, "togo", name);
  }

  /** An artifact fetched from the artifact store or a build proxy (deploy.artifact: store), by its sha256. */
  downloadedArtifact(sha256: string, name: string): string {
    return join(this.togoDir, "downloads", sha256, name);
  }

  /** What a running `togo dev` reports (its pid, state, last reload), read by `togo dev status`. */
  get devStateFile(): string {
    return join(this.togoDir, "dev", `${this.qualifiedApp}.json`);
  }

  /** terraform's CLI config for a provider mirror. */
  get terraformRc(): string {
    return join(this.togoDir, "terraform.rc");
  }

  /** A driver's own records (e.g. the docker driver's release history). */
  driverDir(driver: string): string {
    return join(this.togoDir, driver, this.qualifiedApp);
  }

  /** The local driver's default app dir. */
  get localAppDir(): string {
    return join(this.togoDir, this.qualifiedApp);
  }

  /** The default app dir on a remote host. */
  get remoteAppDir(): string {
    return `~/apps/${this.qualifiedApp}`;
  }
}

export function workspaceOf(spec: WorkspaceInput): Workspace {
  return new Workspace(spec);
}
