// The PR comment and the deploy plan's parts: a report too long for one GitHub comment becomes
// numbered comments (none cut, every plan line kept), the env fingerprint script run under a real
// sh against Node's HMAC (names only leave it), the text diff against GNU diff -u, and the plan's
// failure branches (unreachable host, unit and site read back) on a recording fake transport.
import { execa } from "execa";
import { symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, test } from "@jest/globals";
import { deployPlanOf } from "../../src/cli/commands/diff.js";
import type { Opened } from "../../src/cli/service.js";
import { parseConfig } from "../../src/config/load.js";
import { OperationError } from "../../src/core/errors.js";
import { createReporter } from "../../src/core/log.js";
import type { DeployPlan, Spec, Target } from "../../src/core/spec.js";
import { unifiedDiff } from "../../src/core/text-diff.js";
import type { HostFacts } from "../../src/exec/transport.js";
import { COMMENT_LIMIT, renderPlanComments, renderPlanMarkdown } from "../../src/infra/plan-report.js";
import type { PlanJson } from "../../src/infra/runner.js";
import { formatDotenv } from "../../src/ship/dotenv.js";
import { envChanges, fingerprint, fingerprintKey, parseFingerprints } from "../../src/ship/env-plan.js";
import { shippingOptions, shippingSchema } from "../../src/ship/options.js";
import { versionedRelease } from "../../src/ship/release.js";
import { envFingerprintsScript } from "../../src/ship/scripts.js";
import { renderUnit } from "../../src/ship/service/systemd.js";
import { cleanupTempDirs, tempDir } from "../helpers/index.js";
import { FakeTransport } from "../helpers/fake-transport.js";

afterAll(cleanupTempDirs);
const fakes: FakeTransport[] = [];
afterEach(async () => {
  for (const f of fakes.splice(0)) await f.close();
});

const json: PlanJson = { resource_changes: [{ address: "terraform_data.app_directory", type: "terraform_data", name: "app_directory", change: { actions: ["create"] } }] };
/** A terraform-like plan of `n` numbered lines (as the report keeps it: trimmed). */
const planText = (n: number, tag = "") => Array.from({ length: n }, (_, i) => `  # resource ${tag}${i} will be created: ${"attribute = value ".repeat(3)}`).join("\n").trim();
/** The text of every fenced block under a <summary> starting with `summary`, in order, joined back. */
const fencedTexts = (comments: string[], summary: string) =>
  [...comments.join("").matchAll(new RegExp(`<summary>${summary}[^<]*</summary>\\n\\n\`\`\`[a-z]*\\n([\\s\\S]*?)\\n\`\`\`\\n`, "g"))].map((m) => m[1]).join("\n");

const deployPlan: DeployPlan = {
  driver: "vps",
  artifact: { path: "server.js", sha256: "b".repeat(64) },
  version: { value: "v2", source: "git describe" },
  targets: [
    { host: "10.0.0.1", reachable: true, liveVersion: "v1", liveSha256: "a".repeat(64), ships: true, strategy: "restart", env: { changes: [{ key: "NEW", change: "added" }], unchanged: 2 }, notes: [] },
    { host: "10.0.0.2", reachable: false, problem: "host unreachable: connection refused", notes: [] },
  ],
  notes: [],
};

describe("the PR comment", () => {
  test("a plan that fits is one comment with the plain marker, the deploy plan after the stacks", () => {
    const [one, ...rest] = renderPlanComments("hello", [{ stack: "hello-vps", text: planText(10), json }], [deployPlan]);
    expect(rest).toEqual([]);
    expect(one.startsWith("<!-- togo-diff: hello -->\n### togo diff: `hello`\n")).toBe(true);
    expect(one.indexOf("#### Deploy plan (vps)")).toBeGreaterThan(one.indexOf("<summary>Full plan</summary>"));
    expect(one).toContain("| `10.0.0.1` | `v1` (`aaaaaaaaaaaa`) | yes (artifact aaaaaaaaaaaa → bbbbbbbbbbbb) | restart |");
    expect(one).toContain("| `10.0.0.2` | host unreachable: connection refused | | |");
    expect(one).toContain("```diff\n+ NEW\n```");
    expect(renderPlanMarkdown("hello", [{ stack: "hello-vps", text: planText(10), json }], [deployPlan])).toBe(one);
  });

  test("a plan over GitHub's limit becomes numbered comments, each within it, with every line of the plan and no truncation", () => {
    const plans = [
      { stack: "hello-vps", text: planText(1500, "a"), json },
      { stack: "hello-staging-vps", text: planText(1500, "b"), json },
    ];
    expect(plans[0].text.length + plans[1].text.length).toBeGreaterThan(2 * COMMENT_LIMIT);
    const comments = renderPlanComments("hello", plans, [deployPlan]);
    expect(comments.length).toBeGreaterThanOrEqual(3);
    comments.forEach((c, i) => {
      expect(c.length).toBeLessThanOrEqual(COMMENT_LIMIT);
      expect(c.startsWith(`<!-- togo-diff: hello (${i + 1}/${comments.length}) -->\n`)).toBe(true);
      // Every fence opened in a comment is closed in it, and so is every <details>.
      expect((c.match(/^```/gm) ?? []).length % 2).toBe(0);
      expect((c.match(/<details/g) ?? []).length).toBe((c.match(/<\/details>/g) ?? []).length);
    });
    const md = comments.join("");
    expect(md).not.toMatch(/truncated/);
    expect(comments[0]).toContain(`_Continued in the next ${comments.length - 1} comments`);
    expect(comments[1]).toContain(`### togo diff: \`hello\` (continued, 2/${comments.length})`);
    // The plans' lines, in order, each exactly once, across the comments.
    const all = fencedTexts(comments, "Full plan");
    expect(all).toBe(`${plans[0].text}\n${plans[1].text}`);
    // The summary stays in the first; the deploy plan is whole, at the end.
    expect(comments[0]).toContain("| `hello-staging-vps` | 1 | 0 | 0 | 0 |");
    expect(comments[comments.length - 1]).toContain("#### Deploy plan (vps)");
    // What prints is the comments one after the other; the workflow splits at the numbered markers.
    expect(renderPlanMarkdown("hello", plans, [deployPlan]).split(/\n(?=<!-- togo-diff: hello \(\d+\/\d+\) -->\n)/)).toEqual(comments.map((c, i) => (i < comments.length - 1 ? c.replace(/\n$/, "") : c)));
  });

  test("a small limit: blocks are moved whole or split between lines, a line longer than a comment is wrapped", () => {
    const long = `x${"y".repeat(3000)}z`;
    const text = `${planText(40)}\n${long}\n${planText(40, "c")}`;
    const comments = renderPlanComments("hello", [{ stack: "s", text, json }], [], 1500);
    for (const c of comments) expect(c.length).toBeLessThanOrEqual(1500);
    expect(fencedTexts(comments, "Full plan").replace(/\n(?=y|z)/g, "")).toBe(text);
  });

  test("a plan holding ``` or a line like a marker cannot break its block or the split", () => {
    const comments = renderPlanComments("hello", [{ stack: "s", text: 'value = "```\n<!-- togo-diff: hello (2/2) -->\n# injected', json: { resource_changes: [] } }]);
    expect(comments).toHaveLength(1);
    expect(comments[0].match(/^```$/gm)?.length).toBe(2);
    expect(comments[0].match(/^<!-- togo-diff:/gm)?.length).toBe(1);
  });
});

describe("env fingerprints", () => {
  const env = {
    PLAIN: "hello",
    // Lines of a value that look like assignments, one of a variable the host's shell has set (HOME).
    MULTI: "line one\nFAKE=not a key\nHOME=not a key either\n",
    QUOTES: "it's $HOME `id` \\ \"q\"",
    EMPTY: "",
    PATH: "/nowhere",
    IFS: ":",
    n: "named like the script's loop variable",
    togo_sha: "named like the script's own",
    UNICODE: "ünïcödé",
  };

  test("the host script's HMAC-SHA256 is Node's, for every key the file sets and no other; no value in its output", async () => {
    const dir = tempDir("togo-envfp-");
    writeFileSync(join(dir, ".env"), formatDotenv(env), { mode: 0o600 });
    const k = fingerprintKey();
    const r = await execa("sh", ["-c", envFingerprintsScript(dir)], { input: k.pads, reject: false });
    expect({ code: r.exitCode, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    const got = parseFingerprints(String(r.stdout))!;
    expect([...got.keys()].sort()).toEqual(Object.keys(env).sort());
    for (const [key, value] of Object.entries(env)) expect([key, got.get(key)]).toEqual([key, fingerprint(k, value)]);
    for (const value of Object.values(env).filter((v) => v.length > 3)) expect(String(r.stdout)).not.toContain(value);
    // The key travels on stdin only.
    expect(envFingerprintsScript(dir)).not.toContain(k.pads.split("\n")[0].slice(0, 40));
  });

  test(".env as a symlink is not followed: no-env", async () => {
    const dir = tempDir("togo-envfp-");
    writeFileSync(join(dir, "elsewhere"), "A='1'\n");
    symlinkSync(join(dir, "elsewhere"), join(dir, ".env"));
    const r = await execa("sh", ["-c", envFingerprintsScript(dir)], { input: fingerprintKey().pads });
    expect(String(r.stdout).trim()).toBe("no-env");
  });

  test("no .env: no-env; then every key is added", async () => {
    const r = await execa("sh", ["-c", envFingerprintsScript(tempDir("togo-envfp-"))], { input: fingerprintKey().pads });
    expect(parseFingerprints(String(r.stdout))).toBeUndefined();
    expect(envChanges(undefined, { A: { value: "1", secret: false } }, fingerprintKey())).toEqual({ changes: [{ key: "A", change: "added" }], unchanged: 0 });
  });

  test("added, removed, changed, unknown (an unresolvable secret) and unchanged, by name only", () => {
    const k = fingerprintKey();
    const live = new Map([
      ["SAME", fingerprint(k, "1")],
      ["CHANGED", fingerprint(k, "old")],
      ["GONE", fingerprint(k, "x")],
      ["TOKEN", fingerprint(k, "t")],
    ]);
    const next = { SAME: { value: "1", secret: false }, CHANGED: { value: "new", secret: true }, NEW: { value: "n", secret: false }, TOKEN: { secret: true, note: "not resolvable here" } };
    expect(envChanges(live, next, k)).toEqual({
      changes: [
        { key: "CHANGED", change: "changed", secret: true },
        { key: "GONE", change: "removed" },
        { key: "NEW", change: "added" },
        { key: "TOKEN", change: "unknown", secret: true, note: "not resolvable here" },
      ],
      unchanged: 1,
    });
  });
});

describe("togo diff's deploy plan of a driver", () => {
  const spec = { app: "hello" } as Spec;
  const driver = (deployPlan?: () => Promise<DeployPlan>) => ({ name: "docker", ...(deployPlan ? { deployPlan } : {}) }) as unknown as Opened["driver"];
  test("without one (docker): said, not failed", async () => {
    expect((await deployPlanOf({ spec, driver: driver() })).notes).toEqual(["deploy plan: not available for the docker driver"]);
  });
  test("one that fails as an operation: said, the infrastructure plan stands; anything else is a bug and thrown", async () => {
    const failing = driver(() => Promise.reject(new OperationError("state unreadable\ndetail")));
    expect((await deployPlanOf({ spec, driver: failing })).notes).toEqual(["deploy plan: could not be made: state unreadable"]);
    await expect(deployPlanOf({ spec, driver: driver(() => Promise.reject(new TypeError("bug"))) })).rejects.toThrow("bug");
  });
});

describe("unifiedDiff", () => {
  test.each([
    ["a\nb\nc\n", "a\nB\nc\n"],
    ["", "x\ny\n"],
    ["x\ny\n", ""],
    ["1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n", "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\nX\n"],
    ["a\nb\nc\n", "b\nc\nd\n"],
  ])("is what diff -u prints (%#)", async (a, b) => {
    const dir = tempDir("togo-udiff-");
    writeFileSync(join(dir, "a"), a);
    writeFileSync(join(dir, "b"), b);
    const gnu = await execa("diff", ["-u", "--label", "A", "--label", "B", join(dir, "a"), join(dir, "b")], { reject: false, stripFinalNewline: false });
    expect(unifiedDiff(a, b, "A", "B")).toBe(String(gnu.stdout));
  });
  test("equal texts: nothing", () => expect(unifiedDiff("a\n", "a\n", "A", "B")).toBe(""));
});

/** A host with systemd (user units, lingering) and Caddy. */
class SystemdHost extends FakeTransport {
  override async facts(): Promise<HostFacts> {
    await this.run({ op: "host.facts", script: "" });
    return { home: "/home/deploy", systemd: true, userSystemd: true, caddy: true, rsync: true };
  }
}
class DownHost extends FakeTransport {
  override async facts(): Promise<HostFacts> {
    throw new OperationError("ssh: connect to host 10.0.0.9 port 22: Connection refused\nmore detail");
  }
}

function vpsSpec(extra = ""): Spec {
  const dir = tempDir("togo-plan-");
  writeFileSync(join(dir, "server.js"), "// new artifact\n");
  return parseConfig(
    `app: hello
deploy:
  provider: vps
  host: 10.0.0.1
  user: deploy
  binary: server.js
  run: node server.js
  app_port: 3000
  domain: hello.example.com
  env: { KEEP: same, CHANGE: new-value }
  secrets: { TOKEN: env:THE_TOKEN }
${extra}`,
    join(dir, "togo.yaml"),
    {},
  );
}

function planWith(f: FakeTransport, env: Record<string, string> = {}) {
  fakes.push(f);
  return versionedRelease({
    driver: "vps",
    ctx: { log: createReporter({ quiet: true }), opts: { force: false, yes: false, lockWait: 0, json: false, version: "2.0.0" } },
    options: shippingOptions(shippingSchema.parse({ https: false })),
    front: "site",
    open: { transport: f },
    env,
  });
}

const target = (spec: Spec): Target[] => [{ host: "10.0.0.1", user: "deploy", appDir: spec.appDir, url: "http://hello.example.com" }];

describe("the deploy plan on a (fake) host", () => {
  test("unreachable: said in the plan, nothing else asked of it", async () => {
    const spec = vpsSpec();
    const f = new DownHost();
    const p = await planWith(f).plan!(spec, target(spec));
    expect(p.targets).toEqual([{ host: "10.0.0.1", reachable: false, problem: "host unreachable: ssh: connect to host 10.0.0.9 port 22: Connection refused", notes: [] }]);
    expect(p.version).toEqual({ value: "2.0.0", source: "--version" });
    expect(f.ops()).toEqual([]);
  });

  test("systemd + Caddy: the live unit and site against what a deploy would write; the key on stdin; a secret's value nowhere", async () => {
    const spec = vpsSpec();
    const f = new SystemdHost();
    const liveUnit = renderUnit({ app: "hello", appDir: spec.appDir, run: "node old.js", port: 3000, version: "1.0.0" });
    f.on("current", { stdout: "1.0.0\n" })
      .on("release.sha", { stdout: `${"a".repeat(64)}\n` })
      .on("caddy.dir", { code: 1 }) // not writable: a restart-style deploy
      .on("live.port", { stdout: "\n" })
      .on("plan.env", (cmd) => {
        // The host's answer, computed as the script would from the key the plan sent.
        const pads = cmd.input!.split("\n");
        expect(pads).toHaveLength(3);
        return { stdout: "KEEP 0000000000000000000000000000000000000000000000000000000000000000\nGONE 1111111111111111111111111111111111111111111111111111111111111111\n" };
      })
      .on("plan.unit", { stdout: `present\n${liveUnit}` })
      .on("plan.site", { stdout: "missing\n" });
    const p = await planWith(f, { THE_TOKEN: "tok-secret-value" }).plan!(spec, target(spec));
    const [t] = p.targets;
    expect(t).toMatchObject({ reachable: true, liveVersion: "1.0.0", liveSha256: "a".repeat(64), ships: true, strategy: "restart" });
    expect(t.env!.changes.map((c) => `${c.change} ${c.key}`)).toEqual(["added CHANGE", "removed GONE", "changed KEEP", "added TOKEN"]);
    expect(t.unit!.path).toBe("~/.config/systemd/user/togo-hello.service");
    expect(t.unit!.diff).toContain("-Description=hello (togo release 1.0.0)\n+Description=hello (togo release 2.0.0)");
    expect(t.unit!.diff).toContain('-ExecStart=/bin/sh -c "exec node old.js"\n+ExecStart=/bin/sh -c "exec node server.js"');
    expect(t.site!.path).toBe("/etc/caddy/togo.d/hello.caddy");
    expect(t.site!.diff).toMatch(/^--- \/dev\/null\n\+\+\+ \/etc\/caddy\/togo.d\/hello.caddy \(a deploy would write\)\n@@ -0,0 \+1,\d+ @@\n\+# Generated by togo/);
    expect(t.site!.diff).toContain("+http://hello.example.com {");
    expect(t.site!.diff).toContain("reverse_proxy 127.0.0.1:3000");
    // Reads only.
    expect(f.ops().filter((op) => !["host.facts", "current", "release.sha", "caddy.dir", "live.port", "plan.env", "plan.unit", "plan.site"].includes(op))).toEqual([]);
    const printed = JSON.stringify(p) + renderPlanMarkdown("hello", [], [p]) + f.calls.map((c) => c.script).join("\n");
    expect(printed).not.toContain("tok-secret-value");
    expect(printed).not.toContain("new-value");
  });

  test("a read that fails is said beside the rest, never taken for a missing file or env", async () => {
    const spec = vpsSpec();
    const f = new SystemdHost();
    f.on("current", { stdout: "1.0.0\n" })
      .on("release.sha", { stdout: `${"a".repeat(64)}\n` })
      .on("plan.env", { code: 1, stderr: "sha256sum is not installed\n" })
      .on("plan.unit", { code: 1, stderr: "Permission denied\n" })
      .on("plan.site", { stdout: "missing\n" });
    const [t] = (await planWith(f).plan!(spec, target(spec))).targets;
    expect(t.env).toBeUndefined();
    expect(t.unit).toBeUndefined();
    expect(t.site!.diff).toMatch(/^--- \/dev\/null\n/);
    expect(t.notes).toEqual([expect.stringMatching(/^could not read the live \.env: .*sha256sum is not installed/), expect.stringMatching(/^could not read the unit file: .*Permission denied/)]);
  });

  test("an unreachable host's reason cannot break the table", () => {
    const md = renderPlanMarkdown("hello", [], [{ ...deployPlan, targets: [{ host: "h", reachable: false, problem: "host unreachable: a | b", notes: [] }] }]);
    expect(md).toContain("| `h` | host unreachable: a \\| b | | |");
  });

  test("a secret that cannot be resolved here is compared by name only, with why", async () => {
    const spec = vpsSpec();
    const f = new SystemdHost();
    f.on("current", { stdout: "1.0.0\n" }).on("plan.env", { stdout: `TOKEN ${"0".repeat(64)}\n` }).on("plan.unit", { stdout: "missing\n" }).on("plan.site", { stdout: "missing\n" });
    const p = await planWith(f, {}).plan!(spec, target(spec));
    expect(p.targets[0].env!.changes).toContainEqual({ key: "TOKEN", change: "unknown", secret: true, note: expect.stringMatching(/^not resolvable here: secret TOKEN \(env\): environment variable THE_TOKEN is not set/) });
    expect(renderPlanMarkdown("hello", [], [p])).toContain("? TOKEN (secret): not resolvable here");
    // Nothing was live before: every key is added and the artifact ships.
    const g = new SystemdHost();
    g.on("current", { stdout: "" }).on("plan.env", { stdout: "no-env\n" }).on("plan.unit", { stdout: "missing\n" }).on("plan.site", { stdout: "missing\n" });
    const q = await planWith(g, {}).plan!(spec, target(spec));
    expect(q.targets[0].env!.changes.map((c) => c.change)).toEqual(["added", "added", "added"]);
    expect(renderPlanMarkdown("hello", [], [q])).toContain("yes (nothing deployed yet)");
  });
});
