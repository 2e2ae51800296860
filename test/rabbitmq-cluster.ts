import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "./helpers.ts";

/** A RabbitMQ cluster of real rabbitmq-server nodes on loopback, on ports and node names of its own. */
export interface RabbitClusterFixture {
  /** AMQP_URL for it: every node, comma-separated. */
  url: string;
  /** The nodes' names, e.g. `tally-ab12-1@localhost`. */
  nodes: string[];
  /** The node holding the leader of quorum queue `queue` (in vhost `/`). */
  leaderOf(queue: string): Promise<string>;
  /** Kills `node` (SIGKILL): the other nodes elect new queue leaders. */
  kill(node: string): void;
  /** Starts a killed node again; it rejoins the cluster from its data directory. */
  restart(node: string): Promise<void>;
  stop(): Promise<void>;
}

// Debian's wrappers under /usr/sbin run these as the rabbitmq user with its
// cookie: the scripts themselves run as whoever starts the test, with a
// cookie of our own, so these nodes cannot even talk to the machine's broker.
const BIN = existsSync("/usr/lib/rabbitmq/bin/rabbitmqctl") ? "/usr/lib/rabbitmq/bin/" : "";

/**
 * Starts `size` nodes (`rabbitmq-server -detached`, each with its own
 * RABBITMQ_NODENAME, ports, config file and data directory) and joins the
 * rest to the first (`rabbitmqctl join_cluster`). Never touches the
 * machine's broker on 5672, its config or its cookie.
 */
export async function startRabbitCluster(size = 3): Promise<RabbitClusterFixture> {
  const dir = mkdtempSync(join(tmpdir(), "tally-rabbit-cluster-"));
  const home = join(dir, "home");
  mkdirSync(home);
  writeFileSync(join(home, ".erlang.cookie"), randomBytes(16).toString("hex"), { mode: 0o400 });
  const id = randomBytes(2).toString("hex");
  // AMQP ports 5700-5999; Erlang distribution 20000 above each.
  const base = 5700 + Math.floor(Math.random() * 95) * 3;
  const nodes = Array.from({ length: size }, (_, i) => ({
    name: `tally-${id}-${i + 1}@localhost`,
    port: base + i,
    dir: join(dir, `node-${i + 1}`),
  }));
  const env = (node: (typeof nodes)[number]) => ({
    ...process.env,
    HOME: home,
    RABBITMQ_NODENAME: node.name,
    RABBITMQ_NODE_PORT: String(node.port),
    RABBITMQ_DIST_PORT: String(node.port + 20_000),
    // The machine's config file names 5672: each node has its own.
    RABBITMQ_CONFIG_FILE: join(node.dir, "rabbitmq.conf"),
    RABBITMQ_MNESIA_BASE: join(node.dir, "mnesia"),
    RABBITMQ_LOG_BASE: join(node.dir, "log"),
    RABBITMQ_PID_FILE: join(node.dir, "pid"),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(node.dir, "enabled_plugins"),
    RABBITMQ_PLUGINS_EXPAND_DIR: join(node.dir, "plugins"),
  });
  const ctl = (node: string, ...args: string[]) =>
    new Promise<string>((resolve, reject) =>
      execFile(
        `${BIN}rabbitmqctl`,
        ["-n", node, ...args],
        { env: { ...process.env, HOME: home }, timeout: 60_000 },
        (err, out, errText) =>
          err
            ? reject(new Error(`rabbitmqctl ${args.join(" ")}: ${errText || out}`))
            : resolve(out),
      ),
    );
  const boot = async (node: (typeof nodes)[number]) => {
    mkdirSync(node.dir, { recursive: true });
    writeFileSync(
      join(node.dir, "rabbitmq.conf"),
      `listeners.tcp.local = 127.0.0.1:${node.port}\n`,
    );
    const child = spawn(`${BIN}rabbitmq-server`, ["-detached"], {
      env: env(node),
      stdio: "ignore",
    });
    await new Promise((resolve) => child.on("exit", resolve));
    await waitFor(
      () =>
        ctl(node.name, "await_startup").then(
          () => true,
          () => false,
        ),
      (up) => up,
      60_000,
    );
  };
  const pidOf = (name: string) => {
    const node = nodes.find((n) => n.name === name);
    const file = node && join(node.dir, "pid");
    return file && existsSync(file) ? Number(readFileSync(file, "utf8").trim()) : undefined;
  };
  const kill = (name: string) => {
    const pid = pidOf(name);
    if (pid === undefined) return;
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
    rmSync(join(nodes.find((n) => n.name === name)?.dir as string, "pid"), { force: true });
  };
  const stop = async () => {
    for (const node of nodes) kill(node.name);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(nodes.map(boot));
    const [first, ...rest] = nodes as [(typeof nodes)[number], ...typeof nodes];
    for (const node of rest) {
      await ctl(node.name, "stop_app");
      await ctl(node.name, "join_cluster", first.name);
      await ctl(node.name, "start_app");
    }
    await waitFor(
      () => ctl(first.name, "cluster_status", "--formatter", "json"),
      (out) => (JSON.parse(out) as { running_nodes: string[] }).running_nodes.length === size,
      30_000,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url: nodes.map((n) => `amqp://guest:guest@127.0.0.1:${n.port}`).join(","),
    nodes: nodes.map((n) => n.name),
    async leaderOf(queue) {
      const alive = nodes.find((n) => pidOf(n.name) !== undefined) as (typeof nodes)[number];
      const out = await ctl(alive.name, "list_queues", "name", "leader", "--formatter", "json");
      const row = (JSON.parse(out) as { name: string; leader: string }[]).find(
        (q) => q.name === queue,
      );
      if (row === undefined) throw new Error(`no queue ${queue} on the cluster`);
      return row.leader;
    },
    kill,
    async restart(name) {
      const node = nodes.find((n) => n.name === name);
      if (node === undefined) throw new Error(`no node ${name}`);
      await boot(node);
    },
    stop,
  };
}
