#!/usr/bin/env node
/**
 * A buf/protoc plugin: writes openapi.json for the REST routes of the
 * `tally.*` services, from their `google.api.http` annotations and doc
 * comments. `npm run generate` runs it (buf.gen.yaml), so the document
 * cannot drift from the protos, and CI checks it is fresh.
 */
import { create, createFileRegistry } from "@bufbuild/protobuf";
import {
  CodeGeneratorResponse_Feature,
  CodeGeneratorResponseSchema,
  FileDescriptorSetSchema,
} from "@bufbuild/protobuf/wkt";
import { getComments, runNodeJs } from "@bufbuild/protoplugin";
import { openApiDocument } from "./openapi.ts";

runNodeJs({
  name: "protoc-gen-openapi",
  version: "v1",
  run(request) {
    const registry = createFileRegistry(
      create(FileDescriptorSetSchema, { file: request.protoFile }),
    );
    const files = request.fileToGenerate.flatMap((name) => {
      const file = registry.getFile(name);
      return file?.proto.package.startsWith("tally.") ? [file] : [];
    });
    // buf runs plugins once per input in buf.gen.yaml: only ours has services.
    if (files.length === 0) return create(CodeGeneratorResponseSchema, {});
    const doc = openApiDocument(
      files.flatMap((f) => f.services),
      {
        describe: (desc) => getComments(desc).leading ?? "",
        protoFiles: files.map((f) => f.proto.name),
      },
    );
    return create(CodeGeneratorResponseSchema, {
      supportedFeatures: BigInt(CodeGeneratorResponse_Feature.PROTO3_OPTIONAL),
      file: [{ name: "openapi.json", content: `${JSON.stringify(doc, null, 2)}\n` }],
    });
  },
});
