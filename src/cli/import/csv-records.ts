/** One record of a CSV file, or why it could not be read. */
export type CsvRecord =
  | {
      readonly line: number;
      readonly fields: string[];
      /** The record's text, as in the file (for a report of it). */
      readonly raw: string;
      readonly error?: undefined;
    }
  | {
      readonly line: number;
      readonly error: string;
      readonly raw: string;
      readonly fields?: undefined;
    };

/** A quoted field may span lines, but not past this many characters. */
const MAX_RECORD_CHARS = 1 << 20;

/**
 * Reads RFC 4180 records from text chunks: quoted fields with `""`, commas
 * and newlines inside, CRLF or LF line ends, a leading BOM, blank lines
 * skipped. `line` is the record's first line, counted from 1.
 *
 * Broken quoting never costs more than its own line: the record is reported
 * by its first line and reading starts again on the next one, so an
 * unclosed quote does not swallow the rest of the file (it does in common
 * parsers). A record that reads fine but is wrong in content is for the
 * caller to judge.
 */
export async function* csvRecords(chunks: AsyncIterable<string>): AsyncGenerator<CsvRecord> {
  let buf = "";
  let line = 1;
  let first = true;
  for await (const chunk of chunks) {
    buf += chunk;
    if (first && buf.length > 0) {
      if (buf.charCodeAt(0) === 0xfeff) buf = buf.slice(1);
      first = false;
    }
    let pos = 0;
    for (;;) {
      const r = readRecord(buf, pos, false);
      if (r === undefined) break;
      if (r.record !== undefined) yield { line, ...r.record };
      line += r.lines;
      pos = r.next;
    }
    buf = buf.slice(pos);
  }
  let pos = 0;
  while (pos < buf.length) {
    const r = readRecord(buf, pos, true) as Step;
    if (r.record !== undefined) yield { line, ...r.record };
    line += r.lines;
    pos = r.next;
  }
}

interface Step {
  /** undefined for a blank line. */
  record: { fields: string[]; raw: string } | { error: string; raw: string } | undefined;
  /** Where the next record starts. */
  next: number;
  /** Line ends consumed. */
  lines: number;
}

/** One record at `pos`, or undefined when the chunk ends first and more may come. */
function readRecord(buf: string, pos: number, atEnd: boolean): Step | undefined {
  const nl = buf.indexOf("\n", pos);
  if (nl < 0 && !atEnd) return undefined;
  const lineEnd = nl < 0 ? buf.length : nl;
  if (lineEnd === pos || (lineEnd === pos + 1 && buf.charCodeAt(pos) === 13)) {
    return { record: undefined, next: lineEnd + 1, lines: 1 };
  }
  // Only what fits on the first line, for the report when quoting breaks.
  const brokenAt = (error: string): Step => ({
    record: { error, raw: buf.slice(pos, lineEnd).replace(/\r$/, "") },
    next: lineEnd + 1,
    lines: 1,
  });
  const fields: string[] = [];
  let i = pos;
  let lines = 0;
  for (;;) {
    if (buf.charCodeAt(i) === 34 /* " */) {
      let value = "";
      let from = i + 1;
      for (;;) {
        const q = buf.indexOf('"', from);
        if (q < 0 || q + 1 >= buf.length) {
          if (!atEnd && buf.length - pos < MAX_RECORD_CHARS) return undefined;
          if (q < 0) return brokenAt("broken quoting: a quoted field is never closed");
        }
        if (q >= 0 && buf.charCodeAt(q + 1) === 34) {
          value += buf.slice(from, q + 1);
          from = q + 2;
          continue;
        }
        value += buf.slice(from, q);
        i = q + 1;
        break;
      }
      for (let k = value.indexOf("\n"); k >= 0; k = value.indexOf("\n", k + 1)) lines++;
      fields.push(value);
    } else {
      let end = i;
      for (; end < buf.length; end++) {
        const c = buf.charCodeAt(end);
        if (c === 44 /* , */ || c === 10 /* \n */) break;
      }
      let value = buf.slice(i, end);
      if (buf.charCodeAt(end) !== 44 && value.endsWith("\r")) value = value.slice(0, -1);
      if (value.includes('"')) return brokenAt("broken quoting: a quote inside an unquoted field");
      fields.push(value);
      i = end;
    }
    const c = buf.charCodeAt(i);
    if (c === 44) {
      i++;
      continue;
    }
    // The record and its text, up to its line end (a CR before it left out).
    const record = { fields, raw: buf.slice(pos, buf.charCodeAt(i - 1) === 13 ? i - 1 : i) };
    if (i >= buf.length) return atEnd ? { record, next: i, lines } : undefined;
    if (c === 10) return { record, next: i + 1, lines: lines + 1 };
    if (c === 13 && (buf.charCodeAt(i + 1) === 10 || i + 1 >= buf.length)) {
      if (i + 1 >= buf.length && !atEnd) return undefined;
      return { record, next: i + 2, lines: lines + 1 };
    }
    return brokenAt("broken quoting: text after a closing quote");
  }
}
