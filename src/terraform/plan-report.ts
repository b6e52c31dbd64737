// Plans for people: plain text for a terminal, Markdown for a pull-request comment (summary counts,
// then the changes, then the full plan in a collapsible block).
import type { PlanJson, PlanResult } from "./runner.js";

export interface PlanCounts {
  add: number;
  change: number;
  destroy: number;
  replace: number;
}

export function countChanges(plan: PlanJson): PlanCounts {
  const c: PlanCounts = { add: 0, change: 0, destroy: 0, replace: 0 };
  for (const rc of plan.resource_changes ?? []) {
    const a = rc.change.actions;
    if (a.includes("create") && a.includes("delete")) c.replace++;
    else if (a.includes("create")) c.add++;
    else if (a.includes("update")) c.change++;
    else if (a.includes("delete")) c.destroy++;
  }
  return c;
}

const SYMBOL: Record<string, string> = { create: "+", update: "~", delete: "-", replace: "-/+", read: "<=" };

export function changeLines(plan: PlanJson): string[] {
  return (plan.resource_changes ?? [])
    .filter((rc) => !(rc.change.actions.length === 1 && rc.change.actions[0] === "no-op"))
    .map((rc) => {
      const a = rc.change.actions;
      const kind = a.includes("create") && a.includes("delete") ? "replace" : a[0];
      return `${SYMBOL[kind] ?? kind} ${rc.address}`;
    });
}

function summary(c: PlanCounts): string {
  return `${c.add} to add, ${c.change} to change, ${c.replace} to replace, ${c.destroy} to destroy`;
}

export function renderPlanText(plans: PlanResult[]): string {
  return plans.map((p) => `Stack ${p.stack}: ${summary(countChanges(p.json))}\n${p.text.trim()}\n`).join("\n");
}

export function renderPlanMarkdown(app: string, plans: PlanResult[]): string {
  const out: string[] = [`### togo diff: ${app}`, "", "| stack | add | change | replace | destroy |", "| --- | ---: | ---: | ---: | ---: |"];
  for (const p of plans) {
    const c = countChanges(p.json);
    out.push(`| \`${p.stack}\` | ${c.add} | ${c.change} | ${c.replace} | ${c.destroy} |`);
  }
  for (const p of plans) {
    const lines = changeLines(p.json);
    out.push("", `#### \`${p.stack}\``, "", lines.length ? lines.map((l) => `- \`${l}\``).join("\n") : "No changes.", "");
    out.push("<details><summary>Full plan</summary>", "", "```", p.text.trim().replace(/```/g, "`​``"), "```", "", "</details>");
  }
  return `${out.join("\n")}\n`;
}
