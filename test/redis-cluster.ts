import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { waitFor } from "./helpers.ts";

/** A Redis Cluster of real redis-server processes on loopback, on ports of its own. */
export interface RedisClusterFixture {
  /** REDIS_URL for it: every node, comma-separated. */
  url: string;
  ports: number[];
  /** Kills (SIGKILL) the master serving `key`'s slot; answers its port. */
  killMasterOf(key: string): Promise<number>;
  stop(): Promise<void>;
}

const run = (cmd: string, args: string[]) =>
  new Promise<string>((resolve, reject) =>
    execFile(cmd, args, { timeout: 60_000 }, (err, out, errText) =>
      err ? reject(new Error(`${cmd} ${args.join(" ")}: ${errText || err.message}`)) : resolve(out),
    ),
  );

/**
 * Starts `masters` masters with one replica each (`redis-server
 * --cluster-enabled yes`, `redis-cli --cluster create`), and waits until
 * every node says the cluster is ok. Never touches the machine's Redis.
 */
export async function startRedisCluster(masters = 3): Promise<RedisClusterFixture> {
  const dir = mkdtempSync(join(tmpdir(), "tally-redis-cluster-"));
  // Ports of their own: 17000-17899 (their cluster bus is 10000 above).
  const base = 17000 + Math.floor(Math.random() * 150) * 6;
  const ports = Array.from({ length: masters * 2 }, (_, i) => base + i);
  const processes = new Map<number, ChildProcess>();
  for (const port of ports) {
    // A directory each: a replica's sync writes its copy there.
    const own = join(dir, String(port));
    mkdirSync(own);
    const child = spawn(
      "redis-server",
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        `nodes-${port}.conf`,
        "--cluster-node-timeout",
        "2000",
        "--logfile",
        join(own, "redis.log"),
        "--dir",
        dir,
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
      ],
      { stdio: "ignore" },
    );
    processes.set(port, child);
  }
  const stop = async () => {
    for (const child of processes.values()) child.kill("SIGKILL");
    processes.clear();
    // A node killed a moment ago may still be writing its files: retried.
    rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
  };
  try {
    for (const port of ports) {
      await waitFor(
        () => run("redis-cli", ["-p", String(port), "ping"]).catch(() => ""),
        (out) => out.trim() === "PONG",
      );
    }
    await run("redis-cli", [
      "--cluster",
      "create",
      ...ports.map((p) => `127.0.0.1:${p}`),
      "--cluster-replicas",
      "1",
      "--cluster-yes",
    ]);
    for (const port of ports) {
      await waitFor(
        () => run("redis-cli", ["-p", String(port), "cluster", "info"]),
        (out) => out.includes("cluster_state:ok"),
        30_000,
      );
      // A replica that never synced would not take over from its master.
      await waitFor(
        () => run("redis-cli", ["-p", String(port), "info", "replication"]),
        (out) => out.includes("role:master") || out.includes("master_link_status:up"),
        30_000,
      );
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url: ports.map((p) => `redis://127.0.0.1:${p}`).join(","),
    ports,
    async killMasterOf(key) {
      const any = new Redis({ port: ports[0], lazyConnect: true });
      await any.connect();
      const slot = Number(await any.call("cluster", "keyslot", key));
      const slots = (await any.call("cluster", "slots")) as [number, number, [string, number]][];
      any.disconnect();
      const range = slots.find(([from, to]) => slot >= from && slot <= to);
      const port = range?.[2][1] as number;
      processes.get(port)?.kill("SIGKILL");
      processes.delete(port);
      return port;
    },
    stop,
  };
}
