import { connect } from "node:net";
import { dropNamespaces } from "./cleanup.ts";

/**
 * Integration tests need the real RabbitMQ and Redis: when one does not
 * answer, the run fails here, saying how to start it. Never a skip.
 */
export default async function setup() {
  const services = [
    {
      name: "RabbitMQ",
      url: process.env.TEST_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672",
      start: "rabbitmq-server -detached",
    },
    {
      name: "Redis",
      url: process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379",
      start: "redis-server --daemonize yes",
    },
  ];
  const down: string[] = [];
  for (const s of services) {
    const u = new URL(s.url);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(Number(u.port), u.hostname);
      socket.setTimeout(2000);
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
      socket.once("timeout", () => {
        socket.destroy();
        resolve(false);
      });
    });
    if (!ok) down.push(`${s.name} does not answer at ${s.url} (start it: ${s.start})`);
  }
  if (down.length > 0)
    throw new Error(`integration tests need real services:\n  ${down.join("\n  ")}`);
  // After the run: drop every test namespace's queues, exchanges and keys.
  const [amqp, redis] = services;
  return () => dropNamespaces(/^t_[0-9a-f]{16}[.:]/, amqp?.url ?? "", redis?.url ?? "");
}
