import { Code, ConnectError } from "@connectrpc/connect";
import { InvalidParameterError } from "../analytics/params.ts";
import { QueryMemoryError } from "../warehouse/warehouse.ts";

/**
 * A failure of a read from the warehouse as the RPC error a client acts
 * on: a bad parameter is INVALID_ARGUMENT, a query past its memory cap
 * RESOURCE_EXHAUSTED, anything else from the warehouse UNAVAILABLE (retry).
 */
export function rpcErrorOf(err: unknown): ConnectError {
  if (err instanceof InvalidParameterError)
    return new ConnectError(err.message, Code.InvalidArgument);
  if (err instanceof ConnectError) return err;
  if (err instanceof QueryMemoryError) {
    return new ConnectError(
      `${err.message} (TALLY_MAX_QUERY_MEMORY_BYTES): ask for fewer days or fewer windows, or raise the cap`,
      Code.ResourceExhausted,
    );
  }
  return new ConnectError(
    `the warehouse could not answer; retry later (${err instanceof Error ? err.message : String(err)})`,
    Code.Unavailable,
  );
}

/** `run`'s answer, or its failure as {@link rpcErrorOf} maps it. */
export async function answer<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw rpcErrorOf(err);
  }
}
