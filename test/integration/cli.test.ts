import type { ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { generateCsv } from "../../src/cli/gen/generate.ts";
import { checkpointPath } from "../../src/cli/import/checkpoint.ts";
import { rest } from "../clients.ts";
import { freePort, spawnTally, untilReady, waitFor } from "../helpers.ts";
import { tempDir } from "../temp-dirs.ts";

/** Every process a test starts: killed after each test, whatever happened in it. */
const children = new Set<ChildProcess>();
afterEach(() => {
  for (const c of children) c.kill("SIGKILL");
  children.clear();
});

function run(args: string[], env: Record<string, string>) {
  const tally = spawnTally(args, env);
  children.add(tally.child);
  return tally;
}

/** `tally serve` on the embedded default in a fresh data directory, once ready. */
async function serveEmbedded() {
  const port = await freePort();
  const dataDir = tempDir("tally-cli-");
  const service = run(["serve"], {
    PORT: String(port),
    HOST: "127.0.0.1",
    TALLY_DATA_DIR: dataDir,
  });
  await untilReady(port);
  return { port, dataDir, service };
}

describe("tally serve, as a process", () => {
  it("runs the embedded default, answers, and stops cleanly on SIGTERM", async () => {
    const port = await freePort();
    const dataDir = tempDir("tally-cli-");
    const { child, exit } = run(["serve"], {
      PORT: String(port),
      HOST: "127.0.0.1",
      TALLY_DATA_DIR: dataDir,
    });
    let proc: ChildProcess | undefined = child;
    try {
      await untilReady(port);
      const event = {
        event_id: "5d41402a-bc4b-4a76-b971-9d911017c592",
        occurred_at: "2025-10-28T12:00:00Z",
        user_id: 1,
        event_type: "signup",
      };
      expect(await rest(port, "/events", [event])).toMatchObject({
        status: 202,
        body: { accepted: 1 },
      });
      // Acknowledged once in the local log; counted once the consumer has stored it.
      await waitFor(
        async () => (await rest(port, "/stats/dau?from=2025-10-28&to=2025-10-28")).body,
        (body) => JSON.stringify(body) === '[{"date":"2025-10-28","unique_users":1}]',
      );
      child.kill("SIGTERM");
      expect(await exit).toBe(0);
      proc = undefined;
    } finally {
      proc?.kill("SIGKILL");
    }
  });

  it("imports a CSV with the exit codes the help promises: 0 all accepted, 3 some rejected, 1 failed, 2 usage", async () => {
    const { port, dataDir, service } = await serveEmbedded();
    try {
      const good = join(dataDir, "good.csv");
      const bad = join(dataDir, "bad.csv");
      const header = "event_id,occurred_at,user_id,event_type,properties";
      const row = (id: string) => `${id},2025-10-28T12:00:00Z,u1,cli_test,"{""k"":1}"`;
      writeFileSync(good, `${header}\n${row("3c59dc04-8e1f-4b6a-9f0c-3f6b1f0b0a01")}\n`);
      writeFileSync(bad, `${header}\n${row("3c59dc04-8e1f-4b6a-9f0c-3f6b1f0b0a02")}\nnot,enough\n`);
      const url = `http://127.0.0.1:${port}`;
      const ok = run(["import", good, "--url", url], {});
      expect(await ok.exit).toBe(0);
      const partly = run(["import", bad, "--url", url], {});
      expect(await partly.exit).toBe(3);
      expect(partly.stderr()).toContain("line 3: expected 5 fields, found 2");
      expect(readFileSync(join(dataDir, "bad.rejects.csv"), "utf8")).toBe(
        'line,reason,record\n3,"expected 5 fields, found 2","not,enough"\n',
      );
      const missing = run(["import", join(dataDir, "nope.csv"), "--url", url], {});
      expect(await missing.exit).toBe(1);
      expect(missing.stderr()).toContain("no such file");
      const usage = run(["import", good, "--batch-size", "0"], {});
      expect(await usage.exit).toBe(2);
      expect(usage.stderr()).toContain("--batch-size: expected a whole number");
      // Accepted is durable, not yet counted: the stats show it after the next flush (up to 1 s).
      const top = await waitFor(
        async () =>
          (
            await rest(
              port,
              "/stats/top-events?from=2025-10-28&to=2025-10-28&segment=event_type:cli_test",
            )
          ).body,
        (body) => ((body as { count: number }[])[0]?.count ?? 0) >= 2,
      );
      expect(top).toEqual([{ event_type: "cli_test", count: 2 }]);
    } finally {
      service.child.kill("SIGKILL");
    }
  });

  it("finishes with exact stats when an import killed with SIGKILL half-way is run again", async () => {
    const { port, dataDir, service } = await serveEmbedded();
    try {
      const file = join(dataDir, "killed.csv");
      const csv = [
        ...generateCsv({
          rows: 60_000,
          users: 300,
          fromMs: Date.parse("2024-02-01"),
          days: 10,
          eventTypes: 4,
          dupRate: 0.02,
          seed: 21,
        }),
      ]
        .join("")
        .replace(/,(page_view|click|search|add_to_cart),/g, ",killed_$1,");
      writeFileSync(file, csv);
      const url = `http://127.0.0.1:${port}`;
      const args = ["import", file, "--url", url, "--segment-rows", "2000", "--batch-size", "500"];
      const first = run(args, {});
      await waitFor(
        async () => existsSync(checkpointPath(file)),
        (exists) => exists,
      );
      first.child.kill("SIGKILL");
      expect(await first.exit).toBe(null); // killed, no clean exit
      const second = run(args, {});
      expect(await second.exit).toBe(0);
      const unique = new Set(
        csv
          .split("\n")
          .slice(1, -1)
          .map((l) => l.slice(0, 36)),
      ).size;
      const counted = await waitFor(
        async () => {
          const body = (await rest(port, "/stats/top-events?from=2024-02-01&to=2024-02-11"))
            .body as { event_type: string; count: number }[];
          return body
            .filter((r) => r.event_type.startsWith("killed_"))
            .reduce((n, r) => n + r.count, 0);
        },
        (n) => n >= unique,
      );
      expect(counted).toBe(unique);
    } finally {
      service.child.kill("SIGKILL");
    }
  });

  it("refuses a role that cannot run alone without AMQP_URL, saying why", async () => {
    const { exit, stderr } = run(["serve", "--role", "api"], {});
    expect(await exit).toBe(1);
    expect(stderr()).toContain("--role api needs AMQP_URL and CLICKHOUSE_URL");
  });

  it("refuses a split role on the embedded warehouse: each process would have its own", async () => {
    const { exit, stderr } = run(["serve", "--role", "consumer"], {
      AMQP_URL: "amqp://guest:guest@127.0.0.1:5672",
      REDIS_URL: "redis://127.0.0.1:6379",
    });
    expect(await exit).toBe(1);
    expect(stderr()).toContain("--role consumer needs CLICKHOUSE_URL");
  });

  it("names a bad variable and the expected form", async () => {
    const { exit, stderr } = run(["serve"], { PORT: "eighty", REDIS_URL: "localhost" });
    expect(await exit).toBe(1);
    expect(stderr()).toMatch(/PORT: expected a whole number/);
    expect(stderr()).toMatch(/REDIS_URL: expected a URL like redis:\/\/127\.0\.0\.1:6379/);
  });
});
