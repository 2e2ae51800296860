import { CSV_COLUMNS } from "../import/csv-events.ts";
import { seededRandom, seededUuid, skewed } from "./random.ts";

/** What {@link generateCsv} makes. */
export interface GenOptions {
  /** Rows to write, repeats included. */
  rows: number;
  /** Distinct users; a few are much more active than the rest. */
  users: number;
  /** First day (ms since the epoch, UTC midnight) and how many days follow. */
  fromMs: number;
  days: number;
  /** Distinct event types; a few dominate. */
  eventTypes: number;
  /** Share of rows that repeat an earlier row's event (as retries do). */
  dupRate: number;
  seed: number;
}

const TYPES = [
  "page_view",
  "click",
  "search",
  "add_to_cart",
  "login",
  "purchase",
  "signup",
  "share",
  "comment",
  "logout",
  "checkout_started",
  "invite_sent",
  "file_uploaded",
  "subscription_renewed",
];
const COUNTRIES = ["US", "UA", "DE", "PL", "GB", "FR", "IN", "BR", "JP", "CA"];
const OS = ["ios", "android", "windows", "macos", "linux"];
const BROWSERS = ["safari", "chrome", "firefox", "edge"];
const PLANS = ["free", "free", "free", "pro", "team"];

/**
 * Synthetic events as CSV text, in chunks of a few thousand rows: skewed
 * event types and users, nested properties, repeats at `dupRate`. The same
 * options give the same bytes.
 */
export function* generateCsv(o: GenOptions): Generator<string> {
  const random = seededRandom(o.seed);
  const type = skewed(o.eventTypes, 1.2, random);
  const user = skewed(o.users, 0.8, random);
  const country = skewed(COUNTRIES.length, 1, random);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)] as T;
  const recent: string[] = [];
  const spanMs = o.days * 86_400_000;
  yield `${CSV_COLUMNS.join(",")}\n`;
  let chunk = "";
  for (let i = 0; i < o.rows; i++) {
    let row: string;
    if (recent.length > 0 && random() < o.dupRate) {
      row = recent[Math.floor(random() * recent.length)] as string;
    } else {
      const t = type();
      const name = TYPES[t] ?? `custom_event_${t}`;
      const at = new Date(o.fromMs + Math.floor(random() * spanMs)).toISOString();
      const amount = name === "purchase" ? `,""amount"":${(random() * 200).toFixed(2)}` : "";
      const props = `"{""country"":""${COUNTRIES[country()]}"",""device"":{""os"":""${pick(OS)}"",""browser"":""${pick(BROWSERS)}""},""plan"":""${pick(PLANS)}""${amount}}"`;
      row = `${seededUuid(random)},${at},user_${user()},${name},${props}\n`;
      if (recent.length < 1000) recent.push(row);
      else recent[i % 1000] = row;
    }
    chunk += row;
    if (chunk.length > 256 * 1024) {
      yield chunk;
      chunk = "";
    }
  }
  if (chunk !== "") yield chunk;
}
