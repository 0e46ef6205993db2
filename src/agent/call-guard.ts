// Bounds how long a small model may struggle with one tool: failed calls get a fixed number of
// retries, and the same call with the same arguments repeated too often ends the run.

export interface CallGuardOptions {
  /** Retries after a failed call of one tool before the run ends (default 2). */
  maxRetries?: number;
  /** Identical calls (same tool, same arguments) allowed in one run; the next one ends it (default 2). */
  maxIdenticalCalls?: number;
}

/** Key under which malformed `<tool_call>` blocks count their retries. */
export const parseErrorKey = "<tool_call parse error>";

/** Writes a value as JSON with sorted object keys, so equal arguments give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value)
      .sort(([a], [b]) => compareCodeUnits(a, b))
      .map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`);
    return `{${entries.join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

export class CallGuard {
  readonly maxRetries: number;
  readonly maxIdenticalCalls: number;
  private readonly identicalCalls = new Map<string, number>();
  private readonly failures = new Map<string, number>();

  constructor(options: CallGuardOptions = {}) {
    this.maxRetries = options.maxRetries ?? 2;
    this.maxIdenticalCalls = options.maxIdenticalCalls ?? 2;
  }

  /**
   * Counts a call before it runs. Returns why the run must stop when this is one identical call
   * too many, or null.
   */
  recordCall(name: string, args: Record<string, unknown>): string | null {
    const signature = `${name} ${canonicalJson(args)}`;
    const count = (this.identicalCalls.get(signature) ?? 0) + 1;
    this.identicalCalls.set(signature, count);
    if (count <= this.maxIdenticalCalls) return null;
    return `the model called ${name} with the same arguments ${count} times (${truncate(canonicalJson(args), 200)}), so it is looping`;
  }

  /** Counts a failed call. Returns why the run must stop once the retries are used up, or null. */
  recordFailure(key: string): string | null {
    const count = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, count);
    if (count <= this.maxRetries) return null;
    const what = key === parseErrorKey ? "a <tool_call> block could not be parsed" : `the call to ${key} failed`;
    return `${what} ${count} times (1 attempt and ${this.maxRetries} retries)`;
  }

  /** Retries left for `key` after its failures so far. */
  retriesLeft(key: string): number {
    return Math.max(0, this.maxRetries - ((this.failures.get(key) ?? 1) - 1));
  }

  /** Clears the failure count of a tool after it succeeded. */
  recordSuccess(key: string): void {
    this.failures.delete(key);
  }
}

/** Orders strings by UTF-16 code units, independent of the locale. */
function compareCodeUnits(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

function truncate(text: string, maxChars: number): string {
  return text.length <= maxChars ? text : `${text.slice(0, maxChars)}…`;
}
