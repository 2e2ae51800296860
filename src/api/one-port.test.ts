import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import * as net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../test/helpers.ts";
import { createOnePortServer } from "./one-port.ts";

describe("one port for HTTP/1.1 and HTTP/2 (h2c)", () => {
  const sessionSockets: string[] = [];
  const server = createOnePortServer(
    {},
    (req, res) => {
      res.end(`${req.httpVersion} ${req.method} ${req.url}`);
    },
    // Streams to /raw are answered on the stream itself; the others are left to the handler.
    (stream, headers) => {
      if (headers[":path"] !== "/raw") return false;
      stream.respond({ ":status": 200 });
      stream.end("raw stream");
      return true;
    },
  );
  server.on("session", (session: http2.ServerHttp2Session) => {
    sessionSockets.push((session.socket as object).constructor.name);
  });
  let port = 0;
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  it("answers HTTP/1.1", async () => {
    const res = await fetch(`http://127.0.0.1:${port}/one?x=1`, { method: "POST", body: "b" });
    expect(await res.text()).toBe("1.1 POST /one?x=1");
  });

  it("answers HTTP/2 with prior knowledge, on the native socket (no JavaScript stream in between)", async () => {
    const client = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const stream = client.request({ ":path": "/two" });
      let body = "";
      stream.setEncoding("utf8");
      stream.on("data", (c: string) => {
        body += c;
      });
      await new Promise((r) => stream.on("end", r));
      expect(body).toBe("2.0 GET /two");
      // httpolyglot's workaround wrapped it in a JSStreamSocket, which relayed every byte in JavaScript.
      expect(sessionSockets.at(-1)).toMatch(/^(bound )?Socket$/);
    } finally {
      client.close();
    }
  });

  it("gives HTTP/2 streams to the stream handler first, and those it leaves to the handler as Node's server would", async () => {
    const client = http2.connect(`http://127.0.0.1:${port}`);
    /** Status and body of one HTTP/2 request. */
    const ask = async (headers: http2.OutgoingHttpHeaders, body?: string) => {
      const stream = client.request(headers, { endStream: body === undefined });
      if (body !== undefined) stream.end(body);
      const status = await new Promise<number>((r) =>
        stream.once("response", (h) => r(Number(h[":status"]))),
      );
      let text = "";
      stream.setEncoding("utf8");
      stream.on("data", (c: string) => {
        text += c;
      });
      await new Promise((r) => stream.on("close", r));
      return `${status} ${text}`;
    };
    try {
      expect(await ask({ ":path": "/raw" })).toBe("200 raw stream");
      expect(await ask({ ":path": "/other" })).toBe("200 2.0 GET /other");
      expect(await ask({ ":path": "/c", ":method": "POST", expect: "100-continue" }, "b")).toBe(
        "200 2.0 POST /c",
      );
      // Node's HTTP/2 server answers these itself: 417 and 405.
      expect(await ask({ ":path": "/e", ":method": "POST", expect: "something" }, "b")).toBe(
        "417 ",
      );
      expect(await ask({ ":method": "CONNECT", ":authority": "example.com:443" })).toMatch(/^405/);
    } finally {
      client.close();
    }
  });

  it("routes a preface that arrives a few bytes at a time, and an HTTP/1.1 request starting like it", async () => {
    // HTTP/1.1 "PRINT" shares the preface's first three bytes.
    const h1 = await raw(port, ["PRI", "NT /three HTTP/1.1\r\nHost: x\r\n\r\n"], (b) =>
      b.includes("\r\n\r\n"),
    );
    expect(h1.toString("latin1")).toMatch(/^HTTP\/1\.1 \d{3}/);
    const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    const emptySettings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
    const h2 = await raw(
      port,
      [preface.slice(0, 5), preface.slice(5, 15), preface.slice(15), emptySettings],
      (b) => b.length >= 9, // one frame header
    );
    // The server's first frame: its SETTINGS (frame type 4 on stream 0).
    expect(h2[3]).toBe(4);
  });
});

/** Sends `parts` 20 ms apart on a new connection (so each is a read of its own); what came back, once `enough`. */
async function raw(
  port: number,
  parts: (string | Buffer)[],
  enough: (answer: Buffer) => boolean,
): Promise<Buffer> {
  const socket = net.connect(port, "127.0.0.1");
  socket.setNoDelay(true);
  const answer: Buffer[] = [];
  socket.on("data", (c: Buffer) => answer.push(c));
  for (const p of parts) {
    socket.write(p);
    await new Promise((r) => setTimeout(r, 20));
  }
  try {
    return await waitFor(async () => Buffer.concat(answer), enough, 5000);
  } finally {
    socket.destroy();
  }
}
