// An in-memory ToolExecutor for agent-loop tests: each tool is a schema plus a handler, and every
// call is recorded with its start and end time.

import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";

import type { CallToolOptions, RegisteredTool, ToolExecutor } from "../../src/host/types.js";

export interface MemoryTool {
  name: string;
  description?: string;
  inputSchema?: Record<string, unknown>;
  annotations?: RegisteredTool["annotations"];
  server?: string;
  handler: (args: Record<string, unknown>, options: CallToolOptions) => Promise<CallToolResult> | CallToolResult;
}

export interface RecordedCall {
  name: string;
  args: Record<string, unknown>;
  startedAt: number;
  endedAt?: number;
  signal?: AbortSignal;
}

export class MemoryExecutor implements ToolExecutor {
  readonly calls: RecordedCall[] = [];
  private readonly tools: MemoryTool[];

  constructor(tools: MemoryTool[]) {
    this.tools = tools;
  }

  listTools(): RegisteredTool[] {
    return this.tools.map((tool) => ({
      name: tool.name,
      server: tool.server ?? "memory-test",
      originalName: tool.name,
      description: tool.description,
      inputSchema: tool.inputSchema ?? { type: "object", properties: {} },
      annotations: tool.annotations,
    }));
  }

  async callTool(name: string, args: Record<string, unknown>, options: CallToolOptions = {}): Promise<CallToolResult> {
    const tool = this.tools.find((candidate) => candidate.name === name);
    if (tool === undefined) throw new Error(`memory executor: no tool ${name}`);
    const record: RecordedCall = { name, args, startedAt: performance.now(), signal: options.signal };
    this.calls.push(record);
    try {
      return await tool.handler(args, options);
    } finally {
      record.endedAt = performance.now();
    }
  }
}

export function textResult(text: string, isError = false): CallToolResult {
  return { content: [{ type: "text", text }], isError };
}

/** Resolves after `ms`, or rejects with the signal's reason when it fires first. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Creates the weather tool used across the loop tests; `city` is a required string. */
export function weatherTool(handler?: MemoryTool["handler"]): MemoryTool {
  return {
    name: "get_weather",
    description: "Get the current weather of a city.",
    inputSchema: {
      type: "object",
      properties: { city: { type: "string", description: "City name" } },
      required: ["city"],
      additionalProperties: false,
    },
    annotations: { readOnlyHint: true },
    handler: handler ?? ((args) => textResult(`Sole a ${String(args.city)} ☀️, 24 °C`)),
  };
}
