// togo.yaml as a JSON Schema (`togo schema`), for editors: the same zod schema the loader checks,
// plus `stages:`. A number or boolean may also be written as `${VAR}` (interpolated before the check).
import { z } from "zod";
import { STAGE_NAME } from "./load.js";
import { artifactsSchema, configSchema, deploySchema, devSchema, hooksSchema, stateSchema, terraformSchema } from "./schema.js";

type Json = Record<string, unknown>;

const stageSchema = z.strictObject({
  deploy: deploySchema.partial().optional(),
  hooks: hooksSchema.optional(),
  terraform: terraformSchema.optional(),
  state: stateSchema.partial().optional(),
  plugins: configSchema.shape.plugins,
  dev: devSchema.optional(),
  artifacts: artifactsSchema.optional(),
});

export function togoJsonSchema(): Json {
  const full = configSchema.extend({ stages: z.record(z.string().regex(STAGE_NAME), stageSchema.nullable()).optional() });
  const schema = z.toJSONSchema(full, { io: "input", unrepresentable: "any" }) as Json;
  return {
    ...(allowInterpolation(schema) as Json),
    $id: "https://togo.dev/schema/togo.yaml.json",
    title: "togo.yaml",
    description: "togo's configuration: app, deploy (driver, hosts, artifact, health check, strategy), hooks, terraform, state, dev, artifacts, stages",
  };
}

/** `app_port: ${PORT:-3000}` is a string in the file and a number once read: both are valid. */
function allowInterpolation(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(allowInterpolation);
  if (node === null || typeof node !== "object") return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) out[k] = allowInterpolation(v);
  if (out.type === "integer" || out.type === "number" || out.type === "boolean") {
    return { anyOf: [out, { type: "string", pattern: "\\$\\{" }] };
  }
  return out;
}
