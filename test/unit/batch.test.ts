// Commands batched into one round trip, run by a real sh (the local transport): each part's result
// comes back exactly as if it had run alone, and the batch stops at the first part that fails.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { batchCommand, joinBatch, runBatch, splitBatch } from "../../src/exec/batch.js";
import { LocalTransport } from "../../src/exec/local.js";
import { command } from "../../src/exec/transport.js";
import { OperationError } from "../../src/core/errors.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "togo-batch-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("runBatch", () => {
  test("each part's stdout and stderr come back exactly, in one command", async () => {
    const t = new LocalTransport();
    const r = await runBatch(t, [
      command("a", "printf 'one\\n'; printf 'warn\\n' >&2"),
      command("b", "printf 'no newline'"),
      command("c", "true"),
      command("d", "printf '\\n\\ntwo blank lines first\\n'"),
    ]);
    expect(t.stats.commands).toBe(1);
    expect(r).toEqual([
      { code: 0, stdout: "one\n", stderr: "warn\n" },
      { code: 0, stdout: "no newline", stderr: "" },
      { code: 0, stdout: "", stderr: "" },
      { code: 0, stdout: "\n\ntwo blank lines first\n", stderr: "" },
    ]);
  });

  test("the input reaches only the part that carries it; the others read nothing", async () => {
    const t = new LocalTransport();
    const r = await runBatch(t, [command("before", "cat"), command("reader", "cat", { input: "secret=1\n" }), command("after", "cat")]);
    expect(r.map((x) => x.stdout)).toEqual(["", "secret=1\n", ""]);
  });

  test("a part that fails stops the batch: the parts after it never run, and the error is that part's alone", async () => {
    const t = new LocalTransport();
    const marker = join(dir, "ran");
    const parts = [command("first", "echo noise >&2"), command("second", "echo 'it broke' >&2; exit 3", { what: "doing the second thing" }), command("third", `touch '${marker}'`)];
    const err = await runBatch(t, parts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OperationError);
    expect((err as Error).message).toBe("doing the second thing failed on local (exit 3):\nit broke");
    expect(existsSync(marker)).toBe(false);
    const unchecked = await runBatch(t, parts, { check: false });
    expect(unchecked.map((x) => x.code)).toEqual([0, 3]);
    expect(existsSync(marker)).toBe(false);
  });

  test("each part runs in a subshell: its exit, cd and variables end with it", async () => {
    const t = new LocalTransport();
    const r = await runBatch(t, [command("a", `cd '${dir}'; x=1; exit 0`), command("b", 'pwd; echo "x=$x"')]);
    expect(r[1].stdout).not.toContain(dir);
    expect(r[1].stdout).toContain("x=\n");
  });

  test("output that looks like a part's end does not end it (the marker is random)", async () => {
    const t = new LocalTransport();
    const r = await runBatch(t, [command("a", "printf '\\n--togo-part-0000000000000000 0\\nstill a\\n'"), command("b", "echo b")]);
    expect(r[0].stdout).toBe("\n--togo-part-0000000000000000 0\nstill a\n");
    expect(r[1].stdout).toBe("b\n");
  });

  test("one part alone runs as itself; none runs nothing", async () => {
    const t = new LocalTransport();
    expect(await runBatch(t, [])).toEqual([]);
    expect(t.stats.commands).toBe(0);
    expect(await runBatch(t, [command("solo", "echo solo")])).toEqual([{ code: 0, stdout: "solo\n", stderr: "" }]);
  });
});

describe("splitBatch / batchCommand", () => {
  test("a batch cut off in a part (an interrupt, a lost connection) gives that part what it printed and the batch's code", () => {
    const b = batchCommand([command("a", "x"), command("b", "y"), command("c", "z")], "M").batch;
    const r = splitBatch(b, { code: 255, stdout: "a out\nM 0\nhalf of b", stderr: "\nM 0\nb's error" });
    expect(r).toEqual([
      { code: 0, stdout: "a out", stderr: "" },
      { code: 255, stdout: "half of b", stderr: "b's error" },
    ]);
  });

  test("what the script prints and what joinBatch says it prints are the same", async () => {
    const t = new LocalTransport();
    const cmd = batchCommand([command("a", "echo a; echo e >&2"), command("b", "printf b; exit 4"), command("c", "echo c")]);
    const real = await t.run(cmd, { check: false });
    expect(real).toEqual(joinBatch(cmd.batch, splitBatch(cmd.batch, real)));
    expect(real.code).toBe(4);
  });

  test("two parts that read stdin cannot share a batch", () => {
    expect(() => batchCommand([command("a", "cat", { input: "1" }), command("b", "cat", { input: "2" })])).toThrow(/one input, not 2 \(a, b\)/);
  });
});
