/** How a funnel's steps must follow each other (CONTRACT.md). */
export type FunnelMode = "ordered" | "strict" | "unordered";

/** What every user's events are matched against: made once a query by {@link funnelPlan}. */
export interface FunnelPlan {
  mode: FunnelMode;
  /** The steps' distinct types. */
  types: readonly string[];
  /** Each step's type, as its index (1-based) in `types`. */
  codes: readonly number[];
  /** How many steps each type (index - 1) has. */
  need: readonly number[];
  /** Each step's latest earlier step of the same type (-1: none): the event it took is taken. */
  same: readonly number[];
  windowMs: number;
}

export function funnelPlan(
  mode: FunnelMode,
  steps: readonly string[],
  windowMs: number,
): FunnelPlan {
  const types = [...new Set(steps)];
  const codes = steps.map((s) => types.indexOf(s) + 1);
  return {
    mode,
    types,
    codes,
    need: types.map((type) => steps.filter((s) => s === type).length),
    same: codes.map((k, j) => codes.lastIndexOf(k, j - 1)),
    windowMs,
  };
}

/** One user's events, sorted by time then event_id (as lowercase text). */
export interface UserEvents {
  /** Times, ms since the epoch. */
  t: ArrayLike<number>;
  /** Each event's type as a step type index (1-based), 0 for another type. */
  c: ArrayLike<number>;
  /** 1 where the event's local day is in the range: an attempt may start there. */
  r: ArrayLike<number>;
  /** Strict mode: each event's place among all the user's events (the steps' events alone are given). */
  p?: ArrayLike<number>;
}

/** The attempt that counts for a user: how far it got, where it started, and its steps' times. */
export interface UserFunnel {
  reach: number;
  start: number;
  /** The matched events' times, in step order (empty for unordered). */
  times: number[];
}

/** The first index of sorted `xs` holding a value >= `x` (xs.length if none). */
function lowerBound(xs: readonly number[], x: number): number {
  let [lo, hi] = [0, xs.length];
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((xs[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Matches one user's events: every attempt (a first-step event in the
 * range; any step's, when unordered), each as far as it goes, and keeps
 * the earliest attempt reaching the furthest step. Each step takes a
 * binary search, so a user with thousands of events costs thousands of
 * lookups, not millions.
 *
 * - ordered: each step, the earliest event of its type at or after the
 *   step before in time (ties count), within the window of the first, and
 *   past the event an earlier step of the same type took (one event, one
 *   step). Taking the earliest at each step reaches furthest.
 * - strict: each step, the very next event, of the step's type, within the window.
 * - unordered: distinct steps matched by distinct events between the start
 *   and the window's end: per type, as many as it has of both.
 */
export function matchUser(e: UserEvents, plan: FunnelPlan): UserFunnel | undefined {
  const { t, c, r } = e;
  const { codes, same, windowMs, mode } = plan;
  const n = codes.length;
  // The positions (ordered) or times (unordered) of each type's events.
  const byType: number[][] = plan.need.map(() => []);
  for (let p = 0; p < c.length; p++) {
    const k = c[p] as number;
    if (k > 0) byType[k - 1]?.push(mode === "unordered" ? (t[p] as number) : p);
  }
  // The first event at the same time as the one at `p`: "at or after" includes ties.
  const firstAtTime = (p: number) => {
    while (p > 0 && t[p - 1] === t[p]) p--;
    return p;
  };
  let best: UserFunnel | undefined;
  for (let i = 0; i < t.length && best?.reach !== n; i++) {
    if (r[i] === 0) continue;
    const end = (t[i] as number) + windowMs;
    if (mode === "unordered") {
      if (c[i] === 0) continue;
      let reach = 0;
      plan.need.forEach((need, k) => {
        const times = byType[k] as number[];
        const within = lowerBound(times, end + 1) - lowerBound(times, t[i] as number);
        reach += Math.min(need, within);
      });
      if (best === undefined || reach > best.reach) best = { reach, start: i, times: [] };
      continue;
    }
    if (c[i] !== codes[0]) continue;
    const matched = [i];
    for (let j = 1; j < n; j++) {
      const previous = matched[j - 1] as number;
      let q: number | undefined;
      if (mode === "strict") {
        // The very next event of all the user's: given, and of the step's type.
        const next = previous + 1;
        const place = e.p ?? [];
        q =
          next < t.length && place[next] === (place[previous] as number) + 1 && c[next] === codes[j]
            ? next
            : undefined;
      } else {
        const s = same[j] as number;
        const from = Math.max(firstAtTime(previous), s < 0 ? 0 : (matched[s] as number) + 1);
        const positions = byType[(codes[j] as number) - 1] as number[];
        q = positions[lowerBound(positions, from)];
      }
      if (q === undefined || (t[q] as number) > end) break;
      matched.push(q);
    }
    if (best === undefined || matched.length > best.reach) {
      best = { reach: matched.length, start: i, times: matched.map((p) => t[p] as number) };
    }
  }
  return best;
}
