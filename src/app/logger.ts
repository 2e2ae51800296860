import { type Logger, pino } from "pino";

/** JSON logs on stderr; readable lines when stderr is a terminal. */
export function createLogger(level = "info"): Logger {
  const options = {
    level,
    redact: ["req.headers.authorization", 'req.headers["x-api-key"]', "apiKeys"],
  };
  if (process.stderr.isTTY) {
    return pino({ ...options, transport: { target: "pino-pretty", options: { destination: 2 } } });
  }
  return pino(options, pino.destination(2));
}
