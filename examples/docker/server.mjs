// The demo app for the docker driver: listens on $PORT on every interface of the container (a
// published port reaches the container's address, not its loopback) and answers /up.
import { createServer } from "node:http";

const port = Number(process.env.PORT ?? 3000);
const version = process.env.TOGO_VERSION ?? "dev";
const greeting = process.env.GREETING ?? "hello";

const server = createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
  res.end(req.url === "/up" ? "ok\n" : `${greeting} from ${version}\n`);
});

server.listen(port, "0.0.0.0", () => console.log(`hello ${version} listening on :${port}`));
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => server.close(() => process.exit(0)));
