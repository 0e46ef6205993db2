// Shared helpers of the engine tests: temporary directories and mutable copies of fixtures.

import { copyFileSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Creates a temporary directory; the returned function removes it. */
export function makeTempDir(prefix = "nesso-engine-"): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Copies a fixture checkpoint into `target`. Files named in `copied` are real copies (safe to
 * modify); the others are symlinks, which keeps the 33 MB embedding from being copied per test.
 */
export function cloneCheckpoint(source: string, target: string, copied: string[] = []): string {
  for (const name of readdirSync(source)) {
    if (name.startsWith(".")) continue;
    if (copied.includes(name)) copyFileSync(join(source, name), join(target, name));
    else symlinkSync(join(source, name), join(target, name));
  }
  return target;
}

/** Collects every record of an async generator. */
export async function collect<T>(generator: AsyncGenerator<T, void, undefined>): Promise<T[]> {
  const records: T[] = [];
  for await (const record of generator) records.push(record);
  return records;
}
