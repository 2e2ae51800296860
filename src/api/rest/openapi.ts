import {
  type DescField,
  type DescMessage,
  type DescMethod,
  type DescService,
  getOption,
  ScalarType,
} from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import { FieldBehavior, field_behavior } from "../../../gen/google/api/field_behavior_pb.js";
import { pathVariables, type RestRoute, restRoutes } from "./transcoder.ts";

type JsonSchema = Record<string, unknown>;

/** Options of {@link openApiDocument}. */
export interface OpenApiOptions {
  /** A declaration's doc comment (the proto source's), "" for none. */
  describe(desc: DescService | DescMethod | DescMessage | DescField): string;
  /** Proto files offered for download, as paths under /docs/proto/. */
  protoFiles: readonly string[];
}

/**
 * The OpenAPI 3.1 document of the REST routes: the same `google.api.http`
 * annotations the transcoder serves (through {@link restRoutes}), with the
 * shapes it really answers: snake_case fields, 64-bit counts as numbers,
 * 202 for POST, `response_body` unwrapped, Connect's error shape.
 */
export function openApiDocument(services: readonly DescService[], options: OpenApiOptions) {
  const schemas = new Map<string, JsonSchema>();
  const describe = (desc: Parameters<OpenApiOptions["describe"]>[0]) =>
    prose(options.describe(desc));

  /** A field's JSON Schema; messages go to components once. */
  function fieldSchema(field: DescField, inQuery = false): JsonSchema {
    const one = () => {
      switch (field.fieldKind) {
        case "scalar":
        case "list":
          if (field.fieldKind === "list" && field.listKind !== "message") {
            return field.listKind === "enum" ? enumSchema(field.enum) : scalarSchema(field.scalar);
          }
          return field.fieldKind === "scalar"
            ? scalarSchema(field.scalar)
            : messageSchema(field.message as DescMessage);
        case "enum":
          return enumSchema(field.enum);
        case "message":
          return messageSchema(field.message);
        case "map":
          return {
            type: "object",
            additionalProperties:
              field.mapKind === "message"
                ? messageSchema(field.message)
                : field.mapKind === "enum"
                  ? enumSchema(field.enum)
                  : scalarSchema(field.scalar),
          };
      }
    };
    // An unset optional field is written as null (json-shape.ts); a query leaves it out.
    const optional =
      !inQuery &&
      field.fieldKind === "scalar" &&
      field.presence === FeatureSet_FieldPresence.EXPLICIT &&
      field.oneof === undefined;
    const schema =
      field.fieldKind === "list"
        ? { type: "array", items: one() }
        : optional
          ? { ...one(), type: [one().type, "null"] }
          : one();
    const description = describe(field);
    return description === "" ? schema : { ...schema, description };
  }

  function messageSchema(message: DescMessage): JsonSchema {
    const wkt = WELL_KNOWN[message.typeName];
    if (wkt !== undefined) return wkt;
    if (!schemas.has(message.typeName)) {
      schemas.set(message.typeName, {}); // placeholder: messages may nest themselves
      const required = message.fields.filter(isRequired).map((f) => f.name);
      schemas.set(message.typeName, {
        type: "object",
        ...withDescription(describe(message)),
        properties: Object.fromEntries(message.fields.map((f) => [f.name, fieldSchema(f)])),
        ...(required.length > 0 ? { required } : {}),
      });
    }
    return { $ref: `#/components/schemas/${message.typeName}` };
  }

  function operation(route: RestRoute) {
    const { method } = route;
    const [summary = "", ...rest] = describe(method).split("\n\n");
    const inPath = new Set(pathVariables(route.path));
    const parameters = [
      ...method.input.fields.filter((f) => inPath.has(f.name)).map(pathParameter),
      ...(route.verb === "GET"
        ? method.input.fields.filter((f) => !inPath.has(f.name)).map(queryParameter)
        : []),
    ];
    const output =
      route.responseBody === ""
        ? messageSchema(method.output)
        : fieldSchema(method.output.fields.find((f) => f.name === route.responseBody) as DescField);
    const ok = route.verb === "GET" ? "200" : "202";
    return {
      operationId: method.name,
      tags: [method.parent.name],
      summary,
      ...withDescription(
        [...rest, `Also \`${method.parent.typeName}/${method.name}\` over gRPC and Connect.`].join(
          "\n\n",
        ),
      ),
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(route.body === "" ? {} : { requestBody: requestBody(route) }),
      responses: {
        [ok]: {
          description: route.verb === "GET" ? "OK" : "Accepted",
          content: { "application/json": { schema: output } },
        },
        "400": { $ref: "#/components/responses/InvalidArgument" },
        "401": { $ref: "#/components/responses/Unauthenticated" },
        "403": { $ref: "#/components/responses/PermissionDenied" },
        ...(inPath.size === 0 ? {} : { "404": { $ref: "#/components/responses/NotFound" } }),
        ...(route.body === "" ? {} : { "413": { $ref: "#/components/responses/TooLarge" } }),
        "429": { $ref: "#/components/responses/RateLimited" },
        "503": { $ref: "#/components/responses/Unavailable" },
      },
    };
  }

  function pathParameter(field: DescField) {
    const { description, ...schema } = fieldSchema(field, true);
    return {
      name: field.name,
      in: "path",
      required: true,
      ...(description === undefined ? {} : { description }),
      schema,
    };
  }

  function queryParameter(field: DescField) {
    const { description, ...schema } = fieldSchema(field, true);
    return {
      name: field.name,
      in: "query",
      ...(isRequired(field) ? { required: true } : {}),
      ...(description === undefined ? {} : { description }),
      schema,
    };
  }

  function requestBody(route: RestRoute) {
    if (route.body === "*") {
      return {
        required: true,
        content: { "application/json": { schema: messageSchema(route.method.input) } },
      };
    }
    const field = route.method.input.fields.find((f) => f.name === route.body) as DescField;
    const { description, ...list } = fieldSchema(field);
    return {
      required: true,
      description:
        `A JSON array of ${field.name}, or an object holding it as \`${field.name}\`. ${description ?? ""}`.trim(),
      content: {
        "application/json": {
          schema: {
            oneOf: [
              list,
              { type: "object", properties: { [field.name]: list }, required: [field.name] },
            ],
          },
        },
      },
    };
  }

  const routes = restRoutes(services);
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    paths[route.path] ??= {};
    (paths[route.path] as Record<string, unknown>)[route.verb.toLowerCase()] = operation(route);
  }
  const downloads = options.protoFiles.map((f) => `[${f}](/docs/proto/${f})`).join(", ");
  return {
    openapi: "3.1.0",
    info: {
      title: "Tally",
      version: [...new Set(services.map((s) => s.file.proto.package))].join(", "),
      description: [
        "Event ingest and product analytics. The REST routes below are transcoded from the gRPC services' `google.api.http` annotations; the same methods answer over gRPC, gRPC-Web and Connect on the same port (server reflection is on).",
        `Protobuf definitions, for gRPC and Connect clients: ${downloads}.`,
        "With API keys configured, send one as `Authorization: Bearer KEY` or `x-api-key: KEY`.",
      ].join("\n\n"),
    },
    servers: [{ url: "/" }],
    tags: services.map((s) => ({ name: s.name, ...withDescription(describe(s)) })),
    security: [{}, { bearer: [] }, { apiKey: [] }],
    paths,
    components: {
      schemas: {
        ...Object.fromEntries([...schemas].sort(([a], [b]) => a.localeCompare(b))),
        Error: {
          type: "object",
          description: "Connect's error shape.",
          properties: {
            code: { type: "string", description: "The status, e.g. invalid_argument." },
            message: { type: "string", description: "Names the field or parameter, and why." },
          },
          required: ["code", "message"],
        },
      },
      responses: {
        InvalidArgument: errorResponse("A parameter or field is malformed; the message names it."),
        Unauthenticated: errorResponse("No API key, or an unknown one."),
        PermissionDenied: errorResponse(
          "The key lacks the scope this route needs (ingest, read or admin).",
        ),
        NotFound: errorResponse("Nothing is stored under that name."),
        TooLarge: errorResponse("The body, or the number of events, is over the limit."),
        RateLimited: errorResponse("Too many requests: retry after Retry-After seconds.", true),
        Unavailable: errorResponse("The queue or warehouse cannot answer now: retry later.", true),
      },
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "An API key" },
        apiKey: { type: "apiKey", in: "header", name: "x-api-key" },
      },
    },
  };
}

const WELL_KNOWN: Record<string, JsonSchema> = {
  "google.protobuf.Timestamp": {
    type: "string",
    format: "date-time",
    examples: ["2025-10-28T12:00:00Z"],
  },
  "google.protobuf.Struct": { type: "object", additionalProperties: true },
  "google.protobuf.Value": {},
  "google.protobuf.ListValue": { type: "array" },
};

function scalarSchema(scalar: ScalarType): JsonSchema {
  switch (scalar) {
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return { type: "number" };
    case ScalarType.BYTES:
      return { type: "string", contentEncoding: "base64" };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: "integer", format: "int32", minimum: 0 };
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      // The transcoder answers counts as JSON numbers, not protobuf's strings.
      return { type: "integer", format: "int64", minimum: 0 };
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return { type: "integer", format: "int64" };
    default:
      return { type: "integer", format: "int32" };
  }
}

function enumSchema(e: { values: readonly { name: string }[] }): JsonSchema {
  return { type: "string", enum: e.values.map((v) => v.name) };
}

function isRequired(field: DescField): boolean {
  return getOption(field, field_behavior).includes(FieldBehavior.REQUIRED);
}

function withDescription(description: string) {
  return description === "" ? {} : { description };
}

function errorResponse(description: string, retryAfter = false) {
  return {
    description,
    ...(retryAfter
      ? {
          headers: {
            "Retry-After": { description: "Seconds to wait", schema: { type: "integer" } },
          },
        }
      : {}),
    content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
  };
}

/** A proto comment as Markdown: wrapped lines joined, paragraphs kept, lint directives dropped. */
function prose(comment: string): string {
  return comment
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => !line.startsWith("buf:lint:"))
    .join("\n")
    .split(/\n{2,}/)
    .map((p) => p.replace(/\n/g, " ").trim())
    .filter((p) => p !== "")
    .join("\n\n");
}
