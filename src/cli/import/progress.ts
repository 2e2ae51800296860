/** What an import has done so far. */
export interface ImportProgress {
  /** Bytes of the input read (compressed bytes for .gz). */
  bytesRead: number;
  /** The input's size, when known (not for standard input). */
  totalBytes: number | undefined;
  rowsRead: number;
  /** Rows the server has answered for (accepted or rejected). */
  rowsDone: number;
}

const n = (x: number) => Math.round(x).toLocaleString("en-US");
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
const clock = (s: number) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;

/**
 * Reports progress on `out`: a redrawn bar on a terminal, a plain line every
 * `intervalMs` otherwise (logs, CI).
 */
export function createProgressReporter(out: NodeJS.WriteStream, read: () => ImportProgress) {
  const tty = out.isTTY === true;
  const started = performance.now();
  const line = () => {
    const p = read();
    const seconds = (performance.now() - started) / 1000;
    const rate = seconds > 0 ? p.rowsDone / seconds : 0;
    const share = p.totalBytes ? Math.min(1, p.bytesRead / p.totalBytes) : undefined;
    const eta = share !== undefined && share > 0.01 ? clock((seconds / share) * (1 - share)) : "?";
    const size = p.totalBytes ? `${mb(p.bytesRead)} of ${mb(p.totalBytes)}` : mb(p.bytesRead);
    if (!tty) {
      const pct = share === undefined ? "" : ` (${Math.floor(share * 100)}%)`;
      return `progress: ${n(p.rowsDone)} rows sent, ${n(rate)} rows/s, ${size}${pct}, ETA ${eta}`;
    }
    const width = 24;
    const filled = share === undefined ? 0 : Math.round(share * width);
    const bar =
      share === undefined
        ? ""
        : `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${String(Math.floor(share * 100)).padStart(3)}% `;
    return `${bar}${n(p.rowsDone)} rows  ${n(rate)} rows/s  ${size}  ETA ${eta}`;
  };
  const timer = setInterval(
    () => {
      if (tty) out.write(`\r\x1b[K${line()}`);
      else out.write(`${line()}\n`);
    },
    tty ? 200 : 5000,
  );
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      if (tty) out.write(`\r\x1b[K`);
    },
  };
}
