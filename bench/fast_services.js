// The seed's three text services on node's http module (keep-alive), for bench/seed_workflow.py:
// fast enough that the benchmark measures machinery rather than the services.
//
//   node bench/fast_services.js --host 127.0.0.1 --base-port 5001
//
// upper on base-port, reverse on base-port + 1, space-counter on base-port + 2; each answers
// POST /event {"message": str} with its outputs only, as examples/services/textservices.py does, and
// GET /healthcheck with 200.
"use strict";
const http = require("http");

const args = process.argv.slice(2);
function option(name, fallback) {
  const at = args.indexOf(name);
  return at >= 0 && at + 1 < args.length ? args[at + 1] : fallback;
}
const host = option("--host", "127.0.0.1");
const basePort = Number(option("--base-port", "5001"));

const services = [
  ["upper", (message) => ({ message: message.toUpperCase() })],
  ["reverse", (message) => ({ message: Array.from(message).reverse().join("") })],
  ["space-counter", (message) => ({ space_count: message.split(" ").length - 1 })],
];

services.forEach(([name, transform], offset) => {
  const server = http.createServer((request, response) => {
    if (request.method === "GET" && request.url === "/healthcheck") {
      response.writeHead(200, { "Content-Type": "application/json", "Content-Length": 2 });
      response.end("{}");
      return;
    }
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      let status = 200;
      let reply;
      try {
        const document = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        if (typeof document.message !== "string") throw new Error("message must be a string");
        reply = transform(document.message);
      } catch (error) {
        status = 400;
        reply = { error: String(error.message || error) };
      }
      const body = Buffer.from(JSON.stringify(reply));
      response.writeHead(status, { "Content-Type": "application/json", "Content-Length": body.length });
      response.end(body);
    });
  });
  server.keepAliveTimeout = 60000;
  server.headersTimeout = 61000;
  server.on("connection", (socket) => socket.setNoDelay(true));
  server.listen(basePort + offset, host, () => console.error(`${name} on http://${host}:${basePort + offset}`));
});

for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
