// Runs the tool calls of one assistant turn: each call is checked (loop guard, known tool, schema,
// approval) in output order, then the accepted calls run concurrently. Every call yields the text
// of a `tool` message, so failures of any kind go back to the model as data it can correct.

import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";

import { createLogger } from "../logger.js";
import type { RegisteredTool, ToolExecutor } from "../host/types.js";
import type { ArgumentValidator } from "../tool-calling/argument-validator.js";
import type { ApprovalGate } from "./approval.js";
import { parseErrorKey, type CallGuard } from "./call-guard.js";
import type { AgentErrorKind, AgentFinishReason } from "./events.js";
import { capText, toolResultToText } from "./tool-result.js";
import type { TurnItem } from "./turn.js";

const log = createLogger("agent");

export interface CallOutcome {
  callId: string;
  /** The tool name as the model wrote it ("" for a block that could not be parsed). */
  name: string;
  /** The text of the `tool` message for the model. */
  content: string;
  /** True when the tool was called (its result may still be an error). */
  ran: boolean;
  isError: boolean;
  truncated: boolean;
  durationMs: number;
  /** Set for problems found before or instead of a result. */
  errorKind?: AgentErrorKind;
  /** Set when this outcome ends the run. */
  stop?: { finishReason: AgentFinishReason; message: string };
}

export interface TurnExecutionRequest {
  items: TurnItem[];
  host: ToolExecutor;
  /** Every tool of the host by name, including tools left out of the prompt. */
  toolsByName: ReadonlyMap<string, RegisteredTool>;
  /** Names of the tools in the prompt, listed to the model when it calls an unknown one. */
  offeredToolNames: readonly string[];
  validator: ArgumentValidator;
  gate: ApprovalGate;
  guard: CallGuard;
  /** Token cap of each result, given how many results this turn produces. */
  resultTokenCap: (resultCount: number) => number;
  countTokens: (text: string) => number;
  signal?: AbortSignal;
  toolCallTimeoutMs?: number;
}

/** A call that passed every check and waits to run. */
interface AcceptedCall {
  outcomeIndex: number;
  tool: RegisteredTool;
  arguments: Record<string, unknown>;
}

function retryHint(guard: CallGuard, key: string): string {
  const left = guard.retriesLeft(key);
  return left === 1 ? " You may correct the call once more." : ` You may correct the call and try again (${left} retries left).`;
}

/** Checks every call of a turn, runs the accepted ones concurrently and returns one outcome each, in order. */
export async function executeTurnCalls(request: TurnExecutionRequest): Promise<CallOutcome[]> {
  const { guard } = request;
  const outcomes: CallOutcome[] = [];
  const accepted: AcceptedCall[] = [];

  const reject = (callId: string, name: string, errorKind: AgentErrorKind, content: string, failureKey?: string) => {
    const outcome: CallOutcome = { callId, name, content, ran: false, isError: true, truncated: false, durationMs: 0, errorKind };
    if (failureKey !== undefined) {
      const exhausted = guard.recordFailure(failureKey);
      if (exhausted === null) outcome.content += retryHint(guard, failureKey);
      else outcome.stop = { finishReason: "retries_exhausted", message: exhausted };
    }
    outcomes.push(outcome);
  };

  for (const item of request.items) {
    if (item.kind === "parse_error") {
      reject(item.error.id, "", "parse", item.error.message, parseErrorKey);
      continue;
    }

    const { call } = item;
    const repeated = guard.recordCall(call.name, call.arguments);
    if (repeated !== null) {
      outcomes.push({
        callId: call.id,
        name: call.name,
        content: `Not run: this exact call was already made. Use the earlier result or answer the user.`,
        ran: false,
        isError: true,
        truncated: false,
        durationMs: 0,
        errorKind: "loop",
        stop: { finishReason: "loop", message: repeated },
      });
      continue;
    }

    const tool = request.toolsByName.get(call.name);
    if (tool === undefined) {
      const offered = request.offeredToolNames.length === 0 ? "none" : request.offeredToolNames.join(", ");
      reject(call.id, call.name, "unknown_tool", `Unknown tool "${call.name}". The available tools are: ${offered}. Call one of them by its exact name.`, call.name);
      continue;
    }

    const validation = request.validator.validate(tool, call.arguments);
    if (!validation.ok) {
      reject(call.id, call.name, "invalid_arguments", validation.message, call.name);
      continue;
    }

    const approval = await request.gate.check({ tool, arguments: call.arguments, callId: call.id }, request.signal);
    log.debug(`call ${call.id} of ${call.name}: ${approval.allowed ? "allowed" : "not allowed"} because ${approval.reason}`);
    if (!approval.allowed) {
      reject(call.id, call.name, "denied", `Not run: ${approval.reason}. Do not call ${call.name} again for this request; answer without it.`);
      continue;
    }

    accepted.push({ outcomeIndex: outcomes.length, tool, arguments: call.arguments });
    outcomes.push({ callId: call.id, name: call.name, content: "", ran: true, isError: false, truncated: false, durationMs: 0 });
  }

  // A turn whose blocks all parsed resets the parse-error retries, like a successful call does.
  if (request.items.every((item) => item.kind === "call")) guard.recordSuccess(parseErrorKey);

  const cap = request.resultTokenCap(outcomes.length);
  await Promise.all(accepted.map((entry) => runAcceptedCall(entry, outcomes[entry.outcomeIndex], cap, request)));
  return outcomes;
}

/** Calls the tool and fills in `outcome`; only an abort escapes as an exception. */
async function runAcceptedCall(entry: AcceptedCall, outcome: CallOutcome, cap: number, request: TurnExecutionRequest): Promise<void> {
  const { tool } = entry;
  const started = performance.now();
  let result: CallToolResult;
  try {
    result = await request.host.callTool(tool.name, entry.arguments, { signal: request.signal, timeoutMs: request.toolCallTimeoutMs });
  } catch (error) {
    if (request.signal?.aborted) throw request.signal.reason;
    const message = (error as Error)?.message ?? String(error);
    log.warn(`call ${outcome.callId} of ${tool.name} on server ${tool.server} failed: ${message}`);
    outcome.durationMs = performance.now() - started;
    outcome.isError = true;
    outcome.errorKind = "tool_failed";
    outcome.content = `Calling ${tool.name} failed: ${message}`;
    const exhausted = request.guard.recordFailure(tool.name);
    if (exhausted === null) outcome.content += retryHint(request.guard, tool.name);
    else outcome.stop = { finishReason: "retries_exhausted", message: exhausted };
    return;
  }
  outcome.durationMs = performance.now() - started;

  const isError = result.isError === true;
  const text = toolResultToText(result);
  const capped = capText(isError ? `Error from ${tool.name}: ${text}` : text, cap, request.countTokens);
  outcome.content = capped.text;
  outcome.truncated = capped.truncated;
  outcome.isError = isError;
  if (capped.truncated) {
    log.debug(`result of ${outcome.callId} (${tool.name}) was capped at ${cap} tokens; ${capped.cutCharacters} characters were cut`);
  }

  if (!isError) {
    request.guard.recordSuccess(tool.name);
    return;
  }
  const exhausted = request.guard.recordFailure(tool.name);
  if (exhausted === null) outcome.content += retryHint(request.guard, tool.name);
  else outcome.stop = { finishReason: "retries_exhausted", message: exhausted };
}
