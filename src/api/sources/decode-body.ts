import { gunzipSync } from "node:zlib";
import LZString from "lz-string";

/** A body that could not be read: its status (400, 413) and why. */
export class BodyError extends Error {
  override name = "BodyError";
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** What a source's request carries its payload in. */
export interface RawPayload {
  /** The body as sent (empty for GET). */
  body: Buffer;
  contentType: string;
  contentEncoding: string;
  query: URLSearchParams;
}

/**
 * The JSON an SDK sent, however it packed it: gzip (by Content-Encoding,
 * PostHog's `compression=gzip-js`, or the magic bytes), PostHog's
 * `compression=lz64` (lz-string) or base64, a `data` form field or
 * `GET ?data=`, JSON sent as text/plain. Decompressed, it may be at most
 * `maxBytes` long (413 naming the cap).
 */
export function decodePayload(raw: RawPayload, maxBytes: number): unknown {
  const compression = raw.query.get("compression") ?? "";
  let bytes = raw.body;
  // The HTTP body's own encoding first (axios, say, labels a gzipped body as a form).
  if (/gzip/i.test(raw.contentEncoding) || isGzip(bytes)) bytes = gunzip(bytes, maxBytes);
  let text = bytes.toString("utf8");
  const form = raw.contentType.startsWith("application/x-www-form-urlencoded") && !looksJson(text);
  if (form || bytes.length === 0) {
    const data =
      (form ? new URLSearchParams(bytes.toString("latin1")).get("data") : null) ??
      raw.query.get("data");
    if (data === null) throw new BodyError(400, "body: empty (send JSON, or a data field)");
    text = data;
  }
  // Then PostHog's packing of the JSON text: gzip or lz-string, each as base64 in a form.
  if (!looksJson(text) && (compression === "gzip-js" || compression === "gzip")) {
    text = gunzip(Buffer.from(text, "base64"), maxBytes).toString("utf8");
  } else if (!looksJson(text) && compression === "lz64") {
    const decoded = LZString.decompressFromBase64(text);
    if (!decoded) throw new BodyError(400, "body: compression=lz64, but it does not decode");
    text = decoded;
  } else if (!looksJson(text) && text.trim() !== "") {
    const decoded = Buffer.from(text.trim(), "base64").toString("utf8");
    if (looksJson(decoded)) text = decoded;
  }
  if (Buffer.byteLength(text) > maxBytes) {
    throw new BodyError(413, `body: larger than ${maxBytes} bytes once decompressed`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BodyError(400, `body: not JSON (${(err as Error).message})`);
  }
}

function isGzip(bytes: Buffer): boolean {
  return bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function looksJson(text: string): boolean {
  const first = text.trimStart()[0];
  return first === "{" || first === "[";
}

function gunzip(bytes: Buffer, maxBytes: number): Buffer {
  try {
    return gunzipSync(bytes, { maxOutputLength: maxBytes });
  } catch (err) {
    if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
      throw new BodyError(413, `body: larger than ${maxBytes} bytes once decompressed`);
    }
    throw new BodyError(400, `body: gzip that does not decompress (${(err as Error).message})`);
  }
}
