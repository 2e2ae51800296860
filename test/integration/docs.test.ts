import { readFileSync } from "node:fs";
import { get } from "node:http";
import { join } from "node:path";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AnalyticsService } from "../../gen/tally/v1/analytics_pb.js";
import { IngestService } from "../../gen/tally/v1/ingest_pb.js";
import { UsersService } from "../../gen/tally/v1/users_pb.js";
import { restRoutes } from "../../src/api/rest/transcoder.ts";
import type { Tally } from "../../src/app/tally.ts";
import { rest } from "../clients.ts";
import { realServices, sameDayEvents, start, testConfig, waitFor } from "../helpers.ts";

interface Operation {
  parameters?: { name: string; in: string; required?: boolean }[];
  responses: Record<string, { content?: { "application/json": { schema: object } } }>;
}
type Document = { openapi: string; paths: Record<string, Record<string, Operation>> };

describe("API docs: OpenAPI generated from the protos, Swagger UI, proto downloads", () => {
  let tally: Tally;
  let port: number;
  let doc: Document;
  beforeAll(async () => {
    // With keys on: the docs stay open (CONTRACT.md).
    tally = await start(testConfig({ ...realServices(), TALLY_API_KEYS: "k" }));
    port = tally.port as number;
    const res = await rest(port, "/openapi.json");
    expect(res.status).toBe(200);
    doc = res.body as Document;
  });
  afterAll(() => tally?.close());

  it("is a valid OpenAPI 3.1 document", async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
  });

  it("lists exactly the routes the google.api.http annotations give, with their verbs", () => {
    const annotated = restRoutes([IngestService, AnalyticsService, UsersService])
      .map((r) => `${r.verb} ${r.path}`)
      .sort();
    const documented = Object.entries(doc.paths)
      .flatMap(([path, ops]) => Object.keys(ops).map((verb) => `${verb.toUpperCase()} ${path}`))
      .sort();
    expect(documented).toEqual(annotated);
    expect(documented).toContain("POST /events");
    expect(documented).toContain("GET /stats/retention");
  });

  it("describes what the routes really answer", async () => {
    const validator = new Validator();
    await validator.validate(structuredClone(doc));
    const resolved = validator.resolveRefs() as Document;
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    const check = (path: string, verb: string, status: number, body: unknown) => {
      const schema =
        resolved.paths[path]?.[verb]?.responses[String(status)]?.content?.["application/json"]
          .schema;
      expect(schema, `${verb} ${path} ${status}`).toBeDefined();
      const validate = ajv.compile(schema as object);
      expect(validate(body), `${verb} ${path}: ${ajv.errorsText(validate.errors)}`).toBe(true);
    };
    const auth = { headers: { authorization: "Bearer k" } };
    const events = sameDayEvents(3, 901, "docs_check", 2);
    const posted = await rest(port, "/events", [...events, { event_id: "bad" }], auth);
    expect(posted.status).toBe(202);
    check("/events", "post", 202, posted.body);
    const refused = await rest(port, "/stats/dau?from=2025-10-02&to=2025-10-01", undefined, auth);
    check("/stats/dau", "get", 400, refused.body);
    check("/stats/dau", "get", 401, (await rest(port, "/stats/dau")).body);
    // Every GET route with its required parameters filled in.
    const values: Record<string, string> = {
      from: "2025-10-27",
      to: "2025-10-29",
      start_date: "2025-10-27",
    };
    // A user's data, and its deletion: path variables filled in.
    const deleted = await rest(port, "/users/u1", undefined, { method: "DELETE", ...auth });
    expect(deleted.status).toBe(202);
    check("/users/{user_id}", "delete", 202, deleted.body);
    const inPath: Record<string, string> = {
      user_id: "u0",
      deletion_id: (deleted.body as { deletion_id: string }).deletion_id,
    };
    await waitFor(
      () => rest(port, "/users/u0", undefined, auth),
      (r) => r.status === 200,
    );
    check(
      "/users/{user_id}",
      "get",
      404,
      (await rest(port, "/users/nobody", undefined, auth)).body,
    );
    for (const [template, ops] of Object.entries(doc.paths)) {
      const get = ops.get;
      if (get === undefined) continue;
      const path = template.replace(/\{(\w+)\}/g, (_, name: string) => inPath[name] ?? "");
      const query = new URLSearchParams();
      for (const p of get.parameters ?? []) {
        // A funnel's steps repeat: two of them.
        if (p.name === "step")
          for (const step of ["signup", "purchase"]) query.append(p.name, step);
        else if (p.required && p.in === "query") query.set(p.name, values[p.name] ?? "");
      }
      const res = await rest(port, `${path}?${query}`, undefined, auth);
      expect(res.status, `${path}: ${JSON.stringify(res.body)}`).toBe(200);
      check(template, "get", 200, res.body);
    }
  });

  it("serves Swagger UI and the proto files, without a key", async () => {
    const page = await fetch(`http://127.0.0.1:${port}/docs/`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain("/docs/swagger-ui-bundle.js");
    const bundle = await fetch(`http://127.0.0.1:${port}/docs/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get("content-type")).toMatch(/javascript/);
    const redirect = await fetch(`http://127.0.0.1:${port}/docs`, { redirect: "manual" });
    expect(redirect.headers.get("location")).toBe("/docs/");
    for (const file of [
      "tally/v1/ingest.proto",
      "tally/v1/analytics.proto",
      "tally/v1/event.proto",
    ]) {
      const res = await fetch(`http://127.0.0.1:${port}/docs/proto/${file}`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(
        readFileSync(join(import.meta.dirname, "../../proto", file), "utf8"),
      );
    }
    // Only files in those folders: no way out of them (raw paths; fetch would normalize).
    for (const path of [
      "/docs/proto/../../package.json",
      "/docs/proto/%2e%2e/%2e%2e/package.json",
    ]) {
      const status = await new Promise((resolve) =>
        get({ port, host: "127.0.0.1", path }, (res) => resolve(res.statusCode)),
      );
      expect(status, path).toBe(404);
    }
  });
});
