import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { rest } from "../clients.ts";
import { waitFor } from "../helpers.ts";

const MAIN = join(import.meta.dirname, "../../src/cli/main.ts");

function run(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, exit, stderr: () => stderr };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

describe("tally serve, as a process", () => {
  it("runs the embedded default, answers, and stops cleanly on SIGTERM", async () => {
    const port = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), "tally-cli-"));
    const { child, exit } = run(["serve"], {
      PORT: String(port),
      HOST: "127.0.0.1",
      TALLY_DATA_DIR: dataDir,
    });
    let proc: ChildProcess | undefined = child;
    try {
      await waitFor(
        () => rest(port, "/readyz").catch(() => ({ status: 0 })),
        (r) => r.status === 200,
      );
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
      expect((await rest(port, "/stats/dau?from=2025-10-28&to=2025-10-28")).body).toEqual([
        { date: "2025-10-28", unique_users: 1 },
      ]);
      child.kill("SIGTERM");
      expect(await exit).toBe(0);
      proc = undefined;
    } finally {
      proc?.kill("SIGKILL");
    }
  });

  it("refuses a role that cannot run alone without AMQP_URL, saying why", async () => {
    const { exit, stderr } = run(["serve", "--role", "api"], {});
    expect(await exit).toBe(1);
    expect(stderr()).toContain("--role api needs AMQP_URL");
  });

  it("names a bad variable and the expected form", async () => {
    const { exit, stderr } = run(["serve"], { PORT: "eighty", REDIS_URL: "localhost" });
    expect(await exit).toBe(1);
    expect(stderr()).toMatch(/PORT: expected a whole number/);
    expect(stderr()).toMatch(/REDIS_URL: expected a URL like redis:\/\/127\.0\.0\.1:6379/);
  });
});
