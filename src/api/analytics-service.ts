import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  type AnalyticsService,
  GetActiveUsersResponseSchema,
  GetDataRangeResponseSchema,
  GetDauResponseSchema,
  GetFunnelResponseSchema,
  GetLifecycleResponseSchema,
  GetRetentionResponseSchema,
  GetStickinessResponseSchema,
  GetTopEventsResponseSchema,
  GetTrendsResponseSchema,
} from "../../gen/tally/v1/analytics_pb.js";
import { activeUsers } from "../analytics/active-users.ts";
import { dataRange } from "../analytics/data-range.ts";
import { dau } from "../analytics/dau.ts";
import { type FunnelStep, funnel } from "../analytics/funnel.ts";
import { lifecycle } from "../analytics/lifecycle.ts";
import { retention } from "../analytics/retention.ts";
import type { ReadOptions } from "../analytics/source.ts";
import { stickiness } from "../analytics/stickiness.ts";
import { topEvents } from "../analytics/top-events.ts";
import { trends } from "../analytics/trends.ts";
import type { Warehouse } from "../warehouse/warehouse.ts";
import { answer } from "./warehouse-errors.ts";

/** Answers stats from the warehouse; `options` says which rollups it holds. */
export function createAnalyticsService(
  warehouse: Warehouse,
  options: ReadOptions = {},
): ServiceImpl<typeof AnalyticsService> {
  return {
    getDau: (req) =>
      answer(async () => {
        const days = await dau(warehouse, req, options);
        return create(GetDauResponseSchema, {
          days: days.map((d) => ({ date: d.date, uniqueUsers: BigInt(d.uniqueUsers) })),
        });
      }),
    getActiveUsers: (req) =>
      answer(async () => {
        const days = await activeUsers(warehouse, req, options);
        return create(GetActiveUsersResponseSchema, {
          days: days.map((d) => ({ date: d.date, activeUsers: BigInt(d.activeUsers) })),
        });
      }),
    getDataRange: () =>
      answer(async () => create(GetDataRangeResponseSchema, await dataRange(warehouse))),
    getTopEvents: (req) =>
      answer(async () => {
        const events = await topEvents(warehouse, req, options);
        return create(GetTopEventsResponseSchema, {
          events: events.map((e) => ({ eventType: e.eventType, count: BigInt(e.count) })),
        });
      }),
    getRetention: (req) =>
      answer(async () => {
        const cohorts = await retention(warehouse, req, options);
        return create(GetRetentionResponseSchema, {
          cohorts: cohorts.map((c) => ({
            cohort: c.cohort,
            size: BigInt(c.size),
            retained: c.retained.map(BigInt),
            rates: c.rates,
          })),
        });
      }),
    getLifecycle: (req) =>
      answer(async () => {
        const periods = await lifecycle(warehouse, req, options);
        return create(GetLifecycleResponseSchema, {
          periods: periods.map((p) => ({
            date: p.date,
            new: BigInt(p.new),
            returning: BigInt(p.returning),
            resurrecting: BigInt(p.resurrecting),
            dormant: BigInt(p.dormant),
          })),
        });
      }),
    getStickiness: (req) =>
      answer(async () => {
        const periods = await stickiness(warehouse, req, options);
        return create(GetStickinessResponseSchema, {
          periods: periods.map((p) => ({ periods: p.periods, users: BigInt(p.users) })),
        });
      }),
    getFunnel: (req) =>
      answer(async () => {
        const found = await funnel(warehouse, req, options);
        const steps = (s: FunnelStep[]) =>
          s.map((step) => ({ ...step, users: BigInt(step.users) }));
        return create(GetFunnelResponseSchema, {
          steps: steps(found.steps ?? []),
          breakdowns: (found.breakdowns ?? []).map((b) => ({
            value: b.value,
            steps: steps(b.steps),
          })),
        });
      }),
    getTrends: (req) =>
      answer(async () =>
        create(GetTrendsResponseSchema, { series: await trends(warehouse, req, options) }),
      ),
  };
}
