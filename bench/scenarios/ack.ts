import { createServer } from "node:http";
import { quantile } from "../lib/quantile.ts";
import { startService } from "../lib/service.ts";
import type { Section } from "../lib/table.ts";

/**
 * How long a one-event POST /events waits for its acknowledgement: the
 * embedded default (acknowledged once its local log has synced the batch),
 * the same service on RabbitMQ and Redis (once the broker confirms), and a
 * bare HTTP server answering 202 (the floor: the HTTP round trip and the
 * JSON alone). One client at a time, then 16 at once (where the local log
 * syncs the batches that arrived together in one fdatasync).
 */
export async function ack(scale: number, port: number): Promise<Section[]> {
  const calls = scale >= 1 ? 2000 : 200;
  const floor = await startFloor(port + 200);
  const embedded = await startService(port, { AMQP_URL: "", REDIS_URL: "" });
  const rabbit = await startService(port + 1);
  const targets = [
    // The floor runs in this process, beside the clients: its CPU is not its own alone.
    { name: "floor: a bare HTTP server answering 202", port: floor.port, cpu: undefined },
    { name: "embedded (local log, chDB)", port: embedded.port, cpu: embedded.cpuSeconds },
    { name: "RabbitMQ and Redis (chDB)", port: rabbit.port, cpu: rabbit.cpuSeconds },
  ];
  const rows: (string | number)[][] = [];
  const p50 = new Map<string, number>();
  try {
    for (const { name, port: to, cpu } of targets) {
      for (const clients of [1, 16]) {
        await post(to, 50, clients, name); // warm-up, unmeasured
        const cpu0 = cpu?.() ?? 0;
        const started = performance.now();
        const latencies = await post(to, calls, clients, name);
        const seconds = (performance.now() - started) / 1000;
        const cpuMs = cpu === undefined ? "" : ((cpu() - cpu0) * 1000) / calls;
        latencies.sort((a, b) => a - b);
        if (clients === 1) p50.set(name, quantile(latencies, 0.5));
        rows.push([
          name,
          clients,
          calls,
          quantile(latencies, 0.5),
          quantile(latencies, 0.99),
          Math.round(calls / seconds),
          cpuMs,
        ]);
      }
    }
  } finally {
    await embedded.stop();
    await rabbit.stop();
    floor.close();
  }
  const [f, e, r] = targets.map((t) => p50.get(t.name) ?? Number.NaN) as [number, number, number];
  return [
    {
      title: "Acknowledging one event (POST /events, one event per request)",
      columns: ["target", "clients", "calls", "p50 ms", "p99 ms", "calls/s", "service CPU ms/call"],
      rows,
      notes: [
        `Embedded, one client: p50 ${e.toFixed(2)} ms (goal: 5 ms or less), ${(e / f).toFixed(1)}x the floor's ${f.toFixed(2)} ms, ${(e / r).toFixed(2)}x RabbitMQ's ${r.toFixed(2)} ms.`,
        "Service CPU per call: the service process's own (chDB's inserts and merges included), over the measured calls; the floor shares this process with the clients, so it has none of its own.",
        "Embedded, an acknowledgement means the batch is synced to the local log (it survives a SIGKILL: test/e2e/crash.test.ts); it used to mean inserted into chDB (about 40 ms here).",
      ],
    },
  ];
}

/** `calls` one-event POSTs from `clients` clients at once, each waiting for its answer; their latencies (ms). */
async function post(port: number, calls: number, clients: number, name: string) {
  const latencies: number[] = [];
  let sent = 0;
  const client = async () => {
    while (sent < calls) {
      const i = sent++;
      const body = JSON.stringify([
        {
          event_id: crypto.randomUUID(),
          occurred_at: "2025-10-28T12:00:00Z",
          user_id: `u${i % 100}`,
          event_type: "ack_bench",
        },
      ]);
      const start = performance.now();
      const res = await fetch(`http://127.0.0.1:${port}/events`, { method: "POST", body });
      await res.arrayBuffer();
      if (res.status !== 202) throw new Error(`${name}: POST /events answered ${res.status}`);
      latencies.push(performance.now() - start);
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  return latencies;
}

/** An HTTP server that reads the body and answers 202 with a small JSON body. */
async function startFloor(port: number) {
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(202, { "content-type": "application/json" });
      res.end('{"accepted":1,"rejected":[]}');
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { port, close: () => server.close() };
}
