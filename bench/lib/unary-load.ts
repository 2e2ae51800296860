import { type ChildProcess, fork } from "node:child_process";
import { join } from "node:path";
import type { Outcome, Run } from "./unary-generator.ts";

/** bench/lib/unary-generator.ts in a process of its own, with a 2 MB young generation (see there why). */
export function forkGenerator(): ChildProcess {
  return fork(join(import.meta.dirname, "unary-generator.ts"), [], {
    execArgv: [...process.execArgv, "--max-semi-space-size=2"],
  });
}

/** One run of the generator; `started` is called as its clock starts. */
export function runGenerator(
  generator: ChildProcess,
  run: Run,
  started: () => void,
): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) =>
      reject(new Error(`the unary load generator exited (${code})`));
    const onMessage = (message: "started" | Outcome) => {
      if (message === "started") return started();
      generator.off("message", onMessage);
      generator.off("exit", onExit);
      resolve(message);
    };
    generator.on("message", onMessage);
    generator.once("exit", onExit);
    generator.send(run);
  });
}
