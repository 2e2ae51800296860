import {
  createRegistry,
  type DescFile,
  type DescService,
  type Registry,
  toBinary,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

type Request = v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest;

/**
 * gRPC server reflection, v1 and v1alpha, over the files of `services`, so
 * grpcurl and ghz work without the .proto files.
 */
export function registerReflection(router: ConnectRouter, services: readonly DescService[]) {
  const files = new Map<string, DescFile>();
  const add = (f: DescFile) => {
    if (files.has(f.name)) return;
    files.set(f.name, f);
    for (const d of f.dependencies) add(d);
  };
  for (const s of services) add(s.file);
  const registry = createRegistry(...files.values());
  const names = services.map((s) => s.typeName);
  const answer = (req: Request) => respond(req, files, registry, names);
  router.service(v1.ServerReflection, {
    async *serverReflectionInfo(requests) {
      for await (const req of requests)
        yield { ...answer(req), validHost: req.host, originalRequest: req };
    },
  });
  router.service(v1alpha.ServerReflection, {
    async *serverReflectionInfo(requests) {
      for await (const req of requests)
        yield { ...answer(req), validHost: req.host, originalRequest: req };
    },
  });
}

function respond(
  req: Request,
  files: ReadonlyMap<string, DescFile>,
  registry: Registry,
  services: readonly string[],
) {
  const r = req.messageRequest;
  const notFound = (what: string) => ({
    messageResponse: {
      case: "errorResponse" as const,
      value: { errorCode: 5, errorMessage: `${what} not found` },
    },
  });
  const withDeps = (file: DescFile) => {
    const out: Uint8Array[] = [];
    const seen = new Set<string>();
    const walk = (f: DescFile) => {
      if (seen.has(f.name)) return;
      seen.add(f.name);
      out.push(toBinary(FileDescriptorProtoSchema, f.proto));
      for (const d of f.dependencies) walk(d);
    };
    walk(file);
    return {
      messageResponse: {
        case: "fileDescriptorResponse" as const,
        value: { fileDescriptorProto: out },
      },
    };
  };
  switch (r.case) {
    case "listServices":
      return {
        messageResponse: {
          case: "listServicesResponse" as const,
          value: { service: services.map((name) => ({ name })) },
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
    case "allExtensionNumbersOfType":
      return {
        messageResponse: {
          case: "allExtensionNumbersResponse" as const,
          value: { baseTypeName: r.value, extensionNumber: [] },
        },
      };
    default:
      return notFound("extension");
  }
}
