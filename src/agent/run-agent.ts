// The agent loop: render the conversation with the selected tools through the model's chat
// template, generate a turn, run the tool calls it contains, append their results as `tool`
// messages (the template turns them into <tool_response> blocks), and repeat until the model
// answers or a bound (steps, retries, repeated calls, context) ends the run.

import type { ChatMessage, ChatModel, ChatToolCall, ChatToolDefinition, TokenConstraint } from "../engine/types.js";
import { NessoError, throwIfAborted } from "../errors.js";
import type { RegisteredTool, ToolExecutor } from "../host/types.js";
import { createLogger } from "../logger.js";
import { ArgumentValidator } from "../tool-calling/argument-validator.js";
import { ApprovalGate, type ApprovalOptions } from "./approval.js";
import { CallGuard } from "./call-guard.js";
import { fitMessagesToContext, selectToolsWithinBudget } from "./context-budget.js";
import type { AgentEvent, AgentFinishReason, AgentResult } from "./events.js";
import { executeTurnCalls, type CallOutcome } from "./tool-execution.js";
import { generateTurn, type SamplingOptions, type TurnOutput } from "./turn.js";

const log = createLogger("agent");

export const defaultSystemPrompt =
  "You are a helpful assistant. Call a tool only when the request needs it, and answer in the language of the user.";

export interface RunAgentOptions {
  /** The user's request; appended as the last user message when `messages` is given too. */
  task?: string;
  /** A conversation to continue; it must contain a user message unless `task` is given. */
  messages?: ChatMessage[];
  /** System prompt (default `defaultSystemPrompt`, unless `messages` starts with its own). */
  system?: string;
  model: ChatModel;
  host: ToolExecutor;
  /** Model turns before the run ends with `max_steps` (default 8). */
  maxSteps?: number;
  signal?: AbortSignal;
  /** Receives events synchronously as they happen; an exception thrown here aborts the run. */
  onEvent?: (event: AgentEvent) => void;
  /** Sampling for prose (default temperature 0.3); tool calls are always decoded greedily. */
  sampling?: SamplingOptions;
  /** Output tokens reserved for, and allowed in, each turn (default 512). */
  maxOutputTokens?: number;
  /** Cap on the tokens of one tool result (default a quarter of the context window). */
  toolResultMaxTokens?: number;
  /**
   * Prompt tokens the tool definitions may take (default: the window less the output reserve,
   * two results at the cap, and the system prompt and request). Beyond it, tools are selected.
   */
  maxToolTokens?: number;
  /** Upper bound on the number of tools in the prompt (default: no bound). */
  maxTools?: number;
  /** Retries after a failed call of one tool (default 2). */
  maxRetries?: number;
  approval?: ApprovalOptions;
  /**
   * Builds the grammar that constrains a tool call once `<tool_call>` opened (default: none). The
   * greedy generation starts with `<tool_call>` and `textAfterOpenTag` already in its prompt, so
   * the constraint must start in the state right after them, not watch for the tag.
   */
  toolCallConstraint?: (request: { tools: ChatToolDefinition[]; textAfterOpenTag: string }) => TokenConstraint | undefined;
  /** Per-call timeout passed to the host (default: the host's own). */
  toolCallTimeoutMs?: number;
}

const defaults = {
  maxSteps: 8,
  temperature: 0.3,
  maxOutputTokens: 512,
  /** Results smaller than this are useless to the model, so parallel results never get less. */
  minResultTokens: 64,
  /** Prompt tokens one tool message adds around its content (<tool_response> tags and newlines). */
  toolMessageOverhead: 16,
};

function requirePositiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new NessoError("INVALID_ARGUMENT", `runAgent: option ${name} must be a positive integer, but it is ${String(value)}`);
  }
  return value;
}

/** Builds the starting conversation: system prompt first, then the given messages, then the task. */
function initialMessages(options: RunAgentOptions): ChatMessage[] {
  const messages = (options.messages ?? []).map((message) => ({ ...message }));
  if (options.task !== undefined) messages.push({ role: "user", content: options.task });

  if (options.system !== undefined) {
    if (messages[0]?.role === "system") messages[0] = { role: "system", content: options.system };
    else messages.unshift({ role: "system", content: options.system });
  } else if (messages[0]?.role !== "system") {
    messages.unshift({ role: "system", content: defaultSystemPrompt });
  }

  if (!messages.some((message) => message.role === "user")) {
    throw new NessoError("INVALID_ARGUMENT", "runAgent: there is no user message; pass `task` or `messages` that contain one");
  }
  return messages;
}

function lastUserText(messages: ChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i].role === "user") return messages[i].content ?? "";
  }
  return "";
}

function usedToolNames(messages: ChatMessage[]): Set<string> {
  const names = new Set<string>();
  for (const message of messages) {
    for (const call of message.tool_calls ?? []) names.add(call.function.name);
  }
  return names;
}

/** Builds the assistant message of a tool turn: its prose, any unparsable blocks as written, and its calls. */
function assistantToolTurn(turn: TurnOutput): ChatMessage {
  const failedBlocks = turn.items.flatMap((item) => (item.kind === "parse_error" ? [`<tool_call>${item.error.raw}</tool_call>`] : []));
  const content = [turn.text.trim(), ...failedBlocks].filter((part) => part !== "").join("\n");
  const toolCalls: ChatToolCall[] = turn.items.flatMap((item) =>
    item.kind === "call" ? [{ id: item.call.id, type: "function" as const, function: { name: item.call.name, arguments: item.call.arguments } }] : [],
  );
  return toolCalls.length > 0 ? { role: "assistant", content, tool_calls: toolCalls } : { role: "assistant", content };
}

/** Runs the agent loop until the model answers or a bound ends the run. Rejects with the abort reason when `signal` fires. */
export async function runAgent(options: RunAgentOptions): Promise<AgentResult> {
  const { model, host, signal } = options;
  throwIfAborted(signal, "runAgent");

  const maxSteps = requirePositiveInteger("maxSteps", options.maxSteps, defaults.maxSteps);
  const maxOutputTokens = requirePositiveInteger("maxOutputTokens", options.maxOutputTokens, defaults.maxOutputTokens);
  const toolResultMaxTokens = requirePositiveInteger("toolResultMaxTokens", options.toolResultMaxTokens, Math.floor(model.contextSize / 4));
  const sampling: SamplingOptions = { temperature: defaults.temperature, ...options.sampling };
  const emit = (event: AgentEvent) => options.onEvent?.(event);

  const history = initialMessages(options);
  const request = lastUserText(history);

  // Tool budget: what is left once the output, two capped results and the request are accounted for.
  const baseMessages = history.slice(0, 1).concat({ role: "user", content: request });
  const baseTokens = model.countTokens(model.renderChat(baseMessages, { addGenerationPrompt: true }));
  const maxToolTokens =
    options.maxToolTokens ?? Math.max(0, model.contextSize - maxOutputTokens - 2 * toolResultMaxTokens - baseTokens);

  const allTools = host.listTools();
  const selection = selectToolsWithinBudget({
    model,
    tools: allTools,
    baseMessages,
    request,
    maxToolTokens,
    maxTools: options.maxTools,
    usedToolNames: usedToolNames(history),
  });
  if (selection.leftOut.length > 0 || selection.descriptionsShortened) {
    log.debug(
      () =>
        `tools: ${selection.tools.length} of ${allTools.length} fit in ${maxToolTokens} tokens (${selection.tokens} used` +
        `${selection.descriptionsShortened ? ", descriptions shortened" : ""}); left out: ${selection.leftOut.map((tool) => tool.name).join(", ") || "none"}`,
    );
  }
  if (allTools.length > 0 && selection.tools.length === 0) {
    log.warn(`no tool fits in the tool budget of ${maxToolTokens} tokens; the model runs without tools`);
  }

  const toolsByName = new Map<string, RegisteredTool>(allTools.map((tool) => [tool.name, tool]));
  const offeredToolNames = selection.tools.map((tool) => tool.name);
  const validator = new ArgumentValidator();
  const gate = new ApprovalGate(options.approval);
  const guard = new CallGuard({ maxRetries: options.maxRetries === undefined ? undefined : Math.max(0, options.maxRetries) });

  let step = 0;
  const finish = (finishReason: AgentFinishReason, text: string): AgentResult => {
    if (finishReason !== "stop" && finishReason !== "length") {
      log.info(`agent run ended after ${step} steps (${finishReason}): ${text}`);
      emit({ type: "error", step, kind: finishReason, message: text });
    }
    emit({ type: "final", step, text, finishReason });
    return { text, finishReason, steps: step, messages: history, toolNames: offeredToolNames };
  };

  for (;;) {
    throwIfAborted(signal, "runAgent");
    step += 1;

    let fit;
    try {
      fit = fitMessagesToContext({ model, messages: history, tools: selection.definitions, reservedOutputTokens: maxOutputTokens });
    } catch (error) {
      if (error instanceof NessoError && error.code === "CONTEXT_FULL") {
        step -= 1;
        return finish("context_full", `Stopped: ${error.message}`);
      }
      throw error;
    }
    if (fit.droppedMessages > 0) {
      log.info(`step ${step}: left ${fit.droppedMessages} older messages out of the prompt to fit ${model.contextSize} tokens`);
      emit({ type: "context", step, droppedMessages: fit.droppedMessages, promptTokens: fit.promptTokens, contextSize: model.contextSize });
    }

    log.debug(() => `step ${step}: prompt of ${fit.promptTokens} tokens offers tools: ${offeredToolNames.join(", ") || "none"}`);
    const turn = await generateTurn({
      model,
      prompt: fit.prompt,
      maxTokens: maxOutputTokens,
      sampling,
      idPrefix: `call_${step}_`,
      signal,
      toolCallConstraint:
        options.toolCallConstraint === undefined
          ? undefined
          : (textAfterOpenTag) => options.toolCallConstraint?.({ tools: selection.definitions, textAfterOpenTag }),
      onText: (text) => emit({ type: "text", step, text }),
    });

    if (turn.items.length === 0) {
      const answer = turn.text.trim();
      history.push({ role: "assistant", content: answer });
      return finish(turn.finishReason === "length" ? "length" : "stop", answer);
    }

    history.push(assistantToolTurn(turn));
    for (const item of turn.items) {
      if (item.kind === "call") emit({ type: "tool_call", step, call: { id: item.call.id, name: item.call.name, arguments: item.call.arguments } });
    }

    if (step >= maxSteps) {
      const wanted = [...new Set(turn.items.flatMap((item) => (item.kind === "call" ? [item.call.name] : [])))].join(", ");
      return finish(
        "max_steps",
        `Stopped after ${step} steps without a final answer; the model still wanted to call ${wanted || "a tool"}. Raise maxSteps or split the task.`,
      );
    }

    const promptTokensNow = fit.promptTokens + turn.generatedTokens;
    const outcomes = await executeTurnCalls({
      items: turn.items,
      host,
      toolsByName,
      offeredToolNames,
      validator,
      gate,
      guard,
      countTokens: (text) => model.countTokens(text),
      signal,
      toolCallTimeoutMs: options.toolCallTimeoutMs,
      resultTokenCap: (count) => {
        const free = model.contextSize - maxOutputTokens - promptTokensNow - count * defaults.toolMessageOverhead;
        return Math.min(toolResultMaxTokens, Math.max(defaults.minResultTokens, Math.floor(free / Math.max(1, count))));
      },
    });

    const stop = recordOutcomes(outcomes, step, history, emit);
    if (stop !== undefined) return finish(stop.finishReason, `Stopped: ${stop.message}.`);
  }
}

/** Appends one `tool` message per outcome, emits their events and returns the first stop, if any. */
function recordOutcomes(
  outcomes: CallOutcome[],
  step: number,
  history: ChatMessage[],
  emit: (event: AgentEvent) => void,
): CallOutcome["stop"] {
  let stop: CallOutcome["stop"];
  for (const outcome of outcomes) {
    const message: ChatMessage = { role: "tool", content: outcome.content, tool_call_id: outcome.callId };
    if (outcome.name !== "") message.name = outcome.name;
    history.push(message);

    if (outcome.ran) {
      emit({
        type: "tool_result",
        step,
        callId: outcome.callId,
        name: outcome.name,
        content: outcome.content,
        isError: outcome.isError,
        truncated: outcome.truncated,
        durationMs: outcome.durationMs,
      });
    } else if (outcome.errorKind !== undefined) {
      emit({ type: "error", step, kind: outcome.errorKind, message: outcome.content, callId: outcome.callId });
    }
    stop ??= outcome.stop;
  }
  return stop;
}
