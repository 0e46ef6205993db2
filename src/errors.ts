// The error classes of nesso-mcp. Each carries a stable `code`; native failures are mapped onto
// them in one place (src/engine/native.ts).

export type NessoErrorCode =
  | "INVALID_ARGUMENT" // a caller passed a value outside the documented range
  | "MODEL_NOT_FOUND" // no model directory or file where one was expected
  | "INVALID_MODEL" // a model file exists but is malformed or disagrees with config.json
  | "UNSUPPORTED" // a valid input that this version cannot handle yet
  | "CONTEXT_FULL" // the tokens do not fit in the context
  | "ABORTED" // the operation was cancelled through an AbortSignal
  | "DISPOSED" // the object was used after dispose()
  | "CONFIG" // mcp.json is invalid
  | "SERVER" // an MCP server failed to start, crashed or answered wrongly
  | "TIMEOUT" // a bounded wait ran out
  | "BUSY" // a bounded queue is full; try again later
  | "DOWNLOAD" // a Hub download failed
  | "INTERNAL"; // a bug in nesso-mcp

export class NessoError extends Error {
  readonly code: NessoErrorCode;

  constructor(code: NessoErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NessoError";
    this.code = code;
  }
}

export class DisposedError extends NessoError {
  constructor(what: string) {
    super("DISPOSED", `${what} was used after dispose()`);
    this.name = "DisposedError";
  }
}

/** Throws the signal's reason (or an ABORTED NessoError) when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, operation: string): void {
  if (!signal?.aborted) return;
  const reason: unknown = signal.reason;
  if (reason instanceof Error) throw reason;
  throw new NessoError("ABORTED", `${operation} was aborted`);
}
