import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { EventSchema } from "../../gen/tally/v1/event_pb.js";
import {
  DeleteUserResponseSchema,
  GetDeletionResponseSchema,
  GetUserResponseSchema,
  ListUserEventsResponseSchema,
  type UsersService,
} from "../../gen/tally/v1/users_pb.js";
import { InvalidParameterError } from "../analytics/params.ts";
import { person, personEvents } from "../analytics/person.ts";
import { type Deletion, getDeletion, requestDeletion } from "../warehouse/deletions.ts";
import type { Warehouse } from "../warehouse/warehouse.ts";
import { answer } from "./warehouse-errors.ts";

const iso = (ms: number) => new Date(ms).toISOString();

function deletionMessage(d: Deletion) {
  return create(GetDeletionResponseSchema, {
    deletionId: d.deletionId,
    userId: d.userId,
    status: d.status,
    eventsDeleted: BigInt(d.eventsDeleted),
    requestedAt: iso(d.requestedAt),
    ...(d.completedAt === undefined ? {} : { completedAt: iso(d.completedAt) }),
  });
}

function requireUser(userId: string): string {
  if (userId === "") throw new InvalidParameterError("user_id", "required");
  return userId;
}

/** A person's data: what is stored about a user, and its deletion (see warehouse/deletions.ts). */
export function createUsersService(warehouse: Warehouse): ServiceImpl<typeof UsersService> {
  return {
    getUser: (req) =>
      answer(async () => {
        const found = await person(warehouse, requireUser(req.userId));
        if (found === undefined) {
          throw new ConnectError(`no event of user "${req.userId}" is stored`, Code.NotFound);
        }
        return create(GetUserResponseSchema, {
          ...found,
          events: BigInt(found.events),
          activeDays: BigInt(found.activeDays),
        });
      }),
    listUserEvents: (req) =>
      answer(async () => {
        const page = await personEvents(warehouse, { ...req, userId: requireUser(req.userId) });
        return create(ListUserEventsResponseSchema, {
          events: page.events.map((e) =>
            create(EventSchema, {
              eventId: e.eventId,
              occurredAt: timestampFromMs(e.occurredAt),
              userId: e.userId,
              eventType: e.eventType,
              properties: JSON.parse(e.properties) as JsonObject,
            }),
          ),
          ...(page.next === undefined ? {} : { next: page.next }),
        });
      }),
    deleteUser: (req) =>
      answer(async () => {
        const d = await requestDeletion(warehouse, requireUser(req.userId));
        return create(DeleteUserResponseSchema, { deletionId: d.deletionId, status: d.status });
      }),
    getDeletion: (req) =>
      answer(async () => {
        const d = await getDeletion(warehouse, req.deletionId);
        if (d === undefined) {
          throw new ConnectError(`no deletion "${req.deletionId}"`, Code.NotFound);
        }
        return deletionMessage(d);
      }),
  };
}
