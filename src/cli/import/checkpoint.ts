import { readFile, rename, rm, stat, writeFile } from "node:fs/promises";

/** Where an interrupted import of a file stopped. */
export interface Checkpoint {
  version: 1;
  /** The file it belongs to, as it was: a changed file starts over. */
  file: { size: number; mtimeMs: number };
  /** Every line up to this one has been answered by the server. */
  linesDone: number;
  rowsRead: number;
  accepted: number;
  rejected: number;
}

/** The checkpoint file of an input file: beside it. */
export const checkpointPath = (input: string) => `${input}.tally-checkpoint.json`;

/** The checkpoint for `input` if there is one and the file has not changed since. */
export async function loadCheckpoint(
  input: string,
): Promise<{ checkpoint?: Checkpoint; stale: boolean }> {
  let text: string;
  try {
    text = await readFile(checkpointPath(input), "utf8");
  } catch {
    return { stale: false };
  }
  const cp = JSON.parse(text) as Checkpoint;
  const now = await stat(input);
  if (cp.version !== 1 || cp.file.size !== now.size || cp.file.mtimeMs !== now.mtimeMs)
    return { stale: true };
  return { checkpoint: cp, stale: false };
}

/** Writes the checkpoint atomically (a crash leaves the old one or the new one). */
export async function saveCheckpoint(input: string, cp: Checkpoint): Promise<void> {
  const path = checkpointPath(input);
  await writeFile(`${path}.tmp`, JSON.stringify(cp));
  await rename(`${path}.tmp`, path);
}

export async function clearCheckpoint(input: string): Promise<void> {
  await rm(checkpointPath(input), { force: true });
}

/** The identity recorded in a checkpoint for `input`. */
export async function fileIdentity(input: string): Promise<Checkpoint["file"]> {
  const s = await stat(input);
  return { size: s.size, mtimeMs: s.mtimeMs };
}
