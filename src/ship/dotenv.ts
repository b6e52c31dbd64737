// The `.env` format togo writes: one that POSIX sh (`set -a; . ./.env`) and systemd's
// EnvironmentFile= read back to exactly the same bytes.
//   - a value without `'` is single-quoted: both read it literally, newlines included;
//   - otherwise it is double-quoted with `\`, `"`, `$` and backquote escaped: the only escapes both
//     honour inside double quotes.

export function formatEnvValue(value: string): string {
  if (value.includes("\0")) throw new Error("environment values cannot contain NUL bytes");
  if (!value.includes("'")) return `'${value}'`;
  return `"${value.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`;
}

export function formatDotenv(vars: Record<string, string>): string {
  return Object.entries(vars)
    .map(([k, v]) => `${k}=${formatEnvValue(v)}\n`)
    .join("");
}

/**
 * Reads the dotenv dialect users keep secrets in (`KEY=value`, `export KEY=...`, '…', "…" with
 * \n \" \\ \$ escapes, # comments). Used by the `file:` secrets adapter.
 */
export function parseDotenv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  const n = text.length;
  while (i < n) {
    // Skip blank space and comment lines.
    while (i < n && /[ \t\r\n]/.test(text[i])) i++;
    if (i >= n) break;
    if (text[i] === "#") {
      while (i < n && text[i] !== "\n") i++;
      continue;
    }
    const m = /^(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*/.exec(text.slice(i));
    if (!m) {
      while (i < n && text[i] !== "\n") i++;
      continue;
    }
    i += m[0].length;
    let value = "";
    if (text[i] === "'") {
      const end = text.indexOf("'", i + 1);
      value = text.slice(i + 1, end < 0 ? n : end);
      i = end < 0 ? n : end + 1;
    } else if (text[i] === '"') {
      i++;
      while (i < n && text[i] !== '"') {
        if (text[i] === "\\" && i + 1 < n) {
          const c = text[i + 1];
          value += c === "n" ? "\n" : c === "t" ? "\t" : c === "\n" ? "" : '"\\$`'.includes(c) ? c : `\\${c}`;
          i += 2;
        } else value += text[i++];
      }
      i++;
    } else {
      const end = text.indexOf("\n", i);
      value = text.slice(i, end < 0 ? n : end).replace(/[ \t]+#.*$/, "").trim();
      i = end < 0 ? n : end;
    }
    out[m[1]] = value;
    while (i < n && text[i] !== "\n") i++;
  }
  return out;
}
