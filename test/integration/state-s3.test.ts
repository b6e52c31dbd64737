// Remote state for real: the local driver's stack applied with `state:` (S3 backend, use_lockfile)
// against s3rver on loopback, under the terraform engine. init, apply and output all go through S3
// (the project keeps no state file), and Terraform's S3-native lock is shown to hold: a second apply
// while the first holds the lock fails and names the holder. s3rver ignores conditional writes, so
// the harness front (test/helpers/s3.ts) answers 412 to `If-None-Match: *` on an existing key.
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupTempDirs, helloProject, tempDir, togo } from "../helpers/index.js";
import { startS3, type S3Front } from "../helpers/s3.js";

const KEY = "togo/hello.tfstate";
let s3: S3Front;

// Credentials come from the environment, as they should in CI: they never enter togo.yaml or the stack.
const ENV = { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER", AWS_EC2_METADATA_DISABLED: "true" };

function yaml(port: number, endpoint: string): string {
  return `app: hello
deploy:
  provider: local
  binary: server.js
  run: node server.js
  app_port: ${port}
terraform:
  engine: terraform
state:
  backend: s3
  bucket: togo-state
  key: ${KEY}
  region: eu-west-1
  use_lockfile: true
  endpoint: ${endpoint}
  options:
    skip_credentials_validation: true
    skip_requesting_account_id: true
    skip_metadata_api_check: true
    skip_region_validation: true
`;
}

interface State {
  serial: number;
  resources: { type: string; name: string }[];
  outputs: Record<string, { value: unknown }>;
}

beforeAll(async () => {
  s3 = await startS3(tempDir("togo-s3-"));
});

afterAll(async () => {
  await s3?.close();
  cleanupTempDirs();
});

describe("the S3 front honours If-None-Match: *", () => {
  test("the first conditional PUT of a key wins, the next gets 412 and the object keeps the winner's bytes", async () => {
    const url = `${s3.endpoint}/togo-state/harness/probe`;
    const put = (body: string) => fetch(url, { method: "PUT", body, headers: { "If-None-Match": "*" } });
    const [a, b] = await Promise.all([put("first"), put("second")]);
    expect([a.status, b.status].sort()).toEqual([200, 412]);
    expect(await s3.get("harness/probe")).toBe(a.status === 200 ? "first" : "second");
    expect((await fetch(url, { method: "PUT", body: "plain" })).status).toBe(200); // unconditional writes still go through
  });
});

describe("remote state in S3 (s3rver on loopback)", () => {
  let dir: string;

  test("provision: init, apply and output go through the bucket; no local state", async () => {
    dir = helloProject(yaml(3101, s3.endpoint));
    const r = await togo(["provision", "--yes"], { cwd: dir, env: ENV });
    expect(r.stderr).not.toContain("togo:");
    expect(r.exitCode).toBe(0);

    const state = JSON.parse((await s3.get(KEY))!) as State;
    expect(state.resources.map((x) => `${x.type}.${x.name}`)).toEqual(["terraform_data.app_directory"]);
    expect(state.outputs.url.value).toBe("http://127.0.0.1:3101");
    expect(existsSync(join(dir, "terraform.hello-local.tfstate"))).toBe(false);
    // The S3 backend is in the synthesized stack with S3-native locking.
    const stack = JSON.parse(readFileSync(join(dir, "cdktf.out/stacks/hello-local/cdk.tf.json"), "utf8"));
    expect(stack.terraform.backend.s3).toMatchObject({ bucket: "togo-state", key: KEY, use_lockfile: true, use_path_style: true });
    expect(JSON.stringify(stack)).not.toContain("S3RVER");
    // The lock was taken with a conditional write and removed afterwards.
    expect(s3.log).toContain(`PUT /togo-state/${KEY}.tflock`);
    expect(s3.log).toContain(`DELETE /togo-state/${KEY}.tflock`);
    expect(await s3.get(`${KEY}.tflock`)).toBeUndefined();
  });

  test("outputs are read back from the bucket, even in a fresh checkout of the stack folder", async () => {
    // Without .terraform/ the runner must init against S3 again before it can read outputs.
    rmSync(join(dir, "cdktf.out/stacks/hello-local/.terraform"), { recursive: true, force: true });
    const r = await togo(["status", "--json"], { cwd: dir, env: ENV });
    expect({ exit: r.exitCode, stderr: r.stderr }).toMatchObject({ exit: 3 }); // provisioned, nothing deployed: not ready
    const status = JSON.parse(String(r.stdout)) as { outputs: Record<string, unknown> };
    expect(status.outputs).toMatchObject({ app: "hello", url: "http://127.0.0.1:3101", app_dir: join(dir, ".togo", "hello") });
  });

  test("a second apply while the first holds the lock fails and names the holder; the first completes", async () => {
    writeFileSync(join(dir, "togo.yaml"), yaml(3102, s3.endpoint));
    // Terraform reads the lock object back just before it deletes it: holding that request keeps
    // the first apply inside its lock for as long as the test needs, with no sleeping.
    const held = s3.hold((method, path) => method === "GET" && path === `/togo-state/${KEY}.tflock`);
    const first = togo(["provision", "--yes"], { cwd: dir, env: ENV });
    const gate = await held;
    try {
      const lock = JSON.parse((await s3.get(`${KEY}.tflock`))!) as { ID: string; Who: string; Operation: string };
      expect(lock.Operation).toBe("OperationTypeApply");

      // Another checkout of the same project (another CI job): only the S3 lock stands between them
      // (within one checkout, togo's own stack lock refuses the second run first).
      const other = tempDir("togo-s3-other-");
      cpSync(join(dir, "server.js"), join(other, "server.js"));
      writeFileSync(join(other, "togo.yaml"), yaml(3102, s3.endpoint));
      const second = await togo(["provision", "--yes", "--force"], { cwd: other, env: ENV });
      expect(second.exitCode).toBe(1);
      expect(second.stderr).toContain(`the state is locked by ${lock.Who}`);
      expect(second.stderr).toContain(`ID ${lock.ID}`);
      expect(second.stderr).toContain(`force-unlock ${lock.ID}`);
      expect(second.stderr).toContain("(apply");
      // It lost the conditional write of the lock object; the holder's lock is untouched.
      expect(s3.log).toContain(`412 PUT /togo-state/${KEY}.tflock`);
      expect(JSON.parse((await s3.get(`${KEY}.tflock`))!)).toEqual(lock);
    } finally {
      gate.release();
    }
    const r = await first;
    expect(r.stderr).not.toContain("togo:");
    expect(r.exitCode).toBe(0);
    const state = JSON.parse((await s3.get(KEY))!) as State;
    expect(state.outputs.url.value).toBe("http://127.0.0.1:3102");
    expect(await s3.get(`${KEY}.tflock`)).toBeUndefined();

    // And with the lock gone, the next apply goes through.
    const again = await togo(["provision", "--yes", "--force"], { cwd: dir, env: ENV });
    expect(again.stderr).not.toContain("togo:");
    expect(again.exitCode).toBe(0);
  });
});
