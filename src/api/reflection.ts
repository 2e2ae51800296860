import {
  createRegistry,
  type DescExtension,
  type DescFile,
  type DescService,
  toBinary,
} from "@bufbuild/protobuf";
import { nestedTypes } from "@bufbuild/protobuf/reflect";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

type Request = v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest;

/** gRPC's NOT_FOUND, as reflection's error_response carries it. */
const NOT_FOUND = 5;

/**
 * gRPC server reflection, v1 and v1alpha, over the files of `services`, so
 * grpcurl, ghz and `buf curl --reflect` work without the .proto files.
 */
export function registerReflection(router: ConnectRouter, services: readonly DescService[]) {
  const reflection = createReflection(services);
  router.service(v1.ServerReflection, {
    async *serverReflectionInfo(requests) {
      const answer = reflection.stream();
      for await (const req of requests)
        yield { ...answer(req), validHost: req.host, originalRequest: req };
    },
  });
  router.service(v1alpha.ServerReflection, {
    async *serverReflectionInfo(requests) {
      const answer = reflection.stream();
      for await (const req of requests)
        yield { ...answer(req), validHost: req.host, originalRequest: req };
    },
  });
}

/**
 * The answers of reflection over the files of `services` and their
 * dependencies, by their proto file names (`tally/v1/ingest.proto`). Each
 * stream sends a file once: a file asked for is always sent, and its
 * dependencies only if that stream has not had them yet (as grpc-go does).
 */
export function createReflection(services: readonly DescService[]) {
  const files = new Map<string, DescFile>();
  const add = (f: DescFile) => {
    if (files.has(f.proto.name)) return;
    files.set(f.proto.name, f);
    for (const d of f.dependencies) add(d);
  };
  for (const s of services) add(s.file);
  const registry = createRegistry(...files.values());
  const extensions: DescExtension[] = [];
  for (const f of files.values()) {
    for (const t of nestedTypes(f)) if (t.kind === "extension") extensions.push(t);
  }
  const extensionsOf = (typeName: string) =>
    extensions.filter((e) => e.extendee.typeName === typeName);
  const names = services.map((s) => s.typeName);

  return {
    /** An answerer for one stream, remembering which files it has sent. */
    stream() {
      const sent = new Set<string>();
      const withDeps = (file: DescFile) => {
        const out: Uint8Array[] = [];
        const queue = [file];
        for (let f = queue.shift(); f !== undefined; f = queue.shift()) {
          if (out.length > 0 && sent.has(f.proto.name)) continue;
          sent.add(f.proto.name);
          out.push(toBinary(FileDescriptorProtoSchema, f.proto));
          queue.push(...f.dependencies);
        }
        return {
          messageResponse: {
            case: "fileDescriptorResponse" as const,
            value: { fileDescriptorProto: out },
          },
        };
      };
      return (req: Request) => {
        const r = req.messageRequest;
        switch (r.case) {
          case "listServices":
            return {
              messageResponse: {
                case: "listServicesResponse" as const,
                value: { service: names.map((name) => ({ name })) },
              },
            };
          case "fileByFilename": {
            const file = files.get(r.value);
            return file === undefined ? notFound(`file ${r.value}`) : withDeps(file);
          }
          case "fileContainingSymbol": {
            // A method's symbol is its service's name plus ".Method".
            const desc =
              registry.get(r.value) ?? registry.get(r.value.slice(0, r.value.lastIndexOf(".")));
            return desc === undefined ? notFound(`symbol ${r.value}`) : withDeps(desc.file);
          }
          case "fileContainingExtension": {
            const { containingType, extensionNumber } = r.value;
            const ext = extensionsOf(containingType).find((e) => e.number === extensionNumber);
            return ext === undefined
              ? notFound(`extension ${extensionNumber} of ${containingType}`)
              : withDeps(ext.file);
          }
          case "allExtensionNumbersOfType":
            return registry.getMessage(r.value) === undefined
              ? notFound(`type ${r.value}`)
              : {
                  messageResponse: {
                    case: "allExtensionNumbersResponse" as const,
                    value: {
                      baseTypeName: r.value,
                      extensionNumber: extensionsOf(r.value).map((e) => e.number),
                    },
                  },
                };
          default:
            return {
              messageResponse: {
                case: "errorResponse" as const,
                value: { errorCode: 3, errorMessage: "empty or unknown reflection request" },
              },
            };
        }
      };
    },
  };
}

function notFound(what: string) {
  return {
    messageResponse: {
      case: "errorResponse" as const,
      value: { errorCode: NOT_FOUND, errorMessage: `${what} not found` },
    },
  };
}
