/**
 * rabbitmq-client's options for `AMQP_URL`: one URL, or the nodes of one
 * RabbitMQ cluster comma-separated (CONTRACT.md). The first URL gives the
 * credentials and vhost; every one is a host the client tries in turn when
 * it connects or reconnects.
 */
export function amqpOptions(url: string): { url: string; hosts?: string[] } {
  const urls = url
    .split(",")
    .map((u) => u.trim())
    .filter((u) => u !== "");
  if (urls.length <= 1) return { url: urls[0] ?? url };
  return {
    url: urls[0] as string,
    hosts: urls.map((u) => {
      const parsed = new URL(u);
      return `${parsed.hostname}:${parsed.port || (parsed.protocol === "amqps:" ? 5671 : 5672)}`;
    }),
  };
}
