import { gzipSync } from "node:zlib";
import LZString from "lz-string";
import { describe, expect, it } from "vitest";
import { type BodyError, decodePayload } from "./decode-body.ts";

const json = { api_key: "k", batch: [{ event: "e", distinct_id: "u" }] };
const text = JSON.stringify(json);
const decode = (
  body: string | Buffer,
  o: { type?: string; encoding?: string; query?: string; max?: number } = {},
) =>
  decodePayload(
    {
      body: Buffer.isBuffer(body) ? body : Buffer.from(body),
      contentType: o.type ?? "application/json",
      contentEncoding: o.encoding ?? "",
      query: new URLSearchParams(o.query ?? ""),
    },
    o.max ?? 1 << 20,
  );

describe("SDK bodies, however packed", () => {
  it("reads plain JSON, JSON sent as text/plain, and gzip by header or by its magic bytes", () => {
    expect(decode(text)).toEqual(json);
    expect(decode(text, { type: "text/plain" })).toEqual(json);
    expect(decode(gzipSync(text), { encoding: "gzip" })).toEqual(json);
    // axios labels a gzipped body as a form; the bytes say what it is.
    expect(decode(gzipSync(text), { type: "application/x-www-form-urlencoded" })).toEqual(json);
  });

  it("reads PostHog's packings: a data field or ?data= of base64, gzip-js, lz64", () => {
    const base64 = Buffer.from(text).toString("base64");
    const form = "application/x-www-form-urlencoded";
    expect(decode(`data=${encodeURIComponent(base64)}`, { type: form })).toEqual(json);
    expect(decode("", { query: `data=${encodeURIComponent(base64)}` })).toEqual(json);
    expect(decode(gzipSync(text), { query: "compression=gzip-js" })).toEqual(json);
    const gzBase64 = gzipSync(text).toString("base64");
    expect(
      decode(`data=${encodeURIComponent(gzBase64)}`, { type: form, query: "compression=gzip-js" }),
    ).toEqual(json);
    const lz = LZString.compressToBase64(text);
    expect(
      decode(`data=${encodeURIComponent(lz)}`, { type: form, query: "compression=lz64" }),
    ).toEqual(json);
  });

  it("refuses, naming why: broken gzip, lz64 that does not decode, too big once decompressed, not JSON", () => {
    const fails = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return [(err as BodyError).status, (err as BodyError).message];
      }
      return ["no error"];
    };
    expect(fails(() => decode(Buffer.from([0x1f, 0x8b, 1, 2]), { encoding: "gzip" }))).toEqual([
      400,
      expect.stringMatching(/^body: gzip that does not decompress/),
    ]);
    expect(
      fails(() =>
        decode("data=%%%", {
          type: "application/x-www-form-urlencoded",
          query: "compression=lz64",
        }),
      ),
    ).toEqual([400, "body: compression=lz64, but it does not decode"]);
    const big = gzipSync(JSON.stringify({ pad: "x".repeat(5000) }));
    expect(fails(() => decode(big, { encoding: "gzip", max: 1000 }))).toEqual([
      413,
      "body: larger than 1000 bytes once decompressed",
    ]);
    expect(fails(() => decode("{nope"))).toEqual([400, expect.stringMatching(/^body: not JSON/)]);
  });
});
