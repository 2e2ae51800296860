/**
 * Query parameters written into the SQL as typed literals: each
 * `{name:Type}` becomes `CAST(<literal> AS Type)`, the form ClickHouse
 * itself gives a bound parameter once parsed, and a String the string
 * literal alone. chDB's own binding runs every
 * parameterised query of the process one at a time (chdb-node chains them:
 * its engine's parameter state is shared), so a page's questions waited for
 * each other.
 *
 * Values never enter the SQL as text: each becomes a quoted literal of its
 * text (a number's or bigint's decimal text, an array's text as ClickHouse
 * writes one), its backslashes and quotes escaped (inside one, nothing else
 * is special); the type always comes from the SQL, never from a value.
 * Placeholders are found as ClickHouse's lexer finds them: not inside
 * quoted strings, quoted identifiers or comments.
 */
export function inlineParams(sql: string, params: Record<string, unknown>): string {
  let out = "";
  let from = 0;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i];
    if (c === "'" || c === '"' || c === "`") {
      i = closingQuote(sql, i);
    } else if (c === "-" && sql[i + 1] === "-") {
      i = lineEnd(sql, i);
    } else if (c === "/" && sql[i + 1] === "*") {
      const end = sql.indexOf("*/", i + 2);
      i = end < 0 ? sql.length : end + 1;
    } else if (c === "{") {
      const match = PLACEHOLDER.exec(sql.slice(i, i + MAX_PLACEHOLDER));
      if (match === null) continue;
      const [whole, name = "", type = ""] = match;
      if (!Object.hasOwn(params, name)) {
        throw new Error(`query parameter ${name} (${type}) was not given`);
      }
      // A string literal is a String already: its CAST would be one more function to resolve.
      const text = literal(params[name], name);
      out += sql.slice(from, i) + (type === "String" ? text : `CAST(${text} AS ${type})`);
      i += whole.length - 1;
      from = i + 1;
    }
  }
  return out + sql.slice(from);
}

/** `{name:Type}` at the start of the text; a type may nest parentheses (Array(String)). */
const PLACEHOLDER = /^\{([A-Za-z_][A-Za-z0-9_]*):\s*([A-Za-z][A-Za-z0-9_]*(?:\([^{}']*\))?)\s*\}/;
const MAX_PLACEHOLDER = 256;

/**
 * A string literal of `value`'s text, which the CAST around it parses as
 * its type, as ClickHouse parses a bound parameter's text. An array too:
 * its text in one literal parsed 10,000 UUIDs in 10 ms, where a literal an
 * element took 23 (and binding 16).
 */
function literal(value: unknown, name: string): string {
  return sqlString(Array.isArray(value) ? arrayText(value, name) : scalarText(value, name));
}

/** An array as ClickHouse writes one: strings quoted inside it, the rest as they are. */
function arrayText(values: unknown[], name: string): string {
  const items = values.map((v) =>
    Array.isArray(v)
      ? arrayText(v, name)
      : typeof v === "string"
        ? sqlString(v)
        : scalarText(v, name),
  );
  return `[${items.join(",")}]`;
}

function scalarText(value: unknown, name: string): string {
  if (typeof value === "string") return value;
  if (typeof value === "bigint" || typeof value === "boolean") return String(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`query parameter ${name}: ${value} is not finite`);
    return String(value);
  }
  throw new Error(`query parameter ${name}: cannot be written as a literal (${typeof value})`);
}

/** A ClickHouse string literal of `text`: a backslash and a quote are the only characters special in one. */
export function sqlString(text: string): string {
  return `'${text.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

/** The index of the quote closing the one at `at` (a backslash escapes; a doubled quote is one). */
function closingQuote(sql: string, at: number): number {
  const q = sql[at];
  for (let i = at + 1; i < sql.length; i++) {
    if (sql[i] === "\\") i++;
    else if (sql[i] === q) {
      if (sql[i + 1] !== q) return i;
      i++;
    }
  }
  return sql.length;
}

function lineEnd(sql: string, at: number): number {
  const end = sql.indexOf("\n", at);
  return end < 0 ? sql.length : end;
}
