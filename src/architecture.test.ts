import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SRC = dirname(fileURLToPath(import.meta.url));

/**
 * Which folders each folder of src/ may import: the data's path flows one
 * way (event -> queue -> consumer -> warehouse -> analytics), the API never
 * reaches the consumer, the CLI never the API, and only app/ wires
 * everything. A new import across these lines fails here first.
 */
const MAY_IMPORT: Record<string, readonly string[]> = {
  config: [],
  event: [],
  observability: [],
  warehouse: ["event"],
  queue: ["event", "observability"],
  redis: [],
  dedupe: ["observability", "redis"],
  ratelimit: ["observability", "redis"],
  consumer: ["event", "queue", "dedupe", "warehouse", "observability"],
  analytics: ["event", "warehouse"],
  api: ["event", "queue", "analytics", "ratelimit", "warehouse", "observability", "config"],
  app: [
    "api",
    "config",
    "consumer",
    "dedupe",
    "event",
    "observability",
    "queue",
    "ratelimit",
    "warehouse",
  ],
  cli: ["app", "config", "event", "queue"],
  web: [],
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") ? [path] : [];
  });
}

describe("the layout", () => {
  it("keeps imports flowing one way between the folders of src/", () => {
    const crossings: string[] = [];
    for (const file of sources(SRC)) {
      const from = relative(SRC, file).split("/")[0] as string;
      if (!(from in MAY_IMPORT)) {
        if (from.endsWith(".ts")) continue; // files at the top of src/, such as this one
        crossings.push(`${from}/ is not in MAY_IMPORT: say what it may import`);
        continue;
      }
      for (const [, spec] of readFileSync(file, "utf8").matchAll(/from "(\.\.?\/[^"]+)"/g)) {
        const target = relative(SRC, resolve(dirname(file), spec as string)).split(
          "/",
        )[0] as string;
        if (target === from || target === ".." || target.startsWith("..")) continue; // gen/ and the like
        if (!MAY_IMPORT[from]?.includes(target)) {
          crossings.push(`${relative(SRC, file)} imports ${spec}`);
        }
      }
    }
    expect(crossings).toEqual([]);
  });
});
