// The state backend of every stack: cdktf's local backend (the default, at the same path cdktf
// itself would choose) or S3 when togo.yaml has `state:`.
import { join } from "node:path";
import { LocalBackend, S3Backend, type TerraformStack } from "cdktf";
import type { S3State } from "../src/core/spec.js";

/** Plain-JSON backend settings carried in every stack's props. */
export interface BackendProps {
  /** Project root: where cdktf puts `terraform.<stack>.tfstate`. */
  projectDir: string;
  s3?: Omit<S3State, "backend">;
}

export function applyBackend(stack: TerraformStack, name: string, props: BackendProps): void {
  if (!props.s3) {
    new LocalBackend(stack, { path: join(props.projectDir, `terraform.${name}.tfstate`) });
    return;
  }
  const { bucket, key, region, useLockfile, endpoint, options } = props.s3;
  new S3Backend(stack, {
    bucket,
    key,
    region,
    ...(endpoint ? { endpoints: { s3: endpoint }, usePathStyle: true } : {}),
  });
  // cdktf 0.21 predates S3-native locking (use_lockfile, Terraform ≥ 1.10) and knows no extra keys:
  // both go in as raw attributes, exactly as written.
  stack.addOverride("terraform.backend.s3.use_lockfile", useLockfile);
  for (const [k, v] of Object.entries(options)) stack.addOverride(`terraform.backend.s3.${k}`, v);
}
