/**
 * What a failed insert says about its rows. `bad-data`: ClickHouse could not
 * read them (a parse or type error), so no retry will store them: the flush
 * is split to find the batch that carries them, and that batch alone is
 * dead-lettered. `retryable`: anything else (network, timeouts, too many
 * parts, memory, a server restarting, and schema faults too, which fail every
 * batch alike and are an operator's to mend): retried, then handed back to
 * the queue, never dead-lettered by the consumer itself.
 */
export type InsertErrorKind = "bad-data" | "retryable";

/** ClickHouse error types that mean the rows themselves are unreadable. */
const BAD_DATA = new Set([
  "INCORRECT_DATA",
  "TYPE_MISMATCH",
  "CANNOT_CONVERT_TYPE",
  "TOO_LARGE_STRING_SIZE",
  "INCORRECT_NUMBER_OF_COLUMNS",
  "CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN",
  "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
  "UNKNOWN_ELEMENT_OF_ENUM",
  "DECIMAL_OVERFLOW",
  "CANNOT_DECOMPRESS",
  "ILLEGAL_TYPE_OF_ARGUMENT",
  "BAD_ARGUMENTS",
]);

/** The kind of an insert's error (`ClickHouseError.type` names it; others are network faults). */
export function insertErrorKind(err: unknown): InsertErrorKind {
  const type = (err as { type?: unknown } | null)?.type;
  if (typeof type !== "string") return "retryable";
  return BAD_DATA.has(type) || /^CANNOT_(PARSE|READ)_/.test(type) ? "bad-data" : "retryable";
}

/**
 * The wait before retry `attempt` (0-based): doubling from `min` up to `max`,
 * each drawn at random from its upper half ("equal jitter"), so consumers
 * that failed together do not retry together.
 */
export function backoffMs(
  attempt: number,
  [min, max]: readonly [number, number],
  random = Math.random,
) {
  const ceiling = Math.min(max, min * 2 ** attempt);
  return ceiling / 2 + random() * (ceiling / 2);
}
