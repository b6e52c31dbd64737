// A recording fake Transport for unit tests of the pipelines' failure branches: it records every
// Command by op, answers from per-op responders (default: exit 0, no output), and serves health
// probes from a real HTTP server on 127.0.0.1 whose answer per target port the test decides.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { joinBatch, type Batch } from "../../src/exec/batch.js";
import { checkResult } from "../../src/exec/local.js";
import type { Command, CommandResult, HostFacts, RunOptions, Transport, UploadOptions, UploadResult } from "../../src/exec/transport.js";

export type Answer = Partial<CommandResult> | ((cmd: Command, nth: number) => Partial<CommandResult> | Promise<Partial<CommandResult>>);

export interface Call {
  op: string;
  script: string;
  input?: string;
}

export class FakeTransport implements Transport {
  readonly target = "deploy@fake:22";
  readonly stats = { commands: 0, bytesUploaded: 0, connections: 1, sessions: 0 };
  readonly calls: Call[] = [];
  /** The ops of each batch, in order (a batch is one round trip). */
  readonly batches: string[][] = [];
  readonly stopped: string[] = [];
  private readonly answers = new Map<string, Answer>();
  private readonly counts = new Map<string, number>();
  /** HTTP status a probe of `port` gets (default 200); the test changes it as the "host" changes. */
  health: (port: number) => number = () => 200;
  private server?: Server;
  private base?: string;

  /** Answers every later Command with this op. */
  on(op: string, answer: Answer): this {
    this.answers.set(op, answer);
    return this;
  }

  ops(): string[] {
    return this.calls.map((c) => c.op);
  }

  /** The calls of one op, in order. */
  of(op: string): Call[] {
    return this.calls.filter((c) => c.op === op);
  }

  /** One round trip: a batch's parts are recorded and answered one by one, and it stops at the first that fails. */
  async run(cmd: Command, opts: RunOptions = {}): Promise<CommandResult> {
    this.stats.commands++;
    const batch = (cmd as { batch?: Batch }).batch;
    if (!batch) return checkResult(await this.answer(cmd), this.target, cmd, opts);
    this.batches.push(batch.parts.map((p) => p.op));
    const results: CommandResult[] = [];
    for (const part of batch.parts) {
      const r = await this.answer(part);
      results.push(r);
      if (r.code !== 0) break;
    }
    return checkResult(joinBatch(batch, results), this.target, cmd, opts);
  }

  private async answer(cmd: Command): Promise<CommandResult> {
    this.calls.push({ op: cmd.op, script: cmd.script, ...(cmd.input === undefined ? {} : { input: cmd.input }) });
    const nth = this.counts.get(cmd.op) ?? 0;
    this.counts.set(cmd.op, nth + 1);
    const a = this.answers.get(cmd.op);
    const r = typeof a === "function" ? await a(cmd, nth) : (a ?? {});
    return { code: r.code ?? 0, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  }

  async interactive(cmd: Command): Promise<number> {
    return (await this.run(cmd, { check: false })).code;
  }

  async facts(): Promise<HostFacts> {
    await this.run({ op: "host.facts", script: "" });
    return { home: "/home/deploy", systemd: false, userSystemd: false, caddy: false, rsync: true };
  }

  async upload(localPath: string, remotePath: string, opts: UploadOptions = {}): Promise<UploadResult> {
    const from = opts.linkDest?.length ? ` (linking ${opts.linkDest.join(" ")})` : "";
    this.calls.push({ op: "upload", script: `${localPath} -> ${remotePath}${from}` });
    this.stats.bytesUploaded += 10;
    return { bytes: 10, files: 1 };
  }

  async reach(port: number): Promise<string> {
    if (!this.server) {
      this.server = createServer((req, res) => {
        const p = Number(/^\/p(\d+)\//.exec(req.url ?? "")?.[1]);
        res.writeHead(this.health(p));
        res.end();
      });
      await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
      this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    }
    return `${this.base}/p${port}`;
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server = undefined;
  }
}
