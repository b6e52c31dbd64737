// The versioned-release strategy's own options (`deploy.options`), shared by every driver that ships
// with it (local, vps, aws); a driver adds its own keys beside these in its schema.
import { existsSync, readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import type { ConfigProblem } from "../core/errors.js";
import type { Spec } from "../core/spec.js";
import { unknownPlaceholders } from "../core/template.js";
import * as z from "zod";
import { DEFAULT_CADDY_DIR, DEFAULT_CADDYFILE, siteValues } from "./caddy.js";
import { unitValues } from "./service/systemd.js";

const SAFE_PATH = /^(~\/|\/)[A-Za-z0-9._/-]+$/;
const oneOf = <T extends string>(values: [T, ...T[]]) => z.enum(values, { error: `expected one of ${values.join(", ")}` });
const bool = () => z.boolean({ error: "expected true or false" });
const hostPath = () =>
  z
    .string({ error: "expected an absolute path on the host (or ~/…) of letters, digits, . _ / -" })
    .regex(SAFE_PATH, { error: "expected an absolute path on the host (or ~/…) of letters, digits, . _ / -" })
    .transform((v) => v.replace(/\/+$/, "") || "/");
const templateFile = () => z.string({ error: "expected a path to a template file in the project" }).min(1, { error: "expected a path to a template file in the project" });

/** Keys of `deploy.options` the versioned-release strategy reads. */
export const shippingOptionShape = {
  /** auto: systemd when the host runs it (and the user manager answers), else the process manager. */
  service: oneOf(["auto", "systemd", "process"]).default("auto"),
  caddy_dir: hostPath().default(DEFAULT_CADDY_DIR),
  caddyfile: hostPath().default(DEFAULT_CADDYFILE),
  /** false: the Caddy site serves plain HTTP (TLS ends in front of it). */
  https: bool().default(true),
  unit_template: templateFile().optional(),
  caddy_template: templateFile().optional(),
  host_key_checking: oneOf(["accept-new", "yes"]).default("accept-new"),
  upload: oneOf(["auto", "rsync", "scp"]).default("auto"),
  bwlimit: z
    .number({ error: "expected the upload limit in KiB/s, a whole number (0 = none)" })
    .int({ error: "expected the upload limit in KiB/s, a whole number (0 = none)" })
    .min(0, { error: "expected the upload limit in KiB/s, a whole number (0 = none)" })
    .default(0),
};

export const shippingSchema = z.object(shippingOptionShape);
type RawShippingOptions = z.infer<typeof shippingSchema>;

export interface ShippingOptions {
  service: "auto" | "systemd" | "process";
  caddyDir: string;
  caddyfile: string;
  https: boolean;
  unitTemplate?: string;
  caddyTemplate?: string;
  hostKeyChecking: "accept-new" | "yes";
  upload: "auto" | "rsync" | "scp";
  bwlimit: number;
}

export function shippingOptions(o: RawShippingOptions): ShippingOptions {
  return {
    service: o.service,
    caddyDir: o.caddy_dir,
    caddyfile: o.caddyfile,
    https: o.https,
    unitTemplate: o.unit_template,
    caddyTemplate: o.caddy_template,
    hostKeyChecking: o.host_key_checking,
    upload: o.upload,
    bwlimit: o.bwlimit,
  };
}

/** The templates named in `deploy.options` exist in the project and use only known placeholders. */
export function templateProblems(spec: Spec): ConfigProblem[] {
  const named = (k: string) => (typeof spec.options[k] === "string" && spec.options[k] !== "" ? (spec.options[k] as string) : undefined);
  const o = { unitTemplate: named("unit_template"), caddyTemplate: named("caddy_template") };
  const problems: ConfigProblem[] = [];
  const check = (key: string, value: string | undefined, known: string[]) => {
    if (value === undefined) return;
    const file = isAbsolute(value) ? value : join(spec.dir, value);
    if (!existsSync(file)) {
      problems.push({ path: `deploy.options.${key}`, value, expected: `no such file (${file}); point it at a template in the project or remove the key` });
      return;
    }
    const unknown = unknownPlaceholders(readFileSync(file, "utf8"), known);
    if (unknown.length > 0) {
      problems.push({ path: `deploy.options.${key}`, value, expected: `unknown placeholder ${unknown.map((u) => `{{${u}}}`).join(", ")}; known: ${known.map((x) => `{{${x}}}`).join(" ")}` });
    }
  };
  check("unit_template", o.unitTemplate, Object.keys(unitValues({ app: "a", appDir: "/a", run: "r", port: 1, version: "1" })));
  check("caddy_template", o.caddyTemplate, Object.keys(siteValues({ app: "a", domain: "a.b", port: 1, https: true, healthPath: "/" })));
  return problems;
}

/** The Spec's keys that reach a target's shell and ssh's command line: checked before anything connects. */
export function targetProblems(spec: Spec): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (!SAFE_PATH.test(spec.appDir)) problems.push({ path: "deploy.app_dir", value: spec.appDir, expected: "expected an absolute path on the host or one starting with ~/" });
  if (spec.run && /[\n\r]/.test(spec.run)) problems.push({ path: "deploy.run", value: spec.run, expected: "expected one line (put longer start logic in a script in the artifact)" });
  for (const [key, p] of [["identity_file", spec.identityFile], ["known_hosts", spec.knownHosts], ["ssh_config", spec.sshConfig]] as const) {
    if (p !== undefined && /["'\n]/.test(p)) problems.push({ path: `deploy.${key}`, value: p, expected: "the path may not contain quotes or newlines" });
  }
  if (spec.identityFile && !existsSync(spec.identityFile)) problems.push({ path: "deploy.identity_file", value: spec.identityFile, expected: "no such file; point it at the private key, or remove the key to use ssh-agent" });
  if (spec.sshConfig && !existsSync(spec.sshConfig)) problems.push({ path: "deploy.ssh_config", value: spec.sshConfig, expected: "no such file" });
  return problems;
}

/** Problems of `deploy.options` in the order of the schema's keys (the order the user reads them in). */
export function inKeyOrder(problems: ConfigProblem[], keys: string[]): ConfigProblem[] {
  const rank = (p: ConfigProblem) => {
    const key = /^deploy\.options\.([^.]+)/.exec(p.path)?.[1];
    const i = key === undefined ? -1 : keys.indexOf(key);
    return i < 0 ? keys.length : i;
  };
  return [...problems].sort((a, b) => rank(a) - rank(b));
}
