// `terraform show -json` prints sensitive values in clear beside markers saying which are sensitive;
// the parts a plan of an update has that a first plan lacks (prior state, drift, a sensitive
// output, a nested block) are masked by those markers too. A first plan is run for real in
// test/integration/docker-diff.test.ts.
import { maskSensitive, maskValue, SENSITIVE } from "../../src/infra/sensitive.js";

const V = "s3cr3t-value";

test("every part a marker flags is masked, nested in lists and maps; the rest is left as it was", () => {
  expect(maskValue({ a: [1, V], b: { c: V, d: "x" }, e: null }, { a: [false, true], b: { c: true }, e: true })).toEqual({ a: [1, SENSITIVE], b: { c: SENSITIVE, d: "x" }, e: null });
  expect(maskValue(V, false)).toBe(V);
  expect(maskValue({ a: V }, undefined)).toEqual({ a: V });
});

test("an update's plan: variables, prior state, drift, changes, planned values and outputs", () => {
  const resource = (value: string) => ({ address: "x.y", values: { env: ["A=1", `T=${value}`] }, sensitive_values: { env: [false, true] } });
  const plan = {
    variables: { secret_T: { value: V }, plain: { value: "p" } },
    configuration: { root_module: { variables: { secret_T: { sensitive: true }, plain: {} } } },
    prior_state: { values: { outputs: { o: { sensitive: true, value: V } }, root_module: { resources: [resource(V)], child_modules: [{ resources: [resource(V)] }] } } },
    planned_values: { outputs: { o: { sensitive: true, value: V }, p: { sensitive: false, value: "p" } }, root_module: { resources: [resource(V)] } },
    resource_drift: [{ address: "x.y", change: { actions: ["update"], before: { env: [V] }, after: { env: [V] }, before_sensitive: { env: [true] }, after_sensitive: { env: [true] } } }],
    resource_changes: [{ address: "x.y", change: { actions: ["update"], before: { env: ["A=1", `T=old-${V}`] }, after: { env: ["A=1", `T=${V}`] }, before_sensitive: { env: [false, true] }, after_sensitive: { env: [false, true] } } }],
    output_changes: { o: { actions: ["update"], before: `old-${V}`, after: V, before_sensitive: true, after_sensitive: true } },
  };
  const masked = maskSensitive(structuredClone(plan));
  expect(JSON.stringify(masked)).not.toContain(V);
  expect(masked.variables.plain.value).toBe("p");
  expect(masked.planned_values.outputs.p.value).toBe("p");
  expect(masked.resource_changes[0].change.after.env).toEqual(["A=1", SENSITIVE]);
  expect(masked.resource_changes[0].change.actions).toEqual(["update"]);
});
