import { createServer } from "node:http";
import { Session } from "chdb";
import { benchDir } from "./bench-dir.ts";

/**
 * ClickHouse's HTTP interface, as much of it as @clickhouse/client uses
 * (ping, queries and commands in the body or the `query` parameter, `param_*`
 * values, settings as parameters), in front of chDB in this process. No
 * ClickHouse server can run on these machines; this lets the bench run Tally's
 * roles as separate processes (`--role api`) against real ClickHouse SQL.
 * Settings are SET on its one session, so they outlive their request: fit
 * for a bench, not for a product.
 */
export async function startChdbHttp(
  port: number,
): Promise<{ url: string; close(): Promise<void> }> {
  const session = new Session(benchDir("chdb-http-"));
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname === "/ping") {
      res.end("Ok.\n");
      return;
    }
    const body = Buffer.concat(await req.toArray()).toString("utf8");
    const inUrl = url.searchParams.get("query");
    const params: Record<string, string> = {};
    const sets: string[] = [];
    for (const [key, value] of url.searchParams) {
      if (key.startsWith("param_")) params[key.slice(6)] = value;
      else if (!NOT_SETTINGS.has(key) && /^\w+$/.test(key))
        sets.push(`SET ${key} = '${value.replaceAll("'", "''")}'`);
    }
    const sql = [...sets, inUrl === null ? body : `${inUrl}\n${body}`].join(";\n");
    const format = url.searchParams.get("default_format") ?? "TabSeparated";
    try {
      const result =
        Object.keys(params).length > 0
          ? await session.queryBindAsync(sql, params, { format })
          : await session.queryAsync(sql, { format });
      res.end(Buffer.from(result.bytes()));
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      res.writeHead(500, {
        "X-ClickHouse-Exception-Code": /Code: (\d+)/.exec(message)?.[1] ?? "0",
      });
      res.end(message);
    }
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      await new Promise((resolve) => server.close(resolve));
      session.close();
    },
  };
}

/** Parameters @clickhouse/client sends that are not settings. */
const NOT_SETTINGS = new Set([
  "query",
  "query_id",
  "database",
  "session_id",
  "default_format",
  "role",
]);
