// The local stack, checked with cdktf's Testing matchers on the synthesized JSON.
import { App, Testing } from "cdktf";
import { LocalStack } from "../../stacks/local.js";

Testing.setupJest();

const props = { projectDir: "/work/p", app: "hello", appDir: "/work/p/.togo/hello", appPort: 3100 };

function synth(extra: Partial<typeof props & { s3: unknown }> = {}): string {
  const app = Testing.app() as App;
  const stack = new LocalStack(app, "hello-local", { ...props, ...extra } as never);
  return Testing.synth(stack);
}

test("only Terraform built-ins: a terraform_data that makes the app dir, no providers", () => {
  const json = synth();
  expect(json).toHaveResourceWithProperties({ tfResourceType: "terraform_data" } as never, {
    input: { app: "hello", app_dir: "/work/p/.togo/hello" },
  });
  const parsed = JSON.parse(json);
  expect(parsed.provider).toBeUndefined();
  const exec = parsed.resource.terraform_data.app_directory.provisioner[0]["local-exec"];
  // The path reaches the shell through the environment, never spliced into the command.
  expect(exec.environment).toEqual({ APP_DIR: "/work/p/.togo/hello" });
  expect(exec.command).not.toContain("/work/p");
});

test("outputs: app_dir, url, app", () => {
  const parsed = JSON.parse(synth());
  expect(Object.keys(parsed.output).sort()).toEqual(["app", "app_dir", "url"]);
  expect(parsed.output.url.value).toBe("http://127.0.0.1:3100");
  expect(parsed.output.app_dir.value).toBe('${terraform_data.app_directory.output["app_dir"]}');
});

test("state: cdktf's local backend path by default, S3 with locking when state: is set", () => {
  expect(JSON.parse(synth()).terraform.backend).toEqual({ local: { path: "/work/p/terraform.hello-local.tfstate" } });
  const s3 = JSON.parse(
    synth({ s3: { bucket: "b", key: "togo/hello.tfstate", region: "eu-west-1", useLockfile: true, endpoint: "http://127.0.0.1:9000", options: { skip_credentials_validation: true } } }),
  ).terraform.backend.s3;
  expect(s3).toMatchObject({
    bucket: "b",
    key: "togo/hello.tfstate",
    region: "eu-west-1",
    use_lockfile: true,
    use_path_style: true,
    endpoints: { s3: "http://127.0.0.1:9000" },
    skip_credentials_validation: true,
  });
});

test("the synthesized stack is valid Terraform JSON", () => {
  const app = Testing.app() as App;
  const stack = new LocalStack(app, "hello-local", props);
  expect(Testing.fullSynth(stack)).toBeValidTerraform();
});
