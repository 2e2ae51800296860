import { createServer, type IncomingMessage } from "node:http";

/**
 * A loopback HTTP proxy in front of Tally that answers some requests 503
 * itself: `lostAnswer` of them after Tally has taken them (stored, but the
 * SDK never hears so: it must retry, and dedupe must absorb the copy), and
 * `refused` of them before forwarding. Which ones is fixed by a counter, and
 * at least two requests pass between faults, six at most, so that a retried
 * batch is not failed again and again (an SDK's backoff grows fast).
 */
export async function startFlakyProxy(
  target: string,
  every: { lostAnswer: number; refused: number },
) {
  let requests = 0;
  let lastFault = Number.NEGATIVE_INFINITY;
  const faults = { lostAnswers: 0, refused: 0 };

  const server = createServer(async (req, res) => {
    const n = ++requests;
    // At most six faults in all, apart: enough for each SDK to meet one, never a storm.
    const may = n - lastFault > 2 && faults.lostAnswers + faults.refused < 6;
    const body = await read(req);
    if (may && n % every.refused === 0) {
      lastFault = n;
      faults.refused++;
      res.writeHead(503, { "retry-after": "0", "content-type": "application/json" }).end("{}");
      return;
    }
    const headers = { ...req.headers } as Record<string, string>;
    delete headers.host;
    delete headers["content-length"];
    const answer = await fetch(`${target}${req.url}`, {
      method: req.method,
      headers,
      ...(req.method === "GET" || req.method === "HEAD" ? {} : { body }),
    });
    const text = await answer.text();
    if (may && n % every.lostAnswer === 0 && answer.status < 300) {
      lastFault = n;
      faults.lostAnswers++;
      res.writeHead(503, { "retry-after": "0", "content-type": "application/json" }).end("{}");
      return;
    }
    res.writeHead(answer.status, {
      "content-type": answer.headers.get("content-type") ?? "application/json",
    });
    res.end(text);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    faults,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function read(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
