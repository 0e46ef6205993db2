// Turns an error that reached the top of a command into one line on stderr and an exit code.

import { NessoError } from "../errors.js";
import { getLogLevel, LogLevel } from "../logger.js";

/** Writes the error for a person to read and returns the exit code (2 for usage errors, else 1). */
export function reportError(error: unknown): number {
  const verbose = getLogLevel() >= LogLevel.Debug;
  if (error instanceof UsageError) {
    process.stderr.write(`nesso-mcp: ${error.message}\n`);
    return 2;
  }
  if (error instanceof NessoError) {
    process.stderr.write(`nesso-mcp: ${error.message}\n`);
    if (verbose && error.stack) process.stderr.write(`${error.stack}\n`);
    return 1;
  }
  const text = error instanceof Error ? (verbose ? (error.stack ?? error.message) : error.message) : String(error);
  process.stderr.write(`nesso-mcp: ${text}\n`);
  return 1;
}

/** A wrong command line: unknown option, missing argument, invalid value. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
