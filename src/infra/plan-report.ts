// Plans for people: plain text for a terminal, Markdown for a pull-request comment (summary counts,
// then the changes, then terraform's own plan in a collapsible block, then the deploy plan of each
// stage). Counts and change lists come from `terraform show -json`, never from parsing terraform's
// text. A comment longer than GitHub takes is split into numbered comments, never cut.
import type { DeployPlan, EnvKeyChange, FilePlan, TargetPlan } from "../core/spec.js";
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

// --- the deploy plan (what `togo deploy` would ship), as text and Markdown ---

const short = (sha?: string) => (sha ? sha.slice(0, 12) : "?");
const ENV_SYMBOL: Record<EnvKeyChange["change"], string> = { added: "+", removed: "-", changed: "~", unknown: "?" };

function envLine(c: EnvKeyChange): string {
  return `${ENV_SYMBOL[c.change]} ${c.key}${c.secret ? " (secret)" : ""}${c.change === "unknown" ? `: ${c.note ?? "not comparable here"}` : ""}`;
}

const versionText = (v: DeployPlan["version"], code: (s: string) => string) => (v.value ? `${code(v.value)} (${v.source})` : v.source);

function envSummary(env: NonNullable<TargetPlan["env"]>): string {
  const n = (k: EnvKeyChange["change"]) => env.changes.filter((c) => c.change === k).length;
  const parts = [`${n("added")} added`, `${n("removed")} removed`, `${n("changed")} changed`, `${env.unchanged} unchanged`];
  if (n("unknown")) parts.push(`${n("unknown")} not comparable`);
  return parts.join(", ");
}

function shipsText(t: TargetPlan, p: DeployPlan): string {
  if (!t.reachable) return "unknown";
  if (t.ships === undefined) return p.artifact.sha256 ? "unknown" : "unknown (not built here)";
  if (!t.liveVersion) return "yes (nothing deployed yet)";
  return t.ships ? `yes (artifact ${short(t.liveSha256)} → ${short(p.artifact.sha256)})` : "no (the live release has this artifact)";
}

/** Hosts with the same answer share one block (a fleet of 30 says it once). */
function grouped<T>(targets: TargetPlan[], pick: (t: TargetPlan) => T | undefined): { hosts: string[]; value: T }[] {
  const groups = new Map<string, { hosts: string[]; value: T }>();
  for (const t of targets) {
    const v = pick(t);
    if (v === undefined) continue;
    const key = JSON.stringify(v);
    const g = groups.get(key) ?? { hosts: [], value: v };
    g.hosts.push(t.host);
    groups.set(key, g);
  }
  return [...groups.values()];
}

function onHosts(hosts: string[], all: number): string {
  if (all === 1) return "";
  return hosts.length === all ? ` (all ${all} hosts)` : ` (${hosts.join(", ")})`;
}

function deployTitle(p: DeployPlan): string {
  const stage = p.stage === undefined ? "" : p.stage === "" ? ": without a stage" : `: stage \`${p.stage}\``;
  return `Deploy plan${stage} (${p.driver})`;
}

export function renderDeployPlanText(p: DeployPlan): string {
  const out = [deployTitle(p)];
  if (p.artifact.path !== undefined) out.push(`  artifact: ${p.artifact.path}${p.artifact.sha256 ? ` sha256 ${p.artifact.sha256}` : ""}${p.artifact.note ? ` (${p.artifact.note})` : ""}`);
  if (p.version.source) out.push(`  version:  ${versionText(p.version, (v) => v)}`);
  for (const n of p.notes) out.push(`  ${n}`);
  for (const t of p.targets) {
    out.push(`  ${t.host}:`);
    if (!t.reachable) {
      out.push(`    ${t.problem}`);
      continue;
    }
    out.push(`    live:     ${t.liveVersion ? `${t.liveVersion} sha256 ${t.liveSha256 ?? "?"}` : "nothing deployed yet"}`);
    out.push(`    ships:    ${shipsText(t, p)}`);
    if (t.strategy) out.push(`    strategy: ${t.strategy}`);
    if (t.env) {
      out.push(`    env:      ${envSummary(t.env)}`);
      for (const c of t.env.changes) out.push(`      ${envLine(c)}`);
    }
    for (const [what, f] of [["unit", t.unit], ["site", t.site]] as const) {
      if (!f) continue;
      out.push(`    ${what}:     ${f.path}: ${f.diff ? "changes" : "unchanged"}${f.note ? ` (${f.note})` : ""}`);
      if (f.diff) out.push(...f.diff.trimEnd().split("\n").map((l) => `      ${l}`));
    }
    for (const n of t.notes) out.push(`    ${n}`);
  }
  return `${out.join("\n")}\n`;
}

/** A Markdown block: plain text kept whole, or a fenced block in <details> that may be split by lines. */
type Block = { text: string } | { summary: string; lang: string; body: string; open?: boolean };

function fileBlock(what: string, f: FilePlan, hosts: string): Block {
  if (!f.diff) return { text: `\n**${what}** \`${f.path}\`${hosts}: unchanged${f.note ? ` (${f.note})` : ""}.\n` };
  return { summary: `${what} <code>${escapeHtml(f.path)}</code>${hosts}: changes${f.note ? ` (${escapeHtml(f.note)})` : ""}`, lang: "diff", body: f.diff.trimEnd(), open: true };
}

/** Text in a table cell: a `|` would end the cell. */
const cell = (s: string) => s.replace(/\|/g, "\\|");

function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function deployBlocks(p: DeployPlan): Block[] {
  const head = ["", `#### ${deployTitle(p)}`, ""];
  if (p.artifact.path !== undefined) {
    head.push(`- artifact: \`${p.artifact.path}\`${p.artifact.sha256 ? ` sha256 \`${short(p.artifact.sha256)}\`` : ""}${p.artifact.note ? ` (${p.artifact.note})` : ""}`);
  }
  if (p.version.source) head.push(`- version a deploy would get: ${versionText(p.version, (v) => `\`${v}\``)}`);
  for (const n of p.notes) head.push(`- ${n}`);
  if (p.targets.length > 0) {
    head.push("", "| host | live release | would ship | strategy |", "| --- | --- | --- | --- |");
    for (const t of p.targets) {
      if (!t.reachable) head.push(`| \`${t.host}\` | ${cell(t.problem ?? "")} | | |`);
      else head.push(`| \`${t.host}\` | ${t.liveVersion ? `\`${t.liveVersion}\` (\`${short(t.liveSha256)}\`)` : "none"} | ${shipsText(t, p)} | ${t.strategy ?? ""} |`);
    }
  }
  const blocks: Block[] = [{ text: `${head.join("\n")}\n` }];
  const all = p.targets.length;
  for (const g of grouped(p.targets, (t) => t.env)) {
    const hosts = onHosts(g.hosts, all);
    if (g.value.changes.length === 0) blocks.push({ text: `\n**env**${hosts}: no changes (${g.value.unchanged} keys).\n` });
    else blocks.push({ text: `\n**env**${hosts}: ${envSummary(g.value)} (key names only; values are compared by keyed fingerprints and never shown)\n\n${["```diff", ...g.value.changes.map(envLine), "```"].join("\n")}\n` });
  }
  // A blank line before each file block: GitHub wants one between a fence and the HTML after it.
  for (const g of grouped(p.targets, (t) => t.unit)) blocks.push({ text: "\n" }, fileBlock("systemd unit", g.value, onHosts(g.hosts, all)));
  for (const g of grouped(p.targets, (t) => t.site)) blocks.push({ text: "\n" }, fileBlock("Caddy site", g.value, onHosts(g.hosts, all)));
  for (const g of grouped(p.targets, (t) => (t.reachable && t.notes.length ? t.notes : undefined))) {
    blocks.push({ text: `\n${g.value.map((n) => `- ${n}${onHosts(g.hosts, all)}`).join("\n")}\n` });
  }
  return blocks;
}

/** GitHub refuses comments over 65,536 characters; a longer plan becomes numbered comments. */
export const COMMENT_LIMIT = 65_536;

/** A marker a workflow can find to update its previous comment instead of adding another. */
export function commentMarker(app: string, part?: { n: number; of: number }): string {
  return part ? `<!-- togo-diff: ${app} (${part.n}/${part.of}) -->` : `<!-- togo-diff: ${app} -->`;
}

/** Inside a fence: a line holding ``` would close the block early, and a line that looks like a part marker would split it. */
function escapeFenced(text: string): string {
  return text.replace(/```/g, "`\u200b``").replace(/^<!-- togo-diff:/gm, "<\u200b!-- togo-diff:");
}

function fenced(b: Extract<Block, { body: string }>, body: string, summary = b.summary): string {
  return [`<details${b.open ? " open" : ""}><summary>${summary}</summary>`, "", `\`\`\`${b.lang}`, body, "```", "", "</details>", ""].join("\n");
}

/**
 * The whole report as comments of at most `limit` characters. One comment keeps the plain marker
 * (workflows that look for it keep working); more get `(k/n)` markers. A block is never cut: a long
 * plan goes on in the next comment, its fenced text split between lines (a line longer than a whole
 * comment is wrapped), so the comments together hold every line of it.
 */
export function renderPlanComments(app: string, plans: PlanResult[], deploy: DeployPlan[] = [], limit = COMMENT_LIMIT): string[] {
  const head: string[] = [`### togo diff: \`${app}\``, ""];
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
  const blocks: Block[] = [{ text: `${head.join("\n")}\n` }];
  for (const p of plans) {
    const lines = changeLines(p.json);
    const outputs = Object.entries(p.json.output_changes ?? {})
      .filter(([, o]) => actionOf(o.actions) !== "no-op")
      .map(([name, o]) => `${SYMBOL[actionOf(o.actions)] ?? actionOf(o.actions)} output.${name}`);
    const list = [...lines, ...outputs];
    blocks.push({ text: ["", `#### \`${p.stack}\``, "", list.length ? ["```diff", ...list, "```"].join("\n") : "No changes.", "", ""].join("\n") });
    blocks.push({ summary: "Full plan", lang: "", body: p.text.trim() });
  }
  for (const d of deploy) blocks.push(...deployBlocks(d));

  // Room for a part's own lines: its marker and, after the first, a heading saying what it continues.
  const continued = (i: number, n: number) => `### togo diff: \`${app}\` (continued, ${i}/${n})\n\n`;
  const splitNote = (n: number) => `\n_Continued in the next ${n - 1} comment${n > 2 ? "s" : ""} (GitHub takes at most ${limit.toLocaleString("en-US")} characters a comment)._\n`;
  const reserve = commentMarker(app, { n: 999, of: 999 }).length + 1 + Math.max(continued(999, 999).length, splitNote(999).length);
  const room = limit - reserve;
  if (room < 500) throw new Error(`a comment limit of ${limit} leaves no room for the plan`);
  const parts: string[][] = [[]];
  let used = 0;
  const put = (text: string) => {
    if (used + text.length > room && used > 0) {
      parts.push([]);
      used = 0;
    }
    parts[parts.length - 1].push(text);
    used += text.length;
  };
  for (const b of blocks) {
    if ("text" in b) {
      if (b.text.length <= room) put(b.text);
      else for (let i = 0; i < b.text.length; i += room) put(b.text.slice(i, i + room)); // only a pathological block
      continue;
    }
    const whole = fenced(b, escapeFenced(b.body));
    if (used + whole.length <= room || (used === 0 && whole.length <= room)) {
      put(whole);
      continue;
    }
    // Split between lines; each piece is a fenced block of its own, numbered.
    const frame = fenced(b, "", `${b.summary} (continued, 99/99)`).length + 1;
    const wrapAt = room - frame;
    const lines = escapeFenced(b.body)
      .split("\n")
      .flatMap((l) => (l.length <= wrapAt ? [l] : Array.from({ length: Math.ceil(l.length / wrapAt) }, (_, i) => l.slice(i * wrapAt, (i + 1) * wrapAt))));
    const pieces: string[][] = [];
    let piece: string[] = [];
    let size = 0;
    let free = room - used - frame;
    if (free < Math.min(2000, wrapAt)) free = wrapAt; // too little left here: the block starts a new comment
    for (const l of lines) {
      if (piece.length > 0 && size + l.length + 1 > free) {
        pieces.push(piece);
        piece = [];
        size = 0;
        free = wrapAt;
      }
      piece.push(l);
      size += l.length + 1;
    }
    pieces.push(piece);
    pieces.forEach((p, i) => put(fenced(b, p.join("\n"), pieces.length === 1 ? b.summary : `${b.summary} (${i === 0 ? "" : "continued, "}${i + 1}/${pieces.length})`)));
  }

  const n = parts.length;
  return parts.map((p, i) => {
    const marker = n === 1 ? commentMarker(app) : commentMarker(app, { n: i + 1, of: n });
    const title = i === 0 ? "" : continued(i + 1, n);
    const body = p.join("");
    const note = i === 0 && n > 1 ? splitNote(n) : "";
    return `${marker}\n${title}${body}${note}`;
  });
}

/** The comments one after the other (what `togo diff --markdown` prints); a workflow splits them at the markers. */
export function renderPlanMarkdown(app: string, plans: PlanResult[], deploy: DeployPlan[] = [], limit = COMMENT_LIMIT): string {
  return renderPlanComments(app, plans, deploy, limit).join("");
}
