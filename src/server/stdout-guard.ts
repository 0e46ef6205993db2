// Keeps stdout for the MCP stdio wire. After guardStdout(), every write to process.stdout (console.log,
// console.info, console.debug, or a dependency writing to the stream itself) goes to stderr instead,
// and only the returned `wire` stream reaches the real stdout.

import { Writable } from "node:stream";

export interface StdoutGuard {
  /** The real stdout; give it to the stdio transport. Writes honour backpressure. */
  readonly wire: Writable;
  /** Puts the original process.stdout.write back. Safe to call twice. */
  restore(): void;
}

let active: StdoutGuard | undefined;

/**
 * Redirects process.stdout to stderr and returns the only handle that still writes to stdout.
 * Call it first thing in `serve`, before the engine, the host or any dependency is imported.
 * Calling it again returns the same guard.
 *
 * NOTE: native code that writes to file descriptor 1 directly bypasses this; the engine's addon
 * routes its logs through a JS callback instead.
 */
export function guardStdout(): StdoutGuard {
  if (active !== undefined) return active;

  const stdout = process.stdout;
  const realWrite = stdout.write.bind(stdout) as (chunk: string | Uint8Array, callback?: (error?: Error | null) => void) => boolean;
  const redirect = (chunk: string | Uint8Array, encodingOrCallback?: unknown, callback?: unknown): boolean =>
    (process.stderr.write as (...args: unknown[]) => boolean)(chunk, encodingOrCallback, callback);
  stdout.write = redirect as typeof stdout.write;

  const wire = new Writable({
    // The guard's own buffer stays small: backpressure comes from the real stdout's callback.
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      realWrite(chunk, callback);
    },
  });

  const guard: StdoutGuard = {
    wire,
    restore() {
      if (active !== guard) return;
      stdout.write = realWrite as typeof stdout.write;
      active = undefined;
    },
  };
  active = guard;
  return guard;
}

/** Returns the guard installed by guardStdout(), if any. */
export function activeStdoutGuard(): StdoutGuard | undefined {
  return active;
}
