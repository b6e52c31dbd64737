// A real Caddy on loopback as a server's would be after togo's bootstrap: its Caddyfile imports a
// sites folder the deploy user owns, so a deploy writes its site there and reloads Caddy itself.
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, tempDir } from "./index.js";

export interface SiteCaddy {
  httpPort: number;
  /** The folder the Caddyfile imports (`*.caddy`), owned by the deploy user. */
  sites: string;
  caddyfile: string;
  stop(): Promise<void>;
}

/** Starts Caddy (admin on a free loopback port) and waits until its admin API answers. */
export async function startSiteCaddy(owner: number): Promise<SiteCaddy> {
  const [httpPort, adminPort] = [await freePort(), await freePort()];
  const root = tempDir("togo-caddy-");
  chmodSync(root, 0o755);
  const sites = join(root, "togo.d");
  mkdirSync(sites);
  chownSync(sites, owner, owner); // what the bootstrap does as root on a real server
  const caddyfile = join(root, "Caddyfile");
  writeFileSync(caddyfile, `{\n\tauto_https off\n\tadmin 127.0.0.1:${adminPort}\n\thttp_port ${httpPort}\n}\n\nimport ${sites}/*.caddy\n`);
  chmodSync(caddyfile, 0o644);
  const xdg = tempDir("togo-caddy-xdg-");
  const caddy: ChildProcess = spawn("caddy", ["run", "--config", caddyfile, "--adapter", "caddyfile"], {
    env: { ...process.env, XDG_CONFIG_HOME: xdg, XDG_DATA_HOME: xdg, HOME: xdg },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  caddy.stderr?.on("data", (d) => (log += d));
  const stop = async () => {
    if (caddy.pid && caddy.exitCode === null) {
      process.kill(caddy.pid, "SIGTERM");
      await new Promise((r) => caddy.once("exit", r));
    }
  };
  for (let i = 0; ; i++) {
    if (await fetch(`http://127.0.0.1:${adminPort}/config/`).then(() => true, () => false)) break;
    if (caddy.exitCode !== null || i >= 400) {
      await stop();
      throw new Error(`caddy did not start: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return { httpPort, sites, caddyfile, stop };
}
