// `terraform show -json` of a plan prints sensitive values in clear (variables, the planned and
// prior values, the changes), with separate markers saying which ones are sensitive. togo prints
// that JSON (`togo diff --json`) and keeps it beside the plan, so every marked value is replaced
// by SENSITIVE first, as terraform's own text plan does.

export const SENSITIVE = "(sensitive value)";

type Json = unknown;
const isObject = (v: Json): v is Record<string, Json> => typeof v === "object" && v !== null && !Array.isArray(v);

/** `value` with every part `marker` flags (true, or true somewhere inside) replaced. */
export function maskValue(value: Json, marker: Json): Json {
  if (marker === true) return value === null || value === undefined ? value : SENSITIVE;
  if (Array.isArray(value) && Array.isArray(marker)) return value.map((v, i) => maskValue(v, marker[i]));
  if (isObject(value) && isObject(marker)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskValue(v, marker[k])]));
  return value;
}

function maskOutputs(outputs: Json): void {
  if (!isObject(outputs)) return;
  for (const o of Object.values(outputs)) if (isObject(o) && o.sensitive === true) o.value = maskValue(o.value, true);
}

/** A module of planned_values or prior_state: each resource's values by its sensitive_values. */
function maskModule(m: Json): void {
  if (!isObject(m)) return;
  for (const r of Array.isArray(m.resources) ? m.resources : []) if (isObject(r)) r.values = maskValue(r.values, r.sensitive_values);
  for (const child of Array.isArray(m.child_modules) ? m.child_modules : []) maskModule(child);
}

function maskChange(c: Json): void {
  if (!isObject(c)) return;
  c.before = maskValue(c.before, c.before_sensitive);
  c.after = maskValue(c.after, c.after_sensitive);
}

/** The plan JSON with every value terraform marks sensitive masked (in place; returned for chaining). */
export function maskSensitive<T>(plan: T): T {
  if (!isObject(plan)) return plan;
  const declared = isObject(plan.configuration) && isObject(plan.configuration.root_module) ? plan.configuration.root_module.variables : undefined;
  if (isObject(plan.variables)) {
    for (const [name, v] of Object.entries(plan.variables)) {
      const d = isObject(declared) ? declared[name] : undefined;
      if (isObject(v) && isObject(d) && d.sensitive === true) v.value = maskValue(v.value, true);
    }
  }
  for (const key of ["resource_changes", "resource_drift"]) {
    const list = plan[key];
    for (const rc of Array.isArray(list) ? list : []) if (isObject(rc)) maskChange(rc.change);
  }
  if (isObject(plan.output_changes)) for (const c of Object.values(plan.output_changes)) maskChange(c);
  for (const values of [plan.planned_values, isObject(plan.prior_state) ? plan.prior_state.values : undefined]) {
    if (!isObject(values)) continue;
    maskOutputs(values.outputs);
    maskModule(values.root_module);
  }
  return plan;
}
