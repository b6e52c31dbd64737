// The port togo dev serves on: a TCP forwarder to whichever app process is live. A new process is
// started on a private port and health-checked while the old one keeps serving; switching is then
// one assignment, so a change that breaks the app never takes the last good process down.
import { connect, createServer, type Server, type Socket } from "node:net";

function plainResponse(status: string, body: string): string {
  return `HTTP/1.1 ${status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nretry-after: 1\r\nconnection: close\r\n\r\n${body}`;
}

export class DevProxy {
  private target?: number;
  private why = "starting";
  private readonly server: Server;
  /** Open client connections by the app port they were forwarded to. */
  private readonly open = new Map<number, Set<Socket>>();
  /** Every client connection, answered or forwarded. */
  private readonly clients = new Set<Socket>();

  constructor() {
    this.server = createServer((client) => this.forward(client));
  }

  listen(port: number, host = "127.0.0.1"): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
  }

  /** New connections go to `port`; without one they get a 503 saying `why`. */
  point(port: number | undefined, why = ""): void {
    this.target = port;
    this.why = why;
  }

  /** Closes the connections still forwarded to `port` (its process is gone). */
  drop(port: number): void {
    for (const s of this.open.get(port) ?? []) s.destroy();
    this.open.delete(port);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.clients) s.destroy();
      this.open.clear();
    });
  }

  private forward(client: Socket): void {
    const port = this.target;
    this.clients.add(client);
    client.on("close", () => this.clients.delete(client));
    client.on("error", () => client.destroy());
    if (port === undefined) {
      // Read (and drop) the request, so the client's close is seen and the socket goes away.
      client.resume();
      client.end(plainResponse("503 Service Unavailable", `togo dev: the app is not serving: ${this.why}\n`));
      return;
    }
    const upstream = connect(port, "127.0.0.1");
    let connected = false;
    const set = this.open.get(port) ?? new Set<Socket>();
    this.open.set(port, set);
    set.add(client);
    upstream.on("connect", () => {
      connected = true;
    });
    upstream.on("error", () => {
      if (!connected) client.end(plainResponse("502 Bad Gateway", "togo dev: the app did not accept the connection\n"));
      else client.destroy();
    });
    client.on("close", () => {
      set.delete(client);
      upstream.destroy();
    });
    upstream.on("close", () => {
      if (connected) client.end();
    });
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
