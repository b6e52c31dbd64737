// The cdktf app entry: every stack of a Spec synthesized into one cdktf App. `togo synth` (what
// cdktf.json's `app` runs) and `togo provision` both come here, so a hand-run `cdktf diff` sees
// exactly the stacks togo applies.
import { App } from "cdktf";
import type { StackSource } from "../src/core/spec.js";

export interface SynthResult {
  outdir: string;
  stacks: string[];
}

export async function synthStacks(sources: StackSource[], outdir: string): Promise<SynthResult> {
  const app = new App({ outdir });
  for (const source of sources) await source.define(app);
  app.synth();
  return { outdir, stacks: sources.map((s) => s.name) };
}
