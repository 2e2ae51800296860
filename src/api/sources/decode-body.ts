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
  let fromForm = false;
  if (raw.contentType.startsWith("application/x-www-form-urlencoded") || bytes.length === 0) {
    const data =
      (bytes.length > 0 ? new URLSearchParams(bytes.toString("latin1")).get("data") : null) ??
      raw.query.get("data");
    if (data === null) throw new BodyError(400, "body: empty (send JSON, or a data field)");
    bytes = Buffer.from(data, "latin1");
    fromForm = true;
  }
  const gzipped =
    /gzip/i.test(raw.contentEncoding) ||
    compression === "gzip-js" ||
    compression === "gzip" ||
    (bytes[0] === 0x1f && bytes[1] === 0x8b);
  let text: string;
  if (gzipped) {
    text = gunzip(fromForm ? Buffer.from(bytes.toString("latin1"), "base64") : bytes, maxBytes);
  } else if (compression === "lz64") {
    const decoded = LZString.decompressFromBase64(
      fromForm ? bytes.toString("latin1") : bytes.toString("utf8"),
    );
    if (!decoded) throw new BodyError(400, "body: compression=lz64, but it does not decode");
    text = decoded;
  } else {
    text = bytes.toString("utf8");
  }
  if (Buffer.byteLength(text) > maxBytes) {
    throw new BodyError(413, `body: larger than ${maxBytes} bytes once decompressed`);
  }
  const trimmed = text.trimStart();
  // posthog-js sends base64 of the JSON in a form's data field.
  if (trimmed !== "" && trimmed[0] !== "{" && trimmed[0] !== "[") {
    const decoded = Buffer.from(trimmed, "base64").toString("utf8");
    if (decoded.trimStart().startsWith("{") || decoded.trimStart().startsWith("[")) text = decoded;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BodyError(400, `body: not JSON (${(err as Error).message})`);
  }
}

function gunzip(bytes: Buffer, maxBytes: number): string {
  try {
    return gunzipSync(bytes, { maxOutputLength: maxBytes }).toString("utf8");
  } catch (err) {
    if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
      throw new BodyError(413, `body: larger than ${maxBytes} bytes once decompressed`);
    }
    throw new BodyError(400, `body: gzip that does not decompress (${(err as Error).message})`);
  }
}
