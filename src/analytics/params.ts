/** A request parameter that is missing or malformed; `param` names it. */
export class InvalidParameterError extends Error {
  override name = "InvalidParameterError";
  readonly param: string;
  constructor(param: string, message: string) {
    super(`${param}: ${message}`);
    this.param = param;
  }
}

/** Longest from..to span a stats query accepts, in days. */
export const MAX_RANGE_DAYS = 1100;
const DAY_MS = 86_400_000;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** A calendar day, as whole days since 1970-01-01. */
export type Day = number;

/** Parses YYYY-MM-DD (a real calendar date) or throws naming `param`. */
export function parseDay(param: string, value: string): Day {
  const m = DATE.exec(value);
  if (m === null)
    throw new InvalidParameterError(param, `expected a date as YYYY-MM-DD, got "${value}"`);
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const ms = Date.UTC(y, mo - 1, d);
  const back = new Date(ms);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) {
    throw new InvalidParameterError(param, `"${value}" is not a calendar date`);
  }
  return ms / DAY_MS;
}

export function formatDay(day: Day): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

/** The Monday on or before `day` (ISO weeks). */
export function mondayOf(day: Day): Day {
  return day - ((day + 3) % 7); // 1970-01-01 was a Thursday
}

/** Parses a required from..to range, both inclusive. */
export function parseRange(from: string, to: string): { from: Day; to: Day } {
  if (from === "") throw new InvalidParameterError("from", "required (YYYY-MM-DD)");
  if (to === "") throw new InvalidParameterError("to", "required (YYYY-MM-DD)");
  const range = { from: parseDay("from", from), to: parseDay("to", to) };
  if (range.from > range.to) throw new InvalidParameterError("from", `${from} is after to (${to})`);
  if (range.to - range.from + 1 > MAX_RANGE_DAYS) {
    throw new InvalidParameterError("to", `the range may span at most ${MAX_RANGE_DAYS} days`);
  }
  return range;
}

/** Checks an IANA zone name; empty means UTC. */
export function parseTimeZone(tz: string): string {
  if (tz === "" || tz === "UTC") return "UTC";
  try {
    // Validate only: ICU would rename some zones (Europe/Kyiv to Europe/Kiev).
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return tz;
  } catch {
    throw new InvalidParameterError("tz", `"${tz}" is not an IANA time zone (like Europe/Kyiv)`);
  }
}

/** Today's date in `tz`. */
export function today(tz: string, now = new Date()): Day {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: tz,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
  }).format(now);
  return parseDay("now", parts);
}

/** An integer parameter with a default and bounds. */
export function parseBounded(
  param: string,
  value: number | undefined,
  min: number,
  max: number,
  fallback: number,
): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidParameterError(
      param,
      `must be a whole number from ${min} to ${max}, got ${value}`,
    );
  }
  return value;
}

/** One of a closed set of words; empty means the first. */
export function parseChoice<T extends string>(
  param: string,
  value: string,
  choices: readonly T[],
): T {
  if (value === "") return choices[0] as T;
  if ((choices as readonly string[]).includes(value)) return value as T;
  throw new InvalidParameterError(param, `expected one of ${choices.join(", ")}, got "${value}"`);
}
