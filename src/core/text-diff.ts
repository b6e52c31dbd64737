// A unified diff of two small texts (a unit file, a Caddy site): line-based, from a longest common
// subsequence, with `context` lines around each change. Quadratic in lines: meant for files of
// tens of lines, never for artifacts.

type Op = { kind: " " | "-" | "+"; line: string; a: number; b: number };

function lines(text: string): string[] {
  if (text === "") return [];
  const l = text.split("\n");
  if (l[l.length - 1] === "") l.pop();
  return l;
}

function edits(a: string[], b: string[]): Op[] {
  const n = a.length;
  const m = b.length;
  // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) out.push({ kind: " ", line: a[i++], a: i, b: ++j });
    // Deletions before insertions, as diff -u prints them.
    else if (i < n && (j === m || lcs[i + 1][j] >= lcs[i][j + 1])) out.push({ kind: "-", line: a[i++], a: i, b: j });
    else out.push({ kind: "+", line: b[j++], a: i, b: j });
  }
  return out;
}

/** `--- from` / `+++ to` and @@ hunks; "" when the texts are equal. */
export function unifiedDiff(before: string, after: string, from: string, to: string, context = 3): string {
  if (before === after) return "";
  const ops = edits(lines(before), lines(after));
  const changed = ops.map((o, k) => (o.kind !== " " ? k : -1)).filter((k) => k >= 0);
  if (changed.length === 0) {
    // Only a trailing newline differs.
    return `--- ${from}\n+++ ${to}\n\\ the files differ only in their final newline\n`;
  }
  const out = [`--- ${from}`, `+++ ${to}`];
  let k = 0;
  while (k < changed.length) {
    const start = Math.max(0, changed[k] - context);
    let end = Math.min(ops.length - 1, changed[k] + context);
    while (k + 1 < changed.length && changed[k + 1] - context <= end + 1) end = Math.min(ops.length - 1, changed[++k] + context);
    k++;
    const hunk = ops.slice(start, end + 1);
    const aLen = hunk.filter((o) => o.kind !== "+").length;
    const bLen = hunk.filter((o) => o.kind !== "-").length;
    const first = hunk[0];
    // A `+` line's `a` (a `-` line's `b`) counts the lines before it; a hunk starts at the next one.
    const aStart = first.kind === "+" && aLen > 0 ? first.a + 1 : first.a;
    const bStart = first.kind === "-" && bLen > 0 ? first.b + 1 : first.b;
    out.push(`@@ -${aStart}${aLen === 1 ? "" : `,${aLen}`} +${bStart}${bLen === 1 ? "" : `,${bLen}`} @@`);
    for (const o of hunk) out.push(`${o.kind}${o.line}`);
  }
  return `${out.join("\n")}\n`;
}
