// Test helpers: process checks through `ps` (independent of the code under test), temp dirs,
// free ports and polling.

import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Tells whether a process exists and is not a zombie, according to `ps`. */
export function isRunning(pid: number): boolean {
  try {
    const output = execFileSync("ps", ["-o", "stat=", "-p", String(pid)], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    return output.trim() !== "" && !output.trim().startsWith("Z");
  } catch {
    return false; // ps exits with status 1 when the process does not exist
  }
}

/** Lists running (non-zombie) processes of a process group, according to `ps`. */
export function groupMembers(pgid: number): number[] {
  const output = execFileSync("ps", ["-eo", "pid=,pgid=,stat="], { encoding: "utf8" });
  return output
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter(([pid, group, stat]) => pid !== undefined && Number(group) === pgid && stat !== undefined && !stat.startsWith("Z"))
    .map(([pid]) => Number(pid));
}

/** Polls `condition` every 25 ms until it is true or `timeoutMs` passes; returns the last value. */
export async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return true;
}

export interface LogEvent {
  pid: number;
  event: string;
  [key: string]: unknown;
}

/** Reads the JSON-lines event log of the scripted server. */
export function readLog(path: string): LogEvent[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as LogEvent);
}

export function makeTempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), `nesso-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Finds a free TCP port on 127.0.0.1 (it may be taken again before use, which tests accept). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export const repoRoot = join(import.meta.dirname, "..", "..", "..");
export const modulesDir = join(repoRoot, "node_modules");
export const everythingEntry = join(modulesDir, "@modelcontextprotocol", "server-everything", "dist", "index.js");
export const filesystemEntry = join(modulesDir, "@modelcontextprotocol", "server-filesystem", "dist", "index.js");
export const memoryEntry = join(modulesDir, "@modelcontextprotocol", "server-memory", "dist", "index.js");
export const fetchMcpEntry = join(modulesDir, "fetch-mcp", "dist", "index.js");
