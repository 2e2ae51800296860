import { readdirSync, readFileSync } from "node:fs";
import { setPriority } from "node:os";

/** What chDB names the threads of its background merges (and mutations). */
const MERGE_THREAD = "MergeMutate\n";

/**
 * Gives chDB's merge threads an OS priority (nice), as each insert's
 * threads get theirs ({@link insertPriority} in chdb-warehouse.ts): the
 * merges follow the parts the inserts make, and shared the API's cores at
 * its priority. At 2,000 gRPC calls/s, niced like a trickle's inserts, the
 * calls' p99 had a median of 44 ms over six alternating runs against 71,
 * and their p50 5.0 against 6.5. Niced under a flood too, the end-to-end
 * throughput fell by 8% (the merges fell behind the inserts), so they go
 * back to the normal priority when the inserts do (where the process may
 * raise a thread's priority: see insertPriority).
 *
 * Returns a function that sets it, on every merge thread there is by then
 * (chDB starts more as merges need them). Linux only: the threads are
 * found by name in /proc/self/task; elsewhere it does nothing.
 */
export function mergeThreadPriority(): (priority: number) => void {
  let available = process.platform === "linux";
  /** Each thread seen: the priority given, or undefined when it is not a merge thread. */
  let seen = new Map<number, number | undefined>();
  return (priority) => {
    if (!available) return;
    let tasks: string[];
    try {
      tasks = readdirSync("/proc/self/task");
    } catch {
      available = false;
      return;
    }
    const now = new Map<number, number | undefined>();
    for (const task of tasks) {
      const tid = Number(task);
      // NaN: a merge thread not given a priority yet.
      let given = seen.has(tid) ? seen.get(tid) : isMergeThread(task) ? Number.NaN : undefined;
      if (given !== undefined && given !== priority) {
        try {
          setPriority(tid, priority);
        } catch {
          // Gone, or not to be raised back without CAP_SYS_NICE: left as it is.
        }
        given = priority;
      }
      now.set(tid, given);
    }
    seen = now;
  };
}

function isMergeThread(task: string): boolean {
  try {
    return readFileSync(`/proc/self/task/${task}/comm`, "utf8") === MERGE_THREAD;
  } catch {
    return false;
  }
}
