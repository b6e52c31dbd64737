// Pieces every driver's stacks share.
import type { Spec } from "../core/spec.js";
import type { BackendProps } from "../../stacks/backend.js";

/** The backend part of a stack's props: the local backend at cdktf's path, or `state:`'s S3. */
export function backendProps(spec: Spec): BackendProps {
  if (!spec.state) return { projectDir: spec.dir };
  const { bucket, key, region, useLockfile, endpoint, options } = spec.state;
  return { projectDir: spec.dir, s3: { bucket, key, region, useLockfile, ...(endpoint ? { endpoint } : {}), options } };
}

/**
 * Said when a CI run (CI set, as GitHub Actions and most CI services set it) uses the local backend:
 * the state file goes with the runner, so the next run plans and provisions from empty state.
 */
export function localStateInCi(spec: Spec, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const ci = (env.CI ?? "").trim().toLowerCase();
  if (spec.state || ci === "" || ci === "false" || ci === "0") return undefined;
  return (
    `CI is set and the state of ${spec.app} is local (terraform.<stack>.tfstate in ${spec.dir}): it is gone when this run ends, ` +
    "so every plan here shows everything as new and a provision starts from empty state. Keep it in S3: state: in togo.yaml (README: Remote state)"
  );
}
