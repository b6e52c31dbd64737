// Pieces every driver's stacks share.
import type { Spec } from "../core/spec.js";
import type { BackendProps } from "../../stacks/backend.js";

/** The backend part of a stack's props: the local backend at cdktf's path, or `state:`'s S3. */
export function backendProps(spec: Spec): BackendProps {
  if (!spec.state) return { projectDir: spec.dir };
  const { bucket, key, region, useLockfile, endpoint, options } = spec.state;
  return { projectDir: spec.dir, s3: { bucket, key, region, useLockfile, ...(endpoint ? { endpoint } : {}), options } };
}
