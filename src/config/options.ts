// Driver options (`deploy.options`) through one zod helper: every driver and shipping strategy
// declares a strict schema; unknown keys get a did-you-mean from that schema, every problem is named
// with its full key path, and nothing is read by hand.
import * as z from "zod";
import type { ConfigProblem } from "../core/errors.js";
import { toProblems, type Issue } from "./load.js";
import { closest } from "./suggest.js";

export type OptionsSchema = z.ZodObject<z.ZodRawShape>;

export interface ParsedOptions<T> {
  /** Undefined when there are problems. */
  options?: T;
  problems: ConfigProblem[];
}

/** Known keys at each level of a schema (for did-you-mean), keyed like zod issue paths. */
function knownKeys(schema: z.ZodType, at = ""): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  let s = schema as z.ZodType & { def?: { innerType?: z.ZodType; type?: string } };
  while (s.def?.innerType) s = s.def.innerType as typeof s;
  if (s instanceof z.ZodObject) {
    out[at] = Object.keys(s.shape);
    for (const [k, v] of Object.entries(s.shape)) Object.assign(out, knownKeys(v as z.ZodType, at ? `${at}.${k}` : k));
  }
  return out;
}

/** Parses `deploy.options` with `schema`; problems carry `deploy.options.<key>` paths. */
export function parseOptions<S extends OptionsSchema>(options: Record<string, unknown>, schema: S, driver: string): ParsedOptions<z.infer<S>> {
  const r = schema.safeParse(options);
  if (r.success) return { options: r.data, problems: [] };
  const keys = knownKeys(schema);
  const problems = r.error.issues.flatMap((issue): ConfigProblem[] => {
    if (issue.code !== "unrecognized_keys") return toProblems(issue as unknown as Issue, options, ["deploy", "options"], keys);
    const at = ["deploy", "options", ...issue.path.map(String)].join(".");
    const known = keys[issue.path.map(String).join(".")] ?? [];
    return issue.keys.map((key) => {
      const guess = closest(key, known);
      return { path: `${at}.${key}`, expected: `unknown option for the ${driver} driver${guess ? `; did you mean "${guess}"?` : ""} (known: ${known.join(", ")})` };
    });
  });
  return { problems };
}

/** A strict object whose unknown keys are errors (the only kind of options schema there is). */
export const options = z.strictObject;
