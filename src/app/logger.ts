import { type Logger, pino } from "pino";

/**
 * JSON logs on stderr (or `destination`), ISO timestamps; readable lines
 * when stderr is a terminal.
 */
export function createLogger(level = "info", destination?: NodeJS.WritableStream): Logger {
  const options = {
    level,
    timestamp: pino.stdTimeFunctions.isoTime,
    // Tally logs no headers; should a caller log one, keys stay out.
    redact: ["authorization", "*.authorization", '*["x-api-key"]', "apiKeys", "*.apiKeys"],
  };
  if (destination !== undefined) return pino(options, destination);
  if (process.stderr.isTTY) {
    return pino({ ...options, transport: { target: "pino-pretty", options: { destination: 2 } } });
  }
  return pino(options, pino.destination(2));
}
