// The github-script step that posts `togo diff --markdown` (togo init's workflow and the aws example's),
// run against a fake GitHub API: one comment, or numbered ones, updated in place; parts a shorter
// plan no longer needs deleted; other apps' and people's comments left alone.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "@jest/globals";
import { parse } from "yaml";
import { renderWorkflow } from "../../src/config/scaffold.js";
import { renderPlanComments, renderPlanMarkdown } from "../../src/infra/plan-report.js";
import type { PlanResult } from "../../src/infra/runner.js";
import { ROOT } from "../helpers/index.js";

interface Comment {
  id: number;
  body: string;
  user: { type: string };
}

/** Runs the step's script as actions/github-script would (require, github, context), on `comments`. */
async function post(script: string, markdown: string, comments: Comment[]): Promise<string[]> {
  const calls: string[] = [];
  let next = Math.max(0, ...comments.map((c) => c.id)) + 1;
  const github = {
    paginate: async (fn: (a: unknown) => Promise<Comment[]>, args: unknown) => fn(args),
    rest: {
      issues: {
        listComments: async ({ issue_number }: { issue_number: number }) => {
          expect(issue_number).toBe(7);
          return comments.map((c) => ({ ...c }));
        },
        updateComment: async ({ comment_id, body }: { comment_id: number; body: string }) => {
          calls.push(`update ${comment_id}`);
          comments.find((c) => c.id === comment_id)!.body = body;
        },
        createComment: async ({ body }: { body: string }) => {
          calls.push(`create ${next}`);
          comments.push({ id: next++, body, user: { type: "Bot" } });
        },
        deleteComment: async ({ comment_id }: { comment_id: number }) => {
          calls.push(`delete ${comment_id}`);
          comments.splice(
            comments.findIndex((c) => c.id === comment_id),
            1,
          );
        },
      },
    },
  };
  const context = { repo: { owner: "o", repo: "r" }, issue: { number: 7 } };
  const req = (m: string) => {
    expect(m).toBe("fs");
    return { readFileSync: (f: string) => (expect(f).toBe("togo-diff.md"), markdown) };
  };
  const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as new (...a: string[]) => (...x: unknown[]) => Promise<void>;
  await new AsyncFunction("require", "github", "context", script)(req, github, context);
  return calls;
}

const commentStep = (workflow: string) => {
  const w = parse(workflow) as { jobs: Record<string, { steps: { uses?: string; with?: { script?: string } }[] }> };
  const step = Object.values(w.jobs)
    .flatMap((j) => j.steps)
    .find((s) => s.uses?.startsWith("actions/github-script@"));
  return step!.with!.script!;
};

const plan = (lines: number): PlanResult => ({
  stack: "hello-local",
  text: Array.from({ length: lines }, (_, i) => `# terraform_data.r${i} will be created`).join("\n"),
  json: { resource_changes: [] },
});

describe.each([
  ["togo init's workflow", () => renderWorkflow("hello")],
  ["the aws example's workflow", () => readFileSync(join(ROOT, "examples/aws/.github/workflows/togo-diff.yml"), "utf8")],
])("%s posts the PR comment", (_name, workflow) => {
  test("numbered comments are added and updated in place, stale ones deleted, other comments untouched", async () => {
    const script = commentStep(workflow());
    const human = { id: 1, body: "<!-- togo-diff: hello -->\nlooks good (a person quoting the marker)", user: { type: "User" } };
    const staging = { id: 2, body: "<!-- togo-diff: hello-staging -->\nits own plan", user: { type: "Bot" } };
    const comments: Comment[] = [human, staging, { id: 3, body: "<!-- togo-diff: hello -->\nthe old plan", user: { type: "Bot" } }];

    // Longer than one comment (a small limit stands in for GitHub's): 3 parts.
    const three = renderPlanComments("hello", [plan(200)], [], 3000);
    expect(three).toHaveLength(3);
    expect(await post(script, three.join(""), comments)).toEqual(["update 3", "create 4", "create 5"]);
    const ours = () => comments.filter((c) => c.user.type === "Bot" && c.id > 2).map((c) => c.body);
    // Each comment is exactly its part (the split drops only the newline between parts).
    expect(ours()).toEqual(three.map((c, i) => (i < 2 ? c.replace(/\n$/, "") : c)));
    expect(comments.slice(0, 2)).toEqual([human, staging]);

    // Shorter again: one comment with the plain marker; the parts it no longer needs go.
    const one = renderPlanMarkdown("hello", [plan(3)]);
    expect(await post(script, one, comments)).toEqual(["update 3", "delete 4", "delete 5"]);
    expect(ours()).toEqual([one]);
    expect(comments.slice(0, 2)).toEqual([human, staging]);

    // The same plan again: one update, nothing added.
    expect(await post(script, one, comments)).toEqual(["update 3"]);
  });
});
