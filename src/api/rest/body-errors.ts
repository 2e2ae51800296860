import { createContextKey } from "@connectrpc/connect";

/**
 * JSON bodies can fail per element (an `occurred_at` that is no timestamp)
 * where protobuf cannot. The REST transcoder substitutes an empty element
 * and passes the reason here, by index, so the handler rejects exactly that
 * element and accepts the others.
 */
export const bodyErrorsKey = createContextKey<ReadonlyMap<number, string> | undefined>(undefined, {
  description: "per-element JSON errors of a transcoded REST body",
});
