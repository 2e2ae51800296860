import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import {
  Code,
  ConnectError,
  createContextValues,
  createServiceImplSpec,
  type HandlerContext,
  type ServiceImpl,
} from "@connectrpc/connect";
import { describe, expect, it, vi } from "vitest";
import { IngestService } from "../../gen/tally/v1/ingest_pb.js";
import { createGrpcUnaryHandlers } from "./grpc-unary.ts";

describe("createGrpcUnaryHandlers", () => {
  const lean = createGrpcUnaryHandlers({
    services: [
      createServiceImplSpec<typeof IngestService>(IngestService, {
        ingest: async () => ({ $typeName: "tally.v1.IngestResponse", accepted: 0n, rejected: [] }),
      }),
    ],
    interceptors: [],
    readMaxBytes: 1024,
  });
  const INGEST = "/tally.v1.IngestService/Ingest";
  /** An HTTP/2 stream's headers. */
  const request = (headers: Record<string, string>, path = INGEST, method = "POST") => ({
    ":method": method,
    ":path": path,
    ...headers,
  });

  it("takes plain binary gRPC calls of unary methods", () => {
    expect(lean.for(request({ "content-type": "application/grpc" }))).toBeTypeOf("function");
    const proto = request({
      "content-type": "application/grpc+proto",
      "grpc-encoding": "identity",
    });
    expect(lean.for(proto)).toBeTypeOf("function");
  });

  it("leaves everything else to connect's router", () => {
    const grpc = { "content-type": "application/grpc" };
    for (const headers of [
      request({ ...grpc, "grpc-encoding": "gzip" }),
      request({ "content-type": "application/grpc+json" }),
      request({ "content-type": "application/grpc-web+proto" }),
      request({ "content-type": "application/proto" }),
      request(grpc, INGEST, "GET"),
      // Streams, and methods without an implementation here.
      request(grpc, "/tally.v1.IngestService/IngestStream"),
      request(grpc, "/tally.v1.IngestService/TailEvents"),
      request(grpc, "/tally.v1.AnalyticsService/GetDau"),
    ]) {
      expect(lean.for(headers), JSON.stringify(headers)).toBeUndefined();
    }
  });

  it("lets go of a call whose client resets the stream mid-message, calling nothing", async () => {
    let called = false;
    const handlers = createGrpcUnaryHandlers({
      services: [
        createServiceImplSpec<typeof IngestService>(IngestService, {
          ingest: async () => {
            called = true;
            return { $typeName: "tally.v1.IngestResponse", accepted: 0n, rejected: [] };
          },
        }),
      ],
      interceptors: [],
      readMaxBytes: 1024,
    });
    let answered: Promise<void> | undefined;
    const server = http2.createServer();
    server.on("stream", (stream, headers) => {
      answered = handlers.for(headers)?.(stream, headers, createContextValues());
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    try {
      const stream = session.request({
        ":method": "POST",
        ":path": INGEST,
        "content-type": "application/grpc",
      });
      stream.on("error", () => {});
      // An envelope that promises 100 bytes, and 10 of them.
      const head = Buffer.alloc(5);
      head.writeUInt32BE(100, 1);
      stream.write(Buffer.concat([head, Buffer.alloc(10)]));
      await vi.waitFor(() => expect(answered).toBeDefined());
      stream.close(http2.constants.NGHTTP2_CANCEL);
      // A handler still waiting for the rest would hold this (and the test) forever.
      await answered;
      expect(called).toBe(false);
    } finally {
      session.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  /** An enveloped IngestRequest of `n` bytes (one unknown field, 15, padding it out). */
  function validMessage(n: number): Buffer {
    const pad = n - 3; // tag, and a two-byte length (n from 131 to 16,386)
    const message = Buffer.concat([
      Buffer.from([0x7a, (pad & 0x7f) | 0x80, pad >> 7]),
      Buffer.alloc(pad),
    ]);
    const head = Buffer.alloc(5);
    head.writeUInt32BE(message.length, 1);
    return Buffer.concat([head, message]);
  }

  /** A server answering INGEST through the lean path, and a client session to it. */
  async function leanServer(
    limits: { readMaxBytes: number; connectionMaxBytes?: number },
    ingest: ServiceImpl<typeof IngestService>["ingest"] = async () => ({
      $typeName: "tally.v1.IngestResponse",
      accepted: 0n,
      rejected: [],
    }),
  ) {
    const handlers = createGrpcUnaryHandlers({
      services: [createServiceImplSpec<typeof IngestService>(IngestService, { ingest })],
      interceptors: [],
      ...limits,
    });
    const server = http2.createServer();
    server.on("stream", (stream, headers) => {
      void handlers.for(headers)?.(stream, headers, createContextValues(), { "x-answer": "yes" });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return {
      /** Starts a call that sends `sent` of the `promised` bytes its envelope announces; resolves to its status. */
      call(promised: number, sent: number, headers: Record<string, string> = {}) {
        const stream = session.request({
          ":method": "POST",
          ":path": INGEST,
          "content-type": "application/grpc",
          ...headers,
        });
        stream.on("error", () => {});
        const whole = validMessage(promised);
        stream.write(whole.subarray(0, 5 + sent));
        const answer = new Promise<Record<string, unknown>>((resolve) => {
          let all: Record<string, unknown> = {};
          stream.on("response", (h) => {
            all = { ...all, ...h };
          });
          stream.on("trailers", (t) => {
            all = { ...all, ...t };
          });
          // The answer's end (the call may still be open on the client's side).
          stream.on("end", () => resolve(all));
          stream.resume();
        });
        /** Sends the rest of the message. */
        const finish = () => stream.end(whole.subarray(5 + sent));
        return { stream, answer, finish };
      },
      async close() {
        session.destroy();
        await new Promise((r) => server.close(r));
      },
    };
  }

  it("ends a call whose deadline passes while its message is still arriving: DEADLINE_EXCEEDED", async () => {
    const server = await leanServer({ readMaxBytes: 1024 });
    try {
      // 10 of 100 bytes, and then nothing: only the deadline can end it.
      const { answer } = server.call(100, 10, { "grpc-timeout": "200m" });
      expect(await answer).toMatchObject({ "grpc-status": "4" });
    } finally {
      await server.close();
    }
  });

  it("bounds the bytes one connection may have gathered across its calls: RESOURCE_EXHAUSTED past it", async () => {
    const server = await leanServer({ readMaxBytes: 1000, connectionMaxBytes: 2500 });
    try {
      // Three calls each send 900 of their 1,000 bytes and wait: the third passes 2,500.
      const calls = [1, 2, 3].map(() => server.call(1000, 900));
      const third = await (calls[2] as (typeof calls)[number]).answer;
      expect(third).toMatchObject({ "grpc-status": "8" });
      expect(decodeURIComponent(String(third["grpc-message"]))).toMatch(
        /more than 2500 bytes of requests at once/,
      );
      // The first two finish their messages and are answered; room is given back.
      for (const c of calls.slice(0, 2)) c.finish();
      for (const c of calls.slice(0, 2))
        expect(await c.answer).toMatchObject({ "grpc-status": "0" });
      const later = server.call(1000, 1000);
      later.finish();
      expect(await later.answer).toMatchObject({ "grpc-status": "0" });
    } finally {
      await server.close();
    }
  });

  it("gives the handler the call's headers, and takes the headers and trailers it sets", async () => {
    let seen: Record<string, string | null> = {};
    const server = await leanServer({ readMaxBytes: 1024 }, async (_, ctx) => {
      seen = {
        custom: ctx.requestHeader.get("X-Custom"),
        path: ctx.requestHeader.get(":path"),
        contentType: ctx.requestHeader.get("content-type"),
      };
      ctx.responseHeader.set("x-echo", String(ctx.requestHeader.get("x-custom")));
      ctx.responseTrailer.append("x-note", "a");
      ctx.responseTrailer.append("x-note", "b");
      return { accepted: 1n };
    });
    try {
      const call = server.call(200, 200, { "x-custom": "hello" });
      call.finish();
      expect(await call.answer).toMatchObject({
        "content-type": "application/grpc+proto",
        "x-answer": "yes",
        "x-echo": "hello",
        "x-note": "a, b",
        "grpc-status": "0",
      });
      expect(seen).toEqual({ custom: "hello", path: null, contentType: "application/grpc" });
    } finally {
      await server.close();
    }
  });

  it("aborts the handler's signal when the deadline passes (DEADLINE_EXCEEDED), and once the call is over", async () => {
    const contexts: HandlerContext[] = [];
    const server = await leanServer({ readMaxBytes: 1024 }, async (_, ctx) => {
      contexts.push(ctx);
      if (ctx.timeoutMs() === undefined) return {};
      // Waits for the deadline, as a handler waiting on something slow would.
      await new Promise((r) => ctx.signal.addEventListener("abort", r));
      throw ctx.signal.reason;
    });
    try {
      const late = server.call(200, 200, { "grpc-timeout": "100m" });
      late.finish();
      expect(await late.answer).toMatchObject({ "grpc-status": "4" });
      const [lateCtx] = contexts;
      expect(ConnectError.from(lateCtx?.signal.reason).code).toBe(Code.DeadlineExceeded);

      const quick = server.call(200, 200);
      quick.finish();
      expect(await quick.answer).toMatchObject({ "grpc-status": "0" });
      const quickCtx = contexts[1];
      expect(quickCtx?.timeoutMs()).toBeUndefined();
      expect(quickCtx?.signal.aborted).toBe(true);
      expect(ConnectError.from(quickCtx?.signal.reason).code).toBe(Code.Canceled);
    } finally {
      await server.close();
    }
  });

  it("survives a client that resets the stream with an error while its call is being handled", async () => {
    let release = () => {};
    const handling = new Promise<void>((r) => {
      release = r;
    });
    let context: HandlerContext | undefined;
    const server = await leanServer({ readMaxBytes: 1024 }, async (_, ctx) => {
      context = ctx;
      await handling;
      return {};
    });
    try {
      const call = server.call(200, 200);
      call.finish();
      await vi.waitFor(() => expect(context).toBeDefined());
      // RST_STREAM with an error code: Node emits "error" on the server's stream, then "close".
      call.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      await vi.waitFor(() => expect(context?.signal.aborted).toBe(true));
      release();
      // The server still answers.
      const next = server.call(200, 200);
      next.finish();
      expect(await next.answer).toMatchObject({ "grpc-status": "0" });
    } finally {
      await server.close();
    }
  });
});
