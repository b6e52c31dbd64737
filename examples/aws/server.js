// A tiny app with no dependencies: it listens on $PORT and answers /up for health checks.
import { createServer } from "node:http";

const port = Number(process.env.PORT ?? 3000);
const version = process.env.TOGO_VERSION ?? "dev";
const greeting = process.env.GREETING ?? "hello";

const server = createServer((req, res) => {
  if (req.url === "/up") {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("ok\n");
    return;
  }
  res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
  res.end(`${greeting} from ${version}\n`);
});

server.listen(port, "127.0.0.1", () => console.log(`hello ${version} listening on 127.0.0.1:${port}`));
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => server.close(() => process.exit(0)));
