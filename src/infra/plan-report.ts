// Plans for people: plain text for a terminal, Markdown for a pull-request comment (summary counts,
// then the changes, then terraform's own plan in a collapsible block). Counts and change lists come
// from `terraform show -json`, never from parsing terraform's text.
import type { PlanJson, PlanResult } from "./runner.js";

export interface PlanCounts {
  add: number;
  change: number;
  destroy: number;
  replace: number;
}

type ResourceChange = NonNullable<PlanJson["resource_changes"]>[number];

/** The one word for a resource change's action list (terraform's own plan vocabulary). */
export function actionOf(actions: string[]): "create" | "update" | "delete" | "replace" | "read" | "no-op" | string {
  if (actions.includes("create") && actions.includes("delete")) return "replace";
  return actions[0] ?? "no-op";
}

/** Managed resources only: data sources are read, not changed. */
const managed = (rc: ResourceChange) => rc.mode !== "data";

export function countChanges(plan: PlanJson): PlanCounts {
  const c: PlanCounts = { add: 0, change: 0, destroy: 0, replace: 0 };
  for (const rc of (plan.resource_changes ?? []).filter(managed)) {
    const kind = actionOf(rc.change.actions);
    if (kind === "replace") c.replace++;
    else if (kind === "create") c.add++;
    else if (kind === "update") c.change++;
    else if (kind === "delete") c.destroy++;
  }
  return c;
}

export function hasChanges(plan: PlanJson): boolean {
  const c = countChanges(plan);
  const outputs = Object.values(plan.output_changes ?? {}).some((o) => actionOf(o.actions) !== "no-op");
  return c.add + c.change + c.destroy + c.replace > 0 || outputs;
}

const SYMBOL: Record<string, string> = { create: "+", update: "~", delete: "-", replace: "-/+", read: "<=" };

/** One line per resource that changes: `+ aws_instance.server`, sorted as terraform sorts them. */
export function changeLines(plan: PlanJson): string[] {
  return (plan.resource_changes ?? [])
    .filter((rc) => managed(rc) && actionOf(rc.change.actions) !== "no-op")
    .map((rc) => {
      const kind = actionOf(rc.change.actions);
      return `${SYMBOL[kind] ?? kind} ${rc.address}`;
    });
}

export function summary(c: PlanCounts): string {
  return `${c.add} to add, ${c.change} to change, ${c.replace} to replace, ${c.destroy} to destroy`;
}

export function renderPlanText(plans: PlanResult[]): string {
  return plans.map((p) => `Stack ${p.stack}: ${summary(countChanges(p.json))}\n\n${p.text.trim()}\n`).join("\n");
}

/** GitHub refuses comments over 65,536 characters; the full plans share what is left after the summary. */
export const COMMENT_LIMIT = 65_536;

/** A marker a workflow can find to update its previous comment instead of adding another. */
export function commentMarker(app: string): string {
  return `<!-- togo-diff: ${app} -->`;
}

function fence(text: string): string {
  // A plan line holding ``` would close the block early; a zero-width space keeps it literal.
  return ["```", text.replace(/```/g, "`\u200b``"), "```"].join("\n");
}

function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  const note = `\n… (truncated: ${text.length - max} more characters; run togo diff locally for the whole plan)`;
  return text.slice(0, Math.max(0, max - note.length)) + note;
}

export function renderPlanMarkdown(app: string, plans: PlanResult[], limit = COMMENT_LIMIT): string {
  const head: string[] = [commentMarker(app), `### togo diff: \`${app}\``, ""];
  const total = plans.reduce(
    (t, p) => {
      const c = countChanges(p.json);
      return { add: t.add + c.add, change: t.change + c.change, replace: t.replace + c.replace, destroy: t.destroy + c.destroy };
    },
    { add: 0, change: 0, replace: 0, destroy: 0 },
  );
  head.push(plans.some((p) => hasChanges(p.json)) ? `**Plan:** ${summary(total)}.` : "**No changes.** The infrastructure matches the configuration.", "");
  head.push("| stack | add | change | replace | destroy |", "| --- | ---: | ---: | ---: | ---: |");
  for (const p of plans) {
    const c = countChanges(p.json);
    head.push(`| \`${p.stack}\` | ${c.add} | ${c.change} | ${c.replace} | ${c.destroy} |`);
  }

  const sections = plans.map((p) => {
    const lines = changeLines(p.json);
    const outputs = Object.entries(p.json.output_changes ?? {})
      .filter(([, o]) => actionOf(o.actions) !== "no-op")
      .map(([name, o]) => `${SYMBOL[actionOf(o.actions)] ?? actionOf(o.actions)} output.${name}`);
    const list = [...lines, ...outputs];
    return {
      intro: ["", `#### \`${p.stack}\``, "", list.length ? ["```diff", ...list, "```"].join("\n") : "No changes.", ""].join("\n"),
      text: p.text.trim(),
    };
  });

  // Whatever room the summary and change lists leave is shared by the full plans.
  const fixed = head.join("\n").length + sections.reduce((n, s) => n + s.intro.length + 120, 0);
  const room = Math.max(1000, Math.floor((limit - fixed) / Math.max(1, sections.length)));
  const out = [...head];
  for (const s of sections) {
    out.push(s.intro, "<details><summary>Full plan</summary>", "", fence(truncate(s.text, room)), "", "</details>");
  }
  return `${out.join("\n")}\n`;
}
