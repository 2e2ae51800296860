import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { AnalyticsService } from "../../gen/tally/v1/analytics_pb.js";
import { IngestService } from "../../gen/tally/v1/ingest_pb.js";
import { UsersService } from "../../gen/tally/v1/users_pb.js";

const KEY = "tally.apiKey";

/** The API key kept in this browser ('' for none). */
export const apiKey = {
  get: () => localStorage.getItem(KEY) ?? "",
  set: (key: string) =>
    key === "" ? localStorage.removeItem(KEY) : localStorage.setItem(KEY, key.trim()),
};

/** Sends the stored key, if any, on every call. */
const withKey: Interceptor = (next) => (req) => {
  const key = apiKey.get();
  if (key !== "") req.header.set("authorization", `Bearer ${key}`);
  return next(req);
};

const transport = createConnectTransport({
  baseUrl: location.origin,
  useBinaryFormat: true,
  interceptors: [withKey],
});

export const analytics: Client<typeof AnalyticsService> = createClient(AnalyticsService, transport);
export const ingest: Client<typeof IngestService> = createClient(IngestService, transport);
export const users: Client<typeof UsersService> = createClient(UsersService, transport);
