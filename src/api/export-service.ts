import type { ServiceImpl } from "@connectrpc/connect";
import type { ExportService } from "../../gen/tally/v1/export_pb.js";
import { exportEvents } from "../analytics/export.ts";
import type { Warehouse } from "../warehouse/warehouse.ts";
import { rpcErrorOf } from "./warehouse-errors.ts";

/** The stored events, out, a day at a time (see analytics/export.ts). */
export function createExportService(warehouse: Warehouse): ServiceImpl<typeof ExportService> {
  return {
    async *exportEvents(req) {
      try {
        for await (const chunk of exportEvents(warehouse, req)) {
          yield { data: chunk.data, events: BigInt(chunk.events), through: chunk.through };
        }
      } catch (err) {
        throw rpcErrorOf(err);
      }
    },
  };
}
