import { create, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { ServerReflectionRequestSchema } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { AnalyticsService } from "../../gen/tally/v1/analytics_pb.js";
import { IngestService } from "../../gen/tally/v1/ingest_pb.js";
import { createReflection } from "./reflection.ts";

/** One of the request's cases, as given to `create`. */
type Case = { case: string; value: unknown };

describe("server reflection", () => {
  const reflection = createReflection([IngestService, AnalyticsService]);
  const ask = (answer: ReturnType<typeof reflection.stream>, messageRequest: Case) =>
    answer(create(ServerReflectionRequestSchema, { messageRequest } as never)).messageResponse;
  const fileNames = (r: ReturnType<typeof ask>) =>
    r.case === "fileDescriptorResponse"
      ? r.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name)
      : [`not files: ${r.case}`];

  it("serves files by their proto file names, each once per stream", () => {
    const answer = reflection.stream();
    const first = fileNames(
      ask(answer, { case: "fileByFilename", value: "tally/v1/ingest.proto" }),
    );
    expect(first).toEqual(
      expect.arrayContaining([
        "tally/v1/ingest.proto",
        "tally/v1/event.proto",
        "google/protobuf/struct.proto",
        "google/protobuf/timestamp.proto",
        "google/api/annotations.proto",
      ]),
    );
    expect(first[0]).toBe("tally/v1/ingest.proto");
    expect(new Set(first).size).toBe(first.length);
    // Asked again on the same stream: the file itself, none of what the stream already has.
    expect(
      fileNames(ask(answer, { case: "fileByFilename", value: "google/protobuf/struct.proto" })),
    ).toEqual(["google/protobuf/struct.proto"]);
    // A new stream gets the dependencies again.
    expect(
      fileNames(
        ask(reflection.stream(), { case: "fileByFilename", value: "tally/v1/event.proto" }),
      ),
    ).toEqual(expect.arrayContaining(["tally/v1/event.proto", "google/protobuf/struct.proto"]));
    expect(ask(answer, { case: "fileByFilename", value: "tally/v1/ingest" })).toMatchObject({
      case: "errorResponse",
      value: { errorCode: 5 },
    });
  });

  it("answers the extensions of a type truthfully, and which file holds one", () => {
    const answer = reflection.stream();
    // google.api.http extends MethodOptions as field 72295728.
    expect(
      ask(answer, { case: "allExtensionNumbersOfType", value: "google.protobuf.MethodOptions" }),
    ).toMatchObject({
      case: "allExtensionNumbersResponse",
      value: { baseTypeName: "google.protobuf.MethodOptions", extensionNumber: [72295728] },
    });
    expect(
      ask(answer, { case: "allExtensionNumbersOfType", value: "tally.v1.Event" }),
    ).toMatchObject({ case: "allExtensionNumbersResponse", value: { extensionNumber: [] } });
    expect(ask(answer, { case: "allExtensionNumbersOfType", value: "no.Such" })).toMatchObject({
      case: "errorResponse",
      value: { errorCode: 5 },
    });
    expect(
      fileNames(
        ask(answer, {
          case: "fileContainingExtension",
          value: { containingType: "google.protobuf.MethodOptions", extensionNumber: 72295728 },
        }),
      )[0],
    ).toBe("google/api/annotations.proto");
  });
});
