// Types of the events runAgent emits while it runs and of the result it returns.

import type { ChatMessage } from "../engine/types.js";

/**
 * Reason a run ended: `stop` (the model answered), `length` (the answer hit the output token limit),
 * `max_steps`, `loop` (the same call repeated), `retries_exhausted` (a tool kept failing),
 * `context_full` (even the shortest prompt does not fit the window).
 */
export type AgentFinishReason = "stop" | "length" | "max_steps" | "loop" | "retries_exhausted" | "context_full";

/** Kinds of problem an `error` event reports. All but the last three go back to the model. */
export type AgentErrorKind =
  | "parse" // a <tool_call> block could not be parsed
  | "unknown_tool"
  | "invalid_arguments" // the arguments broke the tool's inputSchema
  | "denied" // approval rejected the call
  | "tool_failed" // callTool threw (server crashed, timed out, …)
  | "loop"
  | "max_steps"
  | "retries_exhausted"
  | "context_full";

export interface AgentCallInfo {
  id: string;
  name: string;
  arguments: Record<string, unknown>;
}

export type AgentEvent =
  /** Prose from the model, streamed as it is generated (never text inside a tool call). */
  | { type: "text"; step: number; text: string }
  | { type: "tool_call"; step: number; call: AgentCallInfo }
  /** A call that ran; `isError` mirrors the tool's own `isError`. */
  | {
      type: "tool_result";
      step: number;
      callId: string;
      name: string;
      /** The text sent back to the model, after the cap. */
      content: string;
      isError: boolean;
      truncated: boolean;
      durationMs: number;
    }
  | { type: "error"; step: number; kind: AgentErrorKind; message: string; callId?: string }
  /** Old turns were left out of the prompt so it fits the context window. */
  | { type: "context"; step: number; droppedMessages: number; promptTokens: number; contextSize: number }
  | { type: "final"; step: number; text: string; finishReason: AgentFinishReason };

export interface AgentResult {
  /** The model's answer, or for runs that did not end with `stop`, an explanation of why they ended. */
  text: string;
  finishReason: AgentFinishReason;
  /** Model turns generated. */
  steps: number;
  /** The whole conversation, system prompt first, with no turn dropped. */
  messages: ChatMessage[];
  /** Names of the tools put in the prompt. */
  toolNames: string[];
}
