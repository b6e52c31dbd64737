// `togo diff` on real plans of the local driver's stack (Terraform built-ins only, so each plan is
// cheap): a first plan, no changes after an apply, an update after a config change; as text, JSON
// and the Markdown a PR comment gets. The aws stack's realistic plan is in aws-plan.test.ts.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupTempDirs, helloProject, togo } from "../helpers/index.js";
import { COMMENT_LIMIT, renderPlanComments, renderPlanMarkdown } from "../../src/infra/plan-report.js";
import type { PlanJson } from "../../src/infra/runner.js";

afterAll(cleanupTempDirs);

const yaml = (appDir: string) => `app: hello
deploy:
  provider: local
  binary: server.js
  run: node server.js
  app_dir: ${appDir}
terraform:
  engine: terraform
`;

interface JsonDiff {
  stack: string;
  counts: { add: number; change: number; replace: number; destroy: number };
  changes: string[];
  plan: PlanJson;
}

describe("togo diff on the local stack", () => {
  let dir: string;
  let firstMarkdown: string;

  test("a first plan as a PR comment: marker, summary, table, changes, terraform's plan folded", async () => {
    dir = helloProject(yaml(".togo/one"));
    const r = await togo(["diff", "--markdown"], { cwd: dir });
    expect(r.stderr).not.toContain("togo:");
    expect(r.exitCode).toBe(0);
    const md = String(r.stdout);
    firstMarkdown = md;
    expect(md.startsWith("<!-- togo-diff: hello -->\n### togo diff: `hello`\n")).toBe(true);
    expect(md).toContain("**Plan:** 1 to add, 0 to change, 0 to replace, 0 to destroy.");
    expect(md).toContain("| `hello-local` | 1 | 0 | 0 | 0 |");
    expect(md).toContain("```diff\n+ terraform_data.app_directory\n+ output.app\n+ output.app_dir\n+ output.url\n```");
    expect(md).toMatch(/<details><summary>Full plan<\/summary>\n\n```\n[\s\S]*# terraform_data.app_directory will be created[\s\S]*Plan: 1 to add, 0 to change, 0 to destroy\.[\s\S]*\n```\n\n<\/details>\n\n#### Deploy plan \(local\)\n/);
    // The deploy plan of an app never deployed: every key would be added, the artifact would ship.
    expect(md).toContain("| `local` | none | yes (nothing deployed yet) |");
    // Nothing about the saved plan file: it means nothing in a PR.
    expect(md).not.toContain("Saved the plan");
    expect(md).not.toContain("terraform apply");
    // The saved plan and its JSON stay beside the stack (CI can keep them as artifacts).
    const saved = JSON.parse(readFileSync(join(dir, "cdktf.out/stacks/hello-local/togo.tfplan.json"), "utf8")) as PlanJson;
    expect(saved.resource_changes?.map((c) => [c.address, c.type, c.change.actions])).toEqual([["terraform_data.app_directory", "terraform_data", ["create"]]]);
    // diff plans; it never applies.
    expect(existsSync(join(dir, ".togo/one"))).toBe(false);
    expect(existsSync(join(dir, "terraform.hello-local.tfstate"))).toBe(false);
  });

  test("after provision: no changes", async () => {
    const p = await togo(["provision", "--yes"], { cwd: dir });
    expect({ exit: p.exitCode, stderr: p.stderr }).toMatchObject({ exit: 0 });
    const r = await togo(["diff", "--markdown"], { cwd: dir });
    expect({ exit: r.exitCode, stderr: r.stderr }).toMatchObject({ exit: 0 });
    expect(r.stdout).toContain("**No changes.** The infrastructure matches the configuration.");
    expect(r.stdout).toContain("| `hello-local` | 0 | 0 | 0 | 0 |");
    expect(r.stdout).toContain("#### `hello-local`\n\nNo changes.\n");
    expect(r.stdout).toContain("No changes. Your infrastructure matches the configuration.");
  });

  test("a changed app_dir: the change in JSON, text and Markdown", async () => {
    writeFileSync(join(dir, "togo.yaml"), yaml(".togo/two"));
    const json = await togo(["diff", "--json"], { cwd: dir });
    expect({ exit: json.exitCode, stderr: json.stderr }).toMatchObject({ exit: 0 });
    const [d] = JSON.parse(String(json.stdout)) as JsonDiff[];
    expect(d.stack).toBe("hello-local");
    // terraform_data takes a new input in place (only triggers_replace would replace it).
    expect(d.plan.resource_changes!.map((c) => [c.address, c.change.actions])).toEqual([["terraform_data.app_directory", ["update"]]]);
    expect(d.counts).toEqual({ add: 0, change: 1, replace: 0, destroy: 0 });
    expect(d.changes).toEqual(["~ terraform_data.app_directory"]);

    const text = await togo(["diff"], { cwd: dir });
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toContain("Stack hello-local: 0 to add, 1 to change, 0 to replace, 0 to destroy");
    expect(text.stdout).toContain(".togo/two");

    const md = await togo(["diff", "--markdown"], { cwd: dir });
    expect(md.stdout).toContain("**Plan:** 0 to add, 1 to change, 0 to replace, 0 to destroy.");
    expect(md.stdout).toContain("| `hello-local` | 0 | 1 | 0 | 0 |");
    expect(md.stdout).toContain("```diff\n~ terraform_data.app_directory\n~ output.app_dir\n```");
  });

  test("a real plan too long for a GitHub comment becomes numbered comments, none cut", () => {
    const text = /<summary>Full plan<\/summary>\n\n```\n([\s\S]*?)\n```\n\n<\/details>/.exec(firstMarkdown)![1];
    const json: PlanJson = { resource_changes: [{ address: "terraform_data.app_directory", type: "terraform_data", name: "app_directory", change: { actions: ["create"] } }] };
    // The real plan, then enough of its own lines again to need three comments.
    const lines = text.split("\n");
    const huge = Array.from({ length: Math.ceil((COMMENT_LIMIT * 2.5) / text.length) }, () => lines.join("\n")).join("\n");
    const comments = renderPlanComments("hello", [{ stack: "hello-local", text: huge, json }]);
    expect(comments.length).toBe(3);
    comments.forEach((c, i) => {
      expect(c.length).toBeLessThanOrEqual(COMMENT_LIMIT);
      expect(c.startsWith(`<!-- togo-diff: hello (${i + 1}/3) -->\n`)).toBe(true);
    });
    expect(comments[0]).toContain("**Plan:** 1 to add");
    expect(comments.join("")).not.toContain("truncated");
    const back = comments.map((c) => [...c.matchAll(/<summary>Full plan[^<]*<\/summary>\n\n```\n([\s\S]*?)\n```\n/g)].map((m) => m[1]).join("\n")).join("\n");
    expect(back).toBe(huge.trim());
  });

  test("the real plan of 100 stages is longer than a comment: togo diff --all-stages --markdown prints numbered comments, every stage whole", async () => {
    const stages = Array.from({ length: 100 }, (_, i) => `  s${i}: { deploy: { app_dir: .togo/s${i} } }`).join("\n");
    const many = helloProject(`${yaml(".togo/base")}stages:\n${stages}\n`);
    const r = await togo(["diff", "--all-stages", "--markdown"], { cwd: many, timeout: 900_000 });
    expect({ exit: r.exitCode, stderr: r.exitCode === 0 ? "" : r.stderr }).toEqual({ exit: 0, stderr: "" });
    const comments = String(r.stdout).split(/\n(?=<!-- togo-diff: hello \(\d+\/\d+\) -->\n)/);
    expect(comments.length).toBeGreaterThanOrEqual(2);
    comments.forEach((c, i) => {
      expect(c.length).toBeLessThanOrEqual(COMMENT_LIMIT);
      expect(c.startsWith(`<!-- togo-diff: hello (${i + 1}/${comments.length}) -->\n`)).toBe(true);
    });
    const md = comments.join("\n");
    expect(md).not.toContain("truncated");
    expect(comments[0]).toContain("**Plan:** 101 to add, 0 to change, 0 to replace, 0 to destroy.");
    // Every stage's stack with its whole plan, and every stage's deploy plan.
    for (const stack of ["hello-local", ...Array.from({ length: 100 }, (_, i) => `hello-s${i}-local`)]) {
      expect(md).toContain(`| \`${stack}\` | 1 | 0 | 0 | 0 |`);
    }
    expect(md.match(/# terraform_data\.app_directory will be created/g)).toHaveLength(101);
    expect(md.match(/Plan: 1 to add, 0 to change, 0 to destroy\./g)).toHaveLength(101);
    expect(md.match(/#### Deploy plan: (stage `s\d+`|without a stage) \(local\)/g)).toHaveLength(101);
  }, 900_000);

  test("a plan holding ``` cannot break out of its code block", () => {
    const json: PlanJson = { resource_changes: [] };
    const md = renderPlanMarkdown("hello", [{ stack: "s", text: 'value = "```\n# injected"', json }]);
    expect(md.match(/^```$/gm)?.length).toBe(2);
  });
});
