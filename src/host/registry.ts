// Naming of tools across servers. The model receives one flat list of tools, so names must be unique
// and valid for every consumer: a tool keeps its own name when no other server has it, becomes
// `server__tool` when names collide, and every name is reduced to [A-Za-z0-9_.-]{1,64}.

import { createHash } from "node:crypto";

import type { Tool } from "@modelcontextprotocol/sdk/types.js";

import type { ApprovalPolicy } from "./config.js";
import type { RegisteredTool } from "./types.js";

/** Maximum length of a registered tool name. */
export const maxToolNameLength = 64;

/** The tools of one server, in the order the server listed them (already filtered). */
export interface ServerTools {
  server: string;
  tools: readonly Tool[];
  approval?: ApprovalPolicy;
}

/**
 * Builds the registered tool list of all servers, in server order and then tool order.
 * The result is deterministic for the same input.
 */
export function buildRegistry(servers: readonly ServerTools[]): RegisteredTool[] {
  const baseCounts = new Map<string, number>();
  for (const { tools } of servers) {
    for (const tool of tools) {
      const base = sanitizeToolName(tool.name);
      baseCounts.set(base, (baseCounts.get(base) ?? 0) + 1);
    }
  }

  const taken = new Set<string>();
  const registered: RegisteredTool[] = [];
  for (const { server, tools, approval } of servers) {
    for (const tool of tools) {
      const base = sanitizeToolName(tool.name);
      const preferred = baseCounts.get(base) === 1 ? base : sanitizeToolName(`${server}__${tool.name}`);
      const name = makeUnique(preferred, taken);
      taken.add(name);
      registered.push(toRegisteredTool(tool, name, server, approval));
    }
  }
  return registered;
}

/**
 * Reduces a name to [A-Za-z0-9_.-]{1,64}: accents are dropped (`caffè` → `caffe`), other characters
 * become `_`, and a name that is too long keeps its start plus a hash of the whole name.
 */
export function sanitizeToolName(name: string): string {
  const ascii = name.normalize("NFKD").replace(/\p{M}/gu, "");
  let sanitized = ascii.replace(/[^A-Za-z0-9_.-]/gu, "_");
  if (sanitized === "") sanitized = "tool";
  if (sanitized.length <= maxToolNameLength) return sanitized;
  return truncateWithHash(sanitized, name);
}

/** Keeps the first characters of `text` and appends 8 hex digits of a hash of `identity`. */
function truncateWithHash(text: string, identity: string): string {
  const hash = createHash("sha256").update(identity).digest("hex").slice(0, 8);
  return `${text.slice(0, maxToolNameLength - hash.length - 1)}_${hash}`;
}

/** Appends `_2`, `_3`, … until the name is not taken (sanitizing can map two names to one). */
function makeUnique(name: string, taken: ReadonlySet<string>): string {
  if (!taken.has(name)) return name;
  for (let counter = 2; ; counter++) {
    const suffix = `_${counter}`;
    const candidate = name.slice(0, maxToolNameLength - suffix.length) + suffix;
    if (!taken.has(candidate)) return candidate;
  }
}

function toRegisteredTool(tool: Tool, name: string, server: string, approval: ApprovalPolicy | undefined): RegisteredTool {
  const registered: RegisteredTool = {
    name,
    server,
    originalName: tool.name,
    inputSchema: tool.inputSchema as Record<string, unknown>,
  };
  if (tool.title !== undefined) registered.title = tool.title;
  if (tool.description !== undefined) registered.description = tool.description;
  if (tool.outputSchema !== undefined) registered.outputSchema = tool.outputSchema as Record<string, unknown>;
  if (tool.annotations !== undefined) registered.annotations = { ...tool.annotations };
  if (approval !== undefined) registered.approval = approval;
  return registered;
}
