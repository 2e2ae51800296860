import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.ts";

describe("loadConfig", () => {
  it("defaults to the embedded mode on port 8080", () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 8080,
      amqpUrl: undefined,
      redisUrl: undefined,
      namespace: "tally",
      apiKeys: [],
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it("has the defaults the README's table gives (it said TALLY_PREFETCH was 64 while it was 256)", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    // | `NAME` | `VALUE` (note) | meaning |
    const rows = [...readme.matchAll(/^\| `([A-Z][A-Z0-9_]+)` +\| `([^`]+)`/gm)];
    expect(rows.length).toBeGreaterThan(10);
    const defaults = loadConfig({});
    for (const [, name, value] of rows) {
      expect(loadConfig({ [name as string]: value }), `${name}=${value}`).toEqual(defaults);
    }
  });

  it("takes an empty variable as unset (AMQP_URL= in a compose file or shell)", () => {
    const c = loadConfig({ AMQP_URL: "", REDIS_URL: " ", CLICKHOUSE_URL: "" });
    expect(c).toMatchObject({ amqpUrl: undefined, redisUrl: undefined, clickhouseUrl: undefined });
  });

  it("reads URLs and lists", () => {
    const c = loadConfig({
      AMQP_URL: "amqp://guest:guest@127.0.0.1:5672",
      TALLY_API_KEYS: "a, b,,c",
    });
    expect(c.amqpUrl).toBe("amqp://guest:guest@127.0.0.1:5672");
    expect(c.apiKeys).toEqual([
      { key: "a", scopes: ["ingest", "read", "admin"] },
      { key: "b", scopes: ["ingest", "read", "admin"] },
      { key: "c", scopes: ["ingest", "read", "admin"] },
    ]);
    expect(loadConfig({ TALLY_API_KEYS: "w:ingest,r:read" }).apiKeys).toEqual([
      { key: "w", scopes: ["ingest"] },
      { key: "r", scopes: ["read"] },
    ]);
    expect(loadConfig({ TALLY_API_KEYS: "a:admin" }).apiKeys).toEqual([
      { key: "a", scopes: ["admin"] },
    ]);
    expect(() => loadConfig({ TALLY_API_KEYS: "k:root" })).toThrow(
      /TALLY_API_KEYS: unknown scope "root" \(expected KEY, KEY:ingest, KEY:read or KEY:admin\)/,
    );
  });

  it("takes several nodes in AMQP_URL and REDIS_URL (a cluster's), each checked", () => {
    const c = loadConfig({
      AMQP_URL: "amqp://guest:guest@10.0.0.1:5672,amqp://guest:guest@10.0.0.2:5672",
      REDIS_URL: "redis://10.0.0.1:6379, redis://10.0.0.2:6379",
    });
    expect(c.amqpUrl).toBe("amqp://guest:guest@10.0.0.1:5672,amqp://guest:guest@10.0.0.2:5672");
    expect(c.redisUrl).toBe("redis://10.0.0.1:6379, redis://10.0.0.2:6379");
    expect(() => loadConfig({ REDIS_URL: "redis://10.0.0.1:6379,http://10.0.0.2" })).toThrow(
      /REDIS_URL: expected a URL like redis:\/\/127\.0\.0\.1:6379, or several separated by commas/,
    );
  });

  it("takes TALLY_CLICKHOUSE_CLUSTER only with a server to run it on", () => {
    expect(
      loadConfig({ CLICKHOUSE_URL: "http://ch1:8123", TALLY_CLICKHOUSE_CLUSTER: "tally" })
        .clickhouseCluster,
    ).toBe("tally");
    expect(loadConfig({}).clickhouseCluster).toBeUndefined();
    expect(() => loadConfig({ TALLY_CLICKHOUSE_CLUSTER: "tally" })).toThrow(
      /TALLY_CLICKHOUSE_CLUSTER: needs CLICKHOUSE_URL/,
    );
    expect(() =>
      loadConfig({ CLICKHOUSE_URL: "http://ch1:8123", TALLY_CLICKHOUSE_CLUSTER: "a'b" }),
    ).toThrow(/TALLY_CLICKHOUSE_CLUSTER: expected a cluster's name/);
  });

  it("reads the indexed properties as dotted paths, each once", () => {
    expect(loadConfig({}).indexedProperties).toEqual([]);
    expect(
      loadConfig({ TALLY_INDEXED_PROPERTIES: "country, device.os,,country" }).indexedProperties,
    ).toEqual(["country", "device.os"]);
    expect(() => loadConfig({ TALLY_INDEXED_PROPERTIES: "country,device..os" })).toThrow(
      /TALLY_INDEXED_PROPERTIES: "device\.\.os" is not a property path \(expected KEY or KEY\.NESTED/,
    );
  });

  it("reads the indexed time zones, UTC aside", () => {
    expect(
      loadConfig({ TALLY_INDEXED_TIME_ZONES: "Europe/Kyiv, UTC,America/St_Johns" })
        .indexedTimeZones,
    ).toEqual(["Europe/Kyiv", "America/St_Johns"]);
    expect(() => loadConfig({ TALLY_INDEXED_TIME_ZONES: "Europe/Kyiv,Mars/Olympus" })).toThrow(
      /TALLY_INDEXED_TIME_ZONES: "Mars\/Olympus" is not an IANA time zone/,
    );
  });

  it("names every bad variable and the expected form", () => {
    expect(() =>
      loadConfig({ PORT: "http", REDIS_URL: "localhost:6379", TALLY_NAMESPACE: "Bad-Name" }),
    ).toThrow(
      /PORT: expected a whole number[\s\S]*REDIS_URL: expected a URL like redis:\/\/127\.0\.0\.1:6379[\s\S]*TALLY_NAMESPACE: expected lower-case/,
    );
  });
});
