// The agent loop as the `agent` tool calls it. The adapter to src/agent's runAgent lives in
// agent-adapter.ts; tests can pass any function of this shape.

import type { ApprovalPolicy, Approver } from "../agent/approval.js";
import type { ChatModel } from "../engine/types.js";
import type { ToolExecutor } from "../host/types.js";
import type { ModelGrammars } from "../tool-calling/grammar/model-grammars.js";

/** One tool call the agent made. */
export interface AgentStep {
  /** Registered tool name, as the model saw it. */
  tool: string;
  arguments: Record<string, unknown>;
  /** The start of the tool's result text (or the error), shortened for the caller. */
  resultSummary: string;
  isError: boolean;
}

export type AgentEvent =
  | { type: "step"; step: AgentStep }
  /** Any other stage worth a progress message (generating, calling a tool). */
  | { type: "status"; message: string };

export interface AgentRunRequest {
  task: string;
  model: ChatModel;
  host: ToolExecutor;
  maxSteps: number;
  signal: AbortSignal;
  onEvent: (event: AgentEvent) => void;
  /** Language of the final reply; "auto" follows the task's language. */
  language: "auto" | "it" | "en";
  /** Approval policy per server name, from the `approval` key of mcp.json. */
  serverPolicies?: Readonly<Record<string, ApprovalPolicy>>;
  /** Asks the caller's user about a call that needs approval; absent when the caller cannot be asked. */
  approve?: Approver;
  /** Grammars of the model, whose tool-call constraint keeps calls valid; absent when the model has none. */
  grammars?: ModelGrammars;
}

export interface AgentRunResult {
  answer: string;
  steps: AgentStep[];
  /** "answer" when the model finished with a reply; otherwise why the loop stopped (e.g. "max_steps", "loop"). */
  finishReason: string;
}

export type AgentRunner = (request: AgentRunRequest) => Promise<AgentRunResult>;
