/**
 * Event types that are stored but are not activity (CONTRACT.md): an SDK's
 * identify, group and alias calls say who someone is, not that they did
 * anything. DAU, active users, retention and top events leave them out
 * unless a `segment=event_type:` names one.
 */
export const NOT_ACTIVITY = ["$identify", "$groupidentify", "$create_alias"] as const;

/** {@link NOT_ACTIVITY} as a SQL tuple, for `event_type NOT IN …` (the names hold no quote). */
export const NOT_ACTIVITY_SQL = `(${NOT_ACTIVITY.map((t) => `'${t}'`).join(", ")})`;
