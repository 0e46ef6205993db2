import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The directory of nesso-mcp's package.json, found upwards from this file (src/ or dist/src/). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "native"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`nesso-mcp: package.json not found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}
