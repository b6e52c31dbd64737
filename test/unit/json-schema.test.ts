// `togo schema`: the JSON Schema editors use must say what the loader accepts — every key the loader
// knows, strict where the loader is strict, and `${VAR}` allowed where a number is expected.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { togoJsonSchema } from "../../src/config/json-schema.js";
import { KNOWN_KEYS } from "../../src/config/schema.js";
import { ROOT } from "../helpers/index.js";

type Node = { type?: string; properties?: Record<string, Node>; additionalProperties?: unknown; anyOf?: Node[]; enum?: unknown[]; items?: Node };
const schema = togoJsonSchema() as Node & { $schema: string };
const at = (path: string[]): Node => path.reduce<Node>((n, k) => {
  const obj = n.anyOf?.find((a) => a.type === "object") ?? n;
  const next = obj.properties?.[k];
  if (!next) throw new Error(`the schema has no ${path.join(".")} (stops at ${k})`);
  return next;
}, schema);

test("every key the loader knows is in the schema, and mappings the loader checks strictly are strict", () => {
  expect(schema.$schema).toBe("https://json-schema.org/draft/2020-12/schema");
  for (const [path, keys] of Object.entries(KNOWN_KEYS)) {
    const node = path === "" ? schema : at(path.split("."));
    const obj = node.anyOf?.find((a) => a.type === "object") ?? node;
    expect({ path, keys: Object.keys(obj.properties ?? {}).sort() }).toEqual({ path, keys: [...keys].sort() });
    expect({ path, strict: obj.additionalProperties }).toEqual({ path, strict: false });
  }
});

test("enums and interpolation: strategy is one of three; app_port may be ${PORT:-3000}", () => {
  expect(at(["deploy", "strategy"]).enum).toEqual(["auto", "blue-green", "restart"]);
  const port = at(["deploy", "app_port"]);
  expect(port.anyOf?.map((a) => a.type)).toEqual(["integer", "string"]);
});

test("stages override deploy, hooks, terraform, state, plugins, dev and artifacts, and nothing else", () => {
  const stages = at(["stages"]) as Node & { additionalProperties: Node };
  const one = stages.additionalProperties.anyOf?.find((a) => a.type === "object") ?? stages.additionalProperties;
  expect(Object.keys(one.properties ?? {}).sort()).toEqual(["artifacts", "deploy", "dev", "hooks", "plugins", "state", "terraform"]);
  expect(one.additionalProperties).toBe(false);
});

test.each(["hello", "aws", "docker"])("examples/%s/togo.yaml uses only keys the schema has", (name) => {
  const walk = (value: unknown, node: Node, path: string[]) => {
    if (value === null || typeof value !== "object" || Array.isArray(value)) return;
    const obj = node.anyOf?.find((a) => a.type === "object") ?? node;
    for (const [k, v] of Object.entries(value)) {
      const child = obj.properties?.[k];
      if (!child) {
        expect({ key: [...path, k].join("."), open: obj.additionalProperties !== false }).toEqual({ key: [...path, k].join("."), open: true });
        continue;
      }
      walk(v, child, [...path, k]);
    }
  };
  walk(parse(readFileSync(join(ROOT, "examples", name, "togo.yaml"), "utf8")), schema, []);
});
