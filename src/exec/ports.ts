// Ports on this machine.
import { createServer } from "node:net";

/** A TCP port free on 127.0.0.1 right now (the kernel picks it; the caller binds it soon after). */
export function freeLocalPort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Runs `use` on a free local port; when it fails (the port was taken between the kernel's answer
 * and the caller's bind) it tries again on another, `attempts` times in all. Returns the last try.
 */
export async function onFreeLocalPort<R extends { ok: boolean }>(use: (port: number) => Promise<R>, attempts = 3, pick: () => Promise<number> = freeLocalPort): Promise<R & { port: number }> {
  let last: (R & { port: number }) | undefined;
  for (let i = 0; i < attempts && !last?.ok; i++) {
    const port = await pick();
    last = { ...(await use(port)), port };
  }
  return last!;
}
