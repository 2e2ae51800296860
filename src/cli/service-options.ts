import { UsageError } from "./usage-error.ts";

/** The options of every command that calls the service (parseArgs form). */
export const SERVICE_OPTIONS = {
  url: { type: "string", default: process.env.TALLY_URL ?? "http://127.0.0.1:8080" },
  "api-key": { type: "string", default: process.env.TALLY_API_KEY },
} as const;

/** Their lines in a command's help. */
export const SERVICE_HELP = `  --url URL            the service (default http://127.0.0.1:8080, or TALLY_URL)
  --api-key KEY        sent as Authorization: Bearer KEY (default TALLY_API_KEY)`;

/** The service's URL, checked; a bad one is a usage error shown with `help`. */
export function serviceUrl(url: string, help: string): string {
  if (!URL.canParse(url)) throw new UsageError(`--url: "${url}" is not a URL`, help);
  return url;
}
