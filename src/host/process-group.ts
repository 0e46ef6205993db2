// Signals to and liveness of a whole process group. A stdio server runs as the leader of its own
// group (spawned with `detached: true`), so launchers such as npx, which start the real server as a
// grandchild, are ended together with it.

import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/** Sends `signal` to every process of the group; returns false when the group no longer exists. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  if (process.platform === "win32") {
    // NOTE: Windows has no process groups; taskkill /T ends the tree. This path is not tested.
    if (signal !== "SIGKILL" && signal !== "SIGTERM") return true;
    execFile("taskkill", ["/pid", String(pgid), "/T", "/F"], () => {});
    return true;
  }
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw error;
  }
}

/**
 * Tells whether any process of the group is still running. On Linux, zombies do not count: when
 * PID 1 does not reap orphans (some containers and VMs), an ended grandchild stays a zombie in
 * the group forever, and `kill(-pgid, 0)` would report it as alive.
 */
export function isGroupAlive(pgid: number): boolean {
  if (process.platform === "linux") return listGroupMembers(pgid).length > 0;
  if (process.platform === "win32") {
    try {
      process.kill(pgid, 0);
      return true;
    } catch {
      return false;
    }
  }
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Lists the running (non-zombie) processes of a group by reading /proc; Linux only. */
export function listGroupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // the process ended while the directory was read
    }
    // Format: "pid (comm) state ppid pgrp ..."; comm may contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const state = fields[0];
    const group = Number(fields[2]);
    if (group === pgid && state !== "Z" && state !== "X") members.push(Number(entry));
  }
  return members;
}

/** Waits until the group has no running process or `timeoutMs` passes; returns true when it ended. */
export async function waitForGroupExit(pgid: number, timeoutMs: number, pollMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isGroupAlive(pgid)) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  return true;
}
