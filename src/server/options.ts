// Options of `nesso-mcp serve` with their defaults, defined once, and the checks that reject bad values.

import { NessoError } from "../errors.js";

/** Defaults of the server options. The HTTP port spells "NESS" on a phone keypad. */
export const serverDefaults = {
  port: 6377,
  host: "127.0.0.1",
  /** Requests that may wait behind the running one before new ones are rejected at once. */
  queueLimit: 8,
  /** Bound on one tool call, queue wait included (10 minutes). */
  requestTimeoutMs: 600_000,
  /** Largest HTTP request body accepted (1 MiB); larger bodies get 413. */
  maxBodyBytes: 1_048_576,
  /** HTTP sessions idle this long are closed (30 minutes). */
  sessionIdleMs: 1_800_000,
  /** Most HTTP sessions open at the same time; an initialize beyond it gets 503. */
  maxSessions: 64,
  /** Progress notifications are sent every this many generated tokens. */
  progressEveryTokens: 16,
  /** While a request waits in the queue, a progress notification is sent this often. */
  queueHeartbeatMs: 5_000,
  /** Agent steps when the caller gives no `max_steps`. */
  agentMaxSteps: 8,
} as const;

/** Environment variable read for the HTTP bearer token when no token option is given. */
export const tokenEnvironmentVariable = "NESSO_MCP_TOKEN";

/** Checks that an option is an integer in [min, max] and returns it; the error names the option and the value. */
export function checkIntegerOption(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new NessoError("INVALID_ARGUMENT", `serve: option ${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}
