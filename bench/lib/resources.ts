import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** CPU seconds (user + system) of a process so far, from /proc. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100; // clock ticks at 100 Hz
}

/**
 * CPU seconds the whole machine has been busy so far, every process on
 * every core (user, nice, system, irq and softirq of /proc/stat; not idle,
 * iowait or time stolen by the host).
 */
export function machineCpuSeconds(): number {
  const ticks = (readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "")
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return [0, 1, 2, 5, 6].reduce((sum, i) => sum + (ticks[i] ?? 0), 0) / 100;
}

/** A size field of /proc/PID/status (VmRSS, VmHWM, RssFile, ...), in bytes. */
export function statusBytes(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(
    readFileSync(`/proc/${pid}/status`, "utf8"),
  );
  return Number(m?.[1] ?? 0) * 1024;
}

const rssBytes = (pid: number) => statusBytes(pid, "VmRSS");

/** The pid of the oldest process whose command line matches, if any (RabbitMQ's beam, redis-server). */
export function findPid(pattern: string): number | undefined {
  try {
    const out = execFileSync("pgrep", ["-o", "-f", pattern], { encoding: "utf8" }).trim();
    return out === "" ? undefined : Number(out);
  } catch {
    return undefined;
  }
}

/**
 * Samples CPU and RSS of named processes while a run goes on, like a
 * `docker stats` table: CPU seconds used and peak RSS over the run.
 */
export function sampleResources(processes: Record<string, number | undefined>) {
  const live = Object.entries(processes).filter((e): e is [string, number] => e[1] !== undefined);
  const start = new Map(live.map(([name, pid]) => [name, cpuSeconds(pid)]));
  const peak = new Map(live.map(([name, pid]) => [name, rssBytes(pid)]));
  const timer = setInterval(() => {
    for (const [name, pid] of live) {
      try {
        peak.set(name, Math.max(peak.get(name) ?? 0, rssBytes(pid)));
      } catch {
        // it exited
      }
    }
  }, 200);
  return {
    stop(): { name: string; cpuSeconds: number; peakRssMb: number }[] {
      clearInterval(timer);
      return live.map(([name, pid]) => {
        let cpu = Number.NaN;
        try {
          cpu = cpuSeconds(pid) - (start.get(name) ?? 0);
        } catch {
          // it exited
        }
        return { name, cpuSeconds: cpu, peakRssMb: (peak.get(name) ?? 0) / 1e6 };
      });
    },
  };
}
