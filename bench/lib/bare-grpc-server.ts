/**
 * The floor of the unary scenario: a bare HTTP/2 server, in its own process
 * as the service is, that answers every call OK with an empty message and
 * does nothing else. What the load generator and the machine cost alone.
 * Usage: node bench/lib/bare-grpc-server.ts PORT
 */
import * as http2 from "node:http2";

const EMPTY_MESSAGE = Buffer.from([0, 0, 0, 0, 0]); // uncompressed, length 0

const server = http2.createServer((req, res) => {
  req.resume();
  req.once("end", () => {
    res.writeHead(200, { "content-type": "application/grpc+proto" });
    res.addTrailers({ "grpc-status": "0" });
    res.end(EMPTY_MESSAGE);
  });
});
server.listen(Number(process.argv[2]), "127.0.0.1", () => process.send?.("listening"));
process.once("SIGTERM", () => server.close(() => process.exit(0)));
