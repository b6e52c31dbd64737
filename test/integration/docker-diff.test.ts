// `togo diff` of a docker stack with secrets: a plan must get the secret variables an apply gets,
// and show none of their values. The kreuzwerker/docker provider is not in the mirror, so the docker
// stack itself cannot be planned here: a stand-in stack declares the very variables the docker
// stack declares (secret_<NAME>, sensitive, required) on Terraform's built-in terraform_data, and
// takes the docker driver's own stack environment. The plan is terraform's, for real and offline.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { DataResource, TerraformOutput, TerraformStack, TerraformVariable } from "cdktf";
import type { Construct } from "constructs";
import { DockerDriver, dockerStackProps } from "../../drivers/docker/index.js";
import { historyFile, writeHistory } from "../../drivers/docker/image/history.js";
import { parseConfig } from "../../src/config/load.js";
import { createReporter } from "../../src/core/log.js";
import type { Spec, StackSource } from "../../src/core/spec.js";
import { workspaceOf } from "../../src/core/workspace.js";
import { backendProps } from "../../src/infra/backend.js";
import { renderPlanMarkdown, renderPlanText } from "../../src/infra/plan-report.js";
import { plan, PLAN_FILE, PLAN_JSON_FILE, stackDir } from "../../src/infra/runner.js";
import { applyBackend } from "../../stacks/backend.js";
import { secretVariable } from "../../stacks/docker.js";
import { cleanupTempDirs, tempDir, writeFiles } from "../helpers/index.js";

afterAll(cleanupTempDirs);

const SECRET = "pw-71c3-never-in-a-plan";
const DIGEST = `sha256:${"ab".repeat(32)}`;

function project(): Spec {
  const dir = tempDir("togo-docker-diff-");
  const mirror = tempDir("togo-empty-mirror-"); // terraform_data needs no provider: nothing to install
  const yaml = [
    "app: hello",
    "deploy:",
    "  provider: docker",
    "  image: registry.example.com/team/hello",
    "  secrets: { API_TOKEN: 'file:.secrets#API_TOKEN' }",
    "  options: { source: registry }",
    "terraform:",
    "  engine: terraform",
    `  plugin_mirror: ${mirror}`,
    "",
  ].join("\n");
  writeFiles(dir, { "togo.yaml": yaml, ".secrets": `API_TOKEN=${SECRET}\n` });
  return parseConfig(yaml, join(dir, "togo.yaml"), {});
}

/** Records `1.0.0` as applied: from then on the docker stack declares the secret variables. */
function applied(spec: Spec): void {
  const release = { version: "1.0.0", digest: DIGEST, repository: "registry.example.com/team/hello", pushedAt: "t", appliedAt: "t" };
  writeHistory(historyFile(workspaceOf(spec).driverDir("docker")), { current: "1.0.0", releases: [release] });
}

/** The docker stack's secret variables, as it declares them, used by a terraform_data resource. */
function standIn(spec: Spec, docker: StackSource): StackSource {
  const name = "hello-standin";
  const secretNames = dockerStackProps(spec, { version: "1.0.0", digest: DIGEST, repository: "registry.example.com/team/hello" }).secretNames;
  return {
    name,
    props: {},
    ...(docker.env ? { env: docker.env } : {}),
    define: async (app) => {
      const stack = new TerraformStack(app as Construct, name);
      applyBackend(stack, name, backendProps(spec));
      const env = secretNames.map((n) => {
        const v = new TerraformVariable(stack, secretVariable(n), { type: "string", sensitive: true, nullable: false });
        return `${n}=${v.stringValue}`;
      });
      new DataResource(stack, "container", { input: { env: ["PORT=3000", ...env] } });
      new TerraformOutput(stack, "app", { value: "hello" });
    },
  };
}

const driver = () => new DockerDriver({ log: createReporter({ quiet: true }), opts: { force: false, yes: false, lockWait: 0, json: false } });

describe("docker: a plan gets the secret variables an apply gets, and shows none of them", () => {
  test("without the stack's environment terraform refuses: the variables are required", async () => {
    const spec = project();
    applied(spec);
    const { env: _dropped, ...bare } = standIn(spec, driver().stacks(spec)[0]);
    await expect(plan(spec, [bare], createReporter({ quiet: true }))).rejects.toThrow(/No value for required variable[\s\S]*secret_API_TOKEN/);
  });

  test("with the docker stack's environment the plan runs; the value is in no output, text, JSON or Markdown", async () => {
    const spec = project();
    applied(spec);
    const [docker] = driver().stacks(spec);
    const [p] = await plan(spec, [standIn(spec, docker)], createReporter({ quiet: true }));
    // What the docker stack declares is what its environment fills, and nothing else.
    expect(Object.keys(await docker.env!())).toEqual([`TF_VAR_${secretVariable("API_TOKEN")}`]);
    expect(p.json.resource_changes!.map((c) => [c.address, c.change.actions])).toEqual([["terraform_data.container", ["create"]]]);
    expect(p.text).toContain("(sensitive value)");
    const dir = stackDir(spec, p.stack);
    // terraform got the value: its own saved plan holds it ...
    const raw = await execa("terraform", [`-chdir=${dir}`, "show", "-json", PLAN_FILE], { env: { CHECKPOINT_DISABLE: "1", TF_CLI_CONFIG_FILE: workspaceOf(spec).terraformRc } });
    expect(raw.stdout).toContain(SECRET);
    // ... and nothing togo prints or keeps in JSON does.
    const printed = [p.text, JSON.stringify(p.json), readFileSync(join(dir, PLAN_JSON_FILE), "utf8"), renderPlanText([p]), renderPlanMarkdown("hello", [p])];
    for (const text of printed) expect(text).not.toContain(SECRET);
    const after = p.json.resource_changes![0].change as unknown as { after: { input: { env: string[] } } };
    expect(after.after.input.env).toEqual(["PORT=3000", "(sensitive value)"]);
    expect((p.json as unknown as { variables: Record<string, { value: string }> }).variables.secret_API_TOKEN.value).toBe("(sensitive value)");
  });

  test("before a release is applied the stack has no container and no variables: nothing is resolved", () => {
    const spec = project();
    expect(driver().stacks(spec)[0].env).toBeUndefined();
  });
});
