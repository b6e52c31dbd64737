// Quoting for POSIX sh. Every value that reaches a shell goes through one of these.

/** Single-quotes a value for sh: the result is always exactly one word with the same bytes. */
export function q(value: string | number): string {
  const s = String(value);
  if (s.includes("\0")) throw new Error("a NUL byte cannot be passed to a shell");
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Quotes a path that may start with `~/` (a remote home, resolved by the target's shell):
 * `~/apps/x` becomes `"$HOME"/apps/x`; the rest is quoted as usual.
 */
export function qpath(path: string): string {
  if (path === "~") return `"$HOME"`;
  if (path.startsWith("~/")) return `"$HOME"/${q(path.slice(2))}`;
  return q(path);
}

/** Joins script lines, dropping empty ones. */
export function script(...lines: (string | false | undefined)[]): string {
  return lines.filter((l): l is string => typeof l === "string" && l.length > 0).join("\n");
}
