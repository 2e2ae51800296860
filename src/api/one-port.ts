import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";

/** What an HTTP/2 client without TLS (h2c, prior knowledge) sends first. */
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

type Handler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

/**
 * Answers an HTTP/2 stream itself, without Node's compatibility API, or
 * returns false to leave it to the handler.
 */
export type StreamHandler = (
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
) => boolean;

/**
 * HTTP/1.1 and HTTP/2 without TLS on one port: a connection whose first
 * bytes are HTTP/2's preface goes to an HTTP/2 server, any other to an
 * HTTP/1.1 server, both answering with `handler`. The returned server
 * emits "connection" for each socket and "session" for each HTTP/2 one.
 *
 * Written here instead of with httpolyglot, which does the same but marks
 * each HTTP/2 socket as not a native stream (a workaround for HTTP/2 over
 * HTTP/2 proxying, which Tally does not do): Node then relayed every byte of
 * every gRPC connection through a JavaScript stream wrapper, about 10% of
 * the service's CPU end to end. Node reads what the sniffing put back
 * itself (Http2Session takes a socket's buffered bytes).
 *
 * An HTTP/2 stream goes to `onStream` first. Those it leaves get Node's
 * compatibility objects (request and response, each a stream over the
 * HTTP/2 stream) and go to `handler`, as Node's own HTTP/2 server would
 * give them. `onStream` answers plain gRPC unary calls: without those
 * objects, the service's main thread spent 8% less CPU a call at 2,000 and
 * 5,000 calls/s, and allocated 6% less.
 */
export function createOnePortServer(
  http2Options: http2.ServerOptions,
  handler: Handler,
  onStream: StreamHandler = () => false,
) {
  const h1 = http.createServer(handler);
  // No "request" listener: with one, Node would make the compatibility objects for every stream.
  const h2 = http2.createServer(http2Options);
  h2.on("stream", (stream, headers, _flags, rawHeaders) => {
    if (onStream(stream, headers)) return;
    const req = new http2.Http2ServerRequest(stream, headers, {}, rawHeaders);
    const res = new http2.Http2ServerResponse(stream);
    // What Node's server does before its "request" event (lib/internal/http2/core.js).
    if (headers[":method"] === "CONNECT") {
      res.statusCode = 405;
      res.end();
    } else if (headers.expect !== undefined && headers.expect !== "100-continue") {
      res.statusCode = 417;
      res.end();
    } else {
      if (headers.expect !== undefined) res.writeContinue();
      handler(req, res);
    }
  });
  const server = net.createServer((socket) => route(socket, Buffer.alloc(0)));
  h2.on("session", (session) => server.emit("session", session));

  function route(socket: net.Socket, seen: Buffer) {
    // Until a server has it, an error (a reset while sniffing) only drops the connection.
    const onError = () => socket.destroy();
    socket.once("error", onError);
    const chunk = socket.read() as Buffer | null;
    const data = chunk === null ? seen : Buffer.concat([seen, chunk]);
    const n = Math.min(data.length, PREFACE.length);
    const maybeHttp2 = data.subarray(0, n).equals(PREFACE.subarray(0, n));
    if (data.length === 0 || (maybeHttp2 && data.length < PREFACE.length)) {
      socket.once("readable", () => {
        socket.off("error", onError);
        route(socket, data);
      });
      return;
    }
    socket.off("error", onError);
    socket.unshift(data);
    (maybeHttp2 ? h2 : h1).emit("connection", socket);
  }
  return server;
}
