import { describe, expect, it } from "vitest";
import { PlainHeaders } from "./plain-headers.ts";

/** What a reader of `Headers` can see of `h`. */
function seen(h: Headers, names: readonly string[]) {
  return {
    entries: [...h],
    keys: [...h.keys()],
    values: [...h.values()],
    forEach: (() => {
      const out: string[] = [];
      h.forEach((v, k) => {
        out.push(`${k}=${v}`);
      });
      return out;
    })(),
    got: names.map((n) => [h.get(n), h.has(n)]),
    cookies: h.getSetCookie(),
  };
}

describe("PlainHeaders", () => {
  it("reads and writes as the Fetch API's Headers does", () => {
    const init = { "content-type": "application/grpc", "X-Request-Id": "r1", te: "trailers" };
    const plain = new PlainHeaders(init);
    const fetchHeaders = new Headers(init);
    const names = ["content-type", "Content-Type", "x-request-id", "x-none", "set-cookie", "x-a"];
    expect(seen(plain, names)).toEqual(seen(fetchHeaders, names));
    for (const h of [plain, fetchHeaders]) {
      h.set("X-A", "1");
      h.append("x-a", "2");
      h.append("set-cookie", "a=1");
      h.append("set-cookie", "b=2");
      h.delete("TE");
      h.set("content-type", "application/grpc+proto");
    }
    expect(seen(plain, names)).toEqual(seen(fetchHeaders, names));
  });

  it("leaves pseudo-headers out and keeps Node's lists, as Node's writeHead takes them", () => {
    const plain = new PlainHeaders({
      ":path": "/tally.v1.IngestService/Ingest",
      ":method": "POST",
      "set-cookie": ["a=1", "b=2"],
      "x-api-key": "k",
    });
    expect(plain.get(":path")).toBeNull();
    expect(plain.getSetCookie()).toEqual(["a=1", "b=2"]);
    plain.append("x-api-key", "j");
    expect(plain.node).toEqual({ "set-cookie": ["a=1", "b=2"], "x-api-key": ["k", "j"] });
  });
});
