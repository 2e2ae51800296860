import {
  type DescField,
  type DescMessage,
  fromJson,
  type JsonObject,
  type JsonValue,
  ScalarType,
} from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";

const INT64 = new Set([
  ScalarType.INT64,
  ScalarType.UINT64,
  ScalarType.SINT64,
  ScalarType.FIXED64,
  ScalarType.SFIXED64,
]);

/**
 * Proto JSON writes 64-bit integers as strings and leaves an unset optional
 * field out; REST clients want counts as numbers and `null` where a value
 * may be missing (CONTRACT.md). Rewrites both in place, following the schema.
 */
export function restJson(schema: DescMessage, json: JsonValue): JsonValue {
  if (json === null || typeof json !== "object" || Array.isArray(json)) return json;
  for (const field of schema.fields) {
    const value = json[field.name];
    if (value === undefined) {
      const optional =
        field.fieldKind === "scalar" &&
        field.presence === FeatureSet_FieldPresence.EXPLICIT &&
        field.oneof === undefined;
      if (optional) json[field.name] = null;
      continue;
    }
    if (field.fieldKind === "scalar" && INT64.has(field.scalar)) {
      json[field.name] = Number(value);
    } else if (
      field.fieldKind === "list" &&
      field.listKind === "scalar" &&
      INT64.has(field.scalar)
    ) {
      json[field.name] = (value as JsonValue[]).map(Number);
    } else if (field.fieldKind === "message" && !isWellKnown(field.message)) {
      restJson(field.message, value);
    } else if (field.fieldKind === "list" && field.listKind === "message") {
      for (const item of value as JsonValue[]) restJson(field.message, item);
    }
  }
  return json;
}

function isWellKnown(message: DescMessage): boolean {
  return message.typeName.startsWith("google.protobuf.");
}

/**
 * Parses one JSON element of a repeated message body. Accepts a non-negative
 * integer for a string field (REST clients send `"user_id": 1`). Returns the
 * JSON to decode, or the reason it cannot be, naming the field.
 */
export function checkElement(schema: DescMessage, element: JsonValue): JsonObject | string {
  if (element === null || typeof element !== "object" || Array.isArray(element)) {
    return "must be a JSON object";
  }
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(element)) {
    const field = schema.fields.find((f) => f.name === key || f.jsonName === key);
    if (field === undefined) return `${key}: unknown field`;
    let v = value;
    if (
      field.fieldKind === "scalar" &&
      field.scalar === ScalarType.STRING &&
      typeof v === "number"
    ) {
      if (!Number.isSafeInteger(v) || v < 0)
        return `${field.name}: expected a string or a non-negative integer`;
      v = String(v);
    }
    try {
      fromJson(schema, { [key]: v });
    } catch {
      return `${field.name}: expected ${describe(field)}`;
    }
    out[key] = v;
  }
  return out;
}

function describe(field: DescField): string {
  if (field.fieldKind === "message") {
    switch (field.message.typeName) {
      case "google.protobuf.Timestamp":
        return "an RFC 3339 time with a zone, like 2025-10-28T12:00:00Z";
      case "google.protobuf.Struct":
        return "a JSON object";
      default:
        return "an object";
    }
  }
  if (field.fieldKind === "list") return "an array";
  if (field.fieldKind === "scalar") {
    if (field.scalar === ScalarType.STRING) return "a string";
    if (field.scalar === ScalarType.BOOL) return "true or false";
    return "a number";
  }
  return "a valid value";
}
